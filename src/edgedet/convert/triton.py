"""`edgedet export triton MODEL --repo DIR`: a Triton Inference Server model repository for one model.

    DIR/NAME/config.pbtxt      platform, max_batch_size, inputs/outputs (dims and dtypes from the model),
                               dynamic_batching (max_queue_delay), instance_group, and the model's edgedet spec
                               under parameters["edgedet.spec"] (the triton backend reads it back)
    DIR/NAME/1/model.onnx      (or model.plan)

The config is built as Triton's own ModelConfig protobuf (from tritonclient), written in protobuf text format,
parsed back with the same schema (an unknown field or a bad value fails here, not in the server) and checked
against the model's I/O as ONNX Runtime loads it. A dynamic-batch model gets max_batch_size (dims then leave the
batch out) and dynamic batching; a fixed batch-1 model gets max_batch_size 0 (Triton batches nothing).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.errors import ConfigError, ModelError
from edgedet.spec import SPEC_KEY, ModelSpec, read_onnx_spec

__all__ = ["TritonExport", "export_triton", "model_io", "read_config"]

#: ONNX element type names (onnx.TensorProto) -> Triton data types
_ONNX_TO_TRITON = {"FLOAT": "TYPE_FP32", "FLOAT16": "TYPE_FP16", "UINT8": "TYPE_UINT8", "INT64": "TYPE_INT64",
                   "INT32": "TYPE_INT32", "BOOL": "TYPE_BOOL", "INT8": "TYPE_INT8", "DOUBLE": "TYPE_FP64"}  # fmt: skip
#: ONNX Runtime's type strings -> Triton data types (for the check against the loaded model)
_ORT_TO_TRITON = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(uint8)": "TYPE_UINT8",
                  "tensor(int64)": "TYPE_INT64", "tensor(int32)": "TYPE_INT32", "tensor(bool)": "TYPE_BOOL",
                  "tensor(int8)": "TYPE_INT8", "tensor(double)": "TYPE_FP64"}  # fmt: skip


@dataclass(frozen=True)
class TritonExport:
    """What `export_triton` wrote: the model folder, its config file, the model file, and the config's text."""

    model_dir: Path
    config_path: Path
    model_file: Path
    config_text: str
    max_batch_size: int


def _config_pb2() -> Any:
    require("tritonclient", "writing a Triton model repository")
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


def model_io(
    onnx_path: Path,
) -> tuple[list[tuple[str, str, list[int | str]]], list[tuple[str, str, list[int | str]]]]:
    """(inputs, outputs) of an ONNX file as (name, Triton data type, dims with symbolic ones as strings)."""
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    init = {i.name for i in m.graph.initializer}

    def one(vi: Any) -> tuple[str, str, list[int | str]]:
        t = vi.type.tensor_type
        name = onnx.TensorProto.DataType.Name(t.elem_type)
        if name not in _ONNX_TO_TRITON:
            raise ModelError(
                f"{onnx_path.name}: {vi.name} has element type {name}, which Triton's config cannot name"
            )
        dims: list[int | str] = [
            int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim
        ]
        return vi.name, _ONNX_TO_TRITON[name], dims

    return [one(i) for i in m.graph.input if i.name not in init], [one(o) for o in m.graph.output]


def export_triton(
    model: str | Path,
    repo: str | Path,
    *,
    name: str | None = None,
    max_batch_size: int = 8,
    max_queue_delay_us: int = 2000,
    instances: int = 1,
    kind: str = "KIND_GPU",
    overwrite: bool = False,
    nms: bool = False,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
) -> TritonExport:
    """Write `repo/NAME/config.pbtxt` and `repo/NAME/1/model.onnx` for an ONNX model; return what was written.

    name: the Triton model name (default: the file's stem). max_batch_size: for a dynamic-batch model, the
    largest batch Triton forms (a fixed-batch model keeps its own batch and gets max_batch_size 0).
    max_queue_delay_us: how long the dynamic batcher waits to fill a batch. kind: KIND_GPU or KIND_CPU.
    overwrite: replace an existing model folder (otherwise ConfigError). nms: append decode + NMS to the graph
    (`convert.server_nms`, batch-1 models) with conf / iou / max_det, so the server returns [1, K, 6]
    detections instead of the raw head.
    """
    _config_pb2()  # tritonclient first: a missing package is named before any work

    src = Path(model).expanduser()
    if not src.is_file():
        raise ConfigError(f"model file not found: {src}; pass an .onnx file (edgedet convert writes one)")
    if src.suffix.lower() in (".plan", ".engine", ".trt"):
        raise ConfigError(
            f"{src.name}: reading a TensorRT engine's inputs and outputs needs TensorRT on this machine; export "
            "the .onnx here and build the plan inside the Triton container (trtexec), or run this on the device"
        )
    if src.suffix.lower() != ".onnx":
        raise ConfigError(
            f"{src.name}: `export triton` takes an .onnx model (or a TensorRT .plan on the device)"
        )
    if max_batch_size < 1:
        raise ConfigError(f"--max-batch-size must be 1 or more, got {max_batch_size}")
    if kind not in ("KIND_GPU", "KIND_CPU"):
        raise ConfigError(f"--kind must be KIND_GPU or KIND_CPU, got {kind!r}")
    staged: Path | None = None
    if nms:
        import tempfile

        from edgedet.convert.server_nms import add_server_nms

        staged = Path(tempfile.mkdtemp(prefix="edgedet-nms-")) / "model.onnx"
        src = add_server_nms(src, staged, conf=conf, iou=iou, max_det=max_det)
    try:
        return _export(src, repo, name or Path(model).stem, max_batch_size, max_queue_delay_us, instances, kind,
                       overwrite)  # fmt: skip
    finally:
        if staged is not None:
            shutil.rmtree(staged.parent, ignore_errors=True)


