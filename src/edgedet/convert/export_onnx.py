"""PyTorch module -> one self-contained ONNX file with the edgedet ModelSpec in its metadata.

Exporter choice: torch 2.13's default (dynamo) exporter needs `onnxscript` (not a dependency of edgedet) and
writes the weights to a side `.onnx.data` file unless `external_data=False`. The TorchScript exporter
(`dynamo=False`) needs nothing beyond torch, writes one file with the weights inside, and is the path YOLOv5 and
Ultralytics export through (graphs that TensorRT 10 is known to parse). It warns that it is deprecated; that
warning is silenced here on purpose, and `exporter="dynamo"` is available for when the TorchScript path is
removed. Either way the result is checked to be a single file before it is returned.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.errors import ConfigError, MissingDependencyError, ModelError
from edgedet.spec import SPEC_KEY, ModelSpec, read_onnx_spec, sha256_file

log = logging.getLogger(__name__)

DEFAULT_OPSET = 19
OUTPUT_NAME = "output0"
EXPORTERS = ("torchscript", "dynamo")


def drop_initializer_inputs(model: Any) -> bool:
    """Remove initializers from `model.graph.input` (older exporters list weights as inputs, which blocks
    constant folding in ONNX Runtime: ~25% slower). Returns True when something was removed; edits in place."""
    init_names = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in init_names]
    if len(keep) == len(model.graph.input):
        return False
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return True


def drop_unused_initializers(graph: Any) -> None:
    """Remove initializers no node reads (left behind by graph rewrites; ONNX Runtime warns about each)."""
    used = {name for node in graph.node for name in node.input}
    keep = [t for t in graph.initializer if t.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shaped an artifact (those importable here)."""
    import onnx
    import onnxruntime

    import edgedet

    out = {"edgedet": edgedet.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    try:
        import torch

        out["torch"] = str(torch.__version__)
    except ImportError:
        pass
    return out


def export_onnx(
    module: Any,
    out: str | Path,
    spec: ModelSpec,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = False,
    simplify: bool = True,
    source: str | Path | None = None,
    exporter: str = "torchscript",
    provenance: Mapping[str, Any] | None = None,
) -> tuple[Path, ModelSpec, list[str]]:
    """Export `module` (eval mode, input (B, 3, H, W) float32) to `out`; return (path, spec written, notes).

    The input is `spec.input_name` with shape (1, 3, *spec.input_hw), or ('batch', 3, H, W) with `dynamic`;
    the single output is named "output0". The file passes onnx.checker, is simplified with onnxslim when
    `simplify` (skipped with a note when onnxslim is missing) and carries `spec` (precision fp32, batch 1 or 0
    for dynamic, provenance filled in) under the metadata key `edgedet.spec`.
    """
    torch = require("torch", "exporting a PyTorch model")
    import onnx

    if exporter not in EXPORTERS:
        raise ConfigError(f"unknown exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    if not 7 <= opset <= 23:
        raise ConfigError(f"opset {opset} is out of range; use 13..21 (19 is inside TensorRT 10.3's range)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    h, w = spec.input_hw
    if h % spec.stride or w % spec.stride:
        raise ConfigError(
            f"input size {h}x{w} is not a multiple of the model stride {spec.stride}; pass --imgsz as a multiple "
            f"of {spec.stride}"
        )
    notes: list[str] = []
    dummy = torch.zeros(1, 3, h, w, dtype=torch.float32)
    module = module.eval()
    with torch.no_grad():
        try:
            probe = module(dummy)
        except Exception as exc:  # the user's forward(): anything can fail, report it as a model error
            raise ModelError(f"the model failed on a (1, 3, {h}, {w}) float32 input: {exc!r}") from exc
    if not isinstance(probe, torch.Tensor):
        raise ModelError(
            f"the model returned {type(probe).__name__}, expected one tensor in {spec.output_format} layout; "
            "wrap it so forward() returns the decoded head output"
        )
    model_proto = _run_exporter(torch, module, dummy, spec.input_name, opset, dynamic, exporter)
    try:
        onnx.checker.check_model(model_proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(
            f"the exported ONNX graph is invalid ({str(exc).splitlines()[0]}); try another --opset"
        ) from exc
    if simplify:
        try:
            onnxslim = require("onnxslim", "simplifying the ONNX graph")
        except MissingDependencyError as exc:
            notes.append(f"not simplified: {exc}")
        else:
            model_proto = onnxslim.slim(model_proto)
    prov: dict[str, Any] = {
        **tool_versions(),
        "opset": opset,
        "exporter": exporter,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "simplified": bool(simplify and not notes),
    }
    if source is not None and Path(source).is_file():
        prov["source"] = Path(source).name
        prov["source_sha256"] = sha256_file(source)
    elif source is not None:
        prov["source"] = str(source)
    prov.update(provenance or {})
    spec = spec.replace(precision="fp32", batch=0 if dynamic else 1, provenance=prov)
    set_spec(model_proto, spec)
    save_single_file(model_proto, out)
    return out, spec, notes


def _run_exporter(
    torch: Any, module: Any, dummy: Any, input_name: str, opset: int, dynamic: bool, exporter: str
) -> Any:
    import onnx

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*dynamo=False.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*TorchScript-based ONNX export.*")
        warnings.filterwarnings(
            "ignore", message=r"The feature will be removed.*", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        try:
            if exporter == "torchscript":
                torch.onnx.export(
                    module,
                    (dummy,),
                    buf,
                    dynamo=False,
                    opset_version=opset,
                    input_names=[input_name],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={input_name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None,
                    do_constant_folding=True,
                )
                return onnx.load_from_string(buf.getvalue())
            require("onnxscript", "exporting with torch's dynamo ONNX exporter")
            batch = torch.export.Dim("batch", min=1, max=64)
            program = torch.onnx.export(
                module,
                (dummy,),
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=[input_name],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},) if dynamic else None,
                optimize=True,
            )
            return program.model_proto
        except MissingDependencyError:
            raise
        except Exception as exc:  # torch's exporters raise many types; all mean "this graph did not export"
            raise ModelError(
                f"torch.onnx.export failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "try another --opset, or export without --dynamic"
            ) from exc


def set_spec(model_proto: Any, spec: ModelSpec) -> None:
    """Write `spec` under `edgedet.spec` in metadata_props (replacing an old value, keeping other keys)."""
    keep = [(p.key, p.value) for p in model_proto.metadata_props if p.key != SPEC_KEY]
    del model_proto.metadata_props[:]
    for k, v in [*keep, (SPEC_KEY, spec.to_json())]:
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = k, v


def save_single_file(model_proto: Any, out: Path) -> None:
    """Save with every initializer inside the file (refuse >2 GB rather than write a side .data file)."""
    import onnx

    for init in model_proto.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelError(
                f"{out}: the exported graph still points at external weight data; export again with the "
                "TorchScript exporter"
            )
    if model_proto.ByteSize() > 2_000_000_000:
        raise ModelError(
            f"{out}: model is over 2 GB; edgedet writes single-file ONNX for edge-sized detectors"
        )
    onnx.save_model(model_proto, str(out), save_as_external_data=False)


read_spec = read_onnx_spec  # the one ONNX spec reader lives in edgedet.spec