def _export(
    src: Path,
    repo: str | Path,
    name: str,
    max_batch_size: int,
    max_queue_delay_us: int,
    instances: int,
    kind: str,
    overwrite: bool,
) -> TritonExport:
    pb = _config_pb2()
    from google.protobuf import text_format

    spec = read_onnx_spec(src)
    inputs, outputs = model_io(src)
    if len(inputs) != 1:
        raise ModelError(f"{src.name} has {len(inputs)} inputs; edgedet detectors have one image input")
    batch_dims = {str(d[2][0]) for d in inputs + outputs if d[2]}
    dynamic = all(not isinstance(d[2][0], int) for d in inputs + outputs if d[2])
    if not dynamic and any(isinstance(d[2][0], str) for d in inputs + outputs if d[2]):
        raise ModelError(
            f"{src.name}: some first dimensions are fixed and some are not ({sorted(batch_dims)})"
        )
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(
            f"model name {name!r}: use letters, digits, - and _ (it is a folder and a URL part)"
        )

    cfg = pb.ModelConfig(
        name=name, platform="onnxruntime_onnx", max_batch_size=max_batch_size if dynamic else 0
    )

    def dims(d: list[int | str]) -> list[int]:
        body = d[1:] if dynamic else d
        return [x if isinstance(x, int) else -1 for x in body]

    for n, dt, d in inputs:
        cfg.input.add(name=n, data_type=pb.DataType.Value(dt), dims=dims(d))
    for n, dt, d in outputs:
        cfg.output.add(name=n, data_type=pb.DataType.Value(dt), dims=dims(d))
    if dynamic:
        cfg.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    cfg.instance_group.add(count=instances, kind=pb.ModelInstanceGroup.Kind.Value(kind))
    cfg.parameters[SPEC_KEY].string_value = spec.to_json()
    text = text_format.MessageToString(cfg)

    model_dir = Path(repo).expanduser() / name
    if model_dir.exists():
        if not overwrite:
            raise ConfigError(f"{model_dir} exists: pass --overwrite to replace it, or choose another --name")
        shutil.rmtree(model_dir)
    (model_dir / "1").mkdir(parents=True)
    model_file = model_dir / "1" / "model.onnx"
    shutil.copyfile(src, model_file)
    config_path = model_dir / "config.pbtxt"
    config_path.write_text(text)
    check_config(config_path, model_file)
    return TritonExport(model_dir, config_path, model_file, text, cfg.max_batch_size)


def read_config(config_path: Path) -> Any:
    """Parse a config.pbtxt with Triton's ModelConfig schema (ConfigError naming the problem when it fails)."""
    pb = _config_pb2()
    from google.protobuf import text_format

    try:
        return text_format.Parse(Path(config_path).read_text(), pb.ModelConfig())
    except text_format.ParseError as exc:
        raise ConfigError(f"{config_path} is not a valid Triton model config: {exc}") from None


def check_config(config_path: Path, model_file: Path) -> None:
    """Parse the config with Triton's schema and check it against the model as ONNX Runtime loads it: names,
    data types, dims (less the batch when max_batch_size > 0), and the spec it carries."""
    import onnxruntime as ort

    pb = _config_pb2()
    cfg = read_config(config_path)
    sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    batched = cfg.max_batch_size > 0
    where = f"{config_path}"
    for label, declared, real in (
        ("input", cfg.input, sess.get_inputs()),
        ("output", cfg.output, sess.get_outputs()),
    ):
        if [d.name for d in declared] != [r.name for r in real]:
            raise ModelError(
                f"{where}: {label}s {[d.name for d in declared]} but the model has {[r.name for r in real]}"
            )
        for d, r in zip(declared, real, strict=True):
            dtype = _ORT_TO_TRITON.get(r.type)
            if pb.DataType.Name(d.data_type) != dtype:
                raise ModelError(
                    f"{where}: {d.name} is {pb.DataType.Name(d.data_type)} but the model's is {r.type}"
                )
            shape = list(r.shape)
            if batched:
                if isinstance(shape[0], int):
                    raise ModelError(f"{where}: max_batch_size > 0 but {r.name} has a fixed batch {shape[0]}")
                shape = shape[1:]
            want = [s if isinstance(s, int) else -1 for s in shape]
            if list(d.dims) != want:
                raise ModelError(f"{where}: {d.name} dims {list(d.dims)} but the model's are {want}")
    if SPEC_KEY in cfg.parameters:
        ModelSpec.from_json(cfg.parameters[SPEC_KEY].string_value, where=f"{where}: parameters {SPEC_KEY}")
    if batched and not cfg.HasField("dynamic_batching"):
        raise ModelError(f"{where}: a batching model without dynamic_batching")


def describe(export: TritonExport) -> str:
    """One line for the command's output."""
    batching = (
        f"max_batch_size {export.max_batch_size}, dynamic batching"
        if export.max_batch_size
        else "fixed batch, max_batch_size 0"
    )
    return f"wrote {export.config_path} and {export.model_file} ({batching}; checked against the model)"
