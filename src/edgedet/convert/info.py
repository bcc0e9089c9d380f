"""`edgedet info`: what is inside a model file (spec, I/O, precision, opset, provenance, size, sha256)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from edgedet.convert.export_onnx import read_spec, sha256_file
from edgedet.errors import DataError, ModelError
from edgedet.spec import SPEC_KEY, ModelSpec

_ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    16: "bfloat16",
}


def describe(path: str | Path) -> dict[str, Any]:
    """A JSON-ready description of an .onnx file, a TensorRT engine's .json sidecar, or an engine whose
    sidecar sits beside it (`model.engine` -> `model.engine.json` or `model.json`).

    Keys: path, kind ("onnx" | "engine"), size_bytes, sha256, spec (ModelSpec as a dict), precision,
    inputs/outputs ([{name, shape, dtype}], ONNX only), opset, ir_version, producer, metadata (other keys),
    op_counts (ONNX only; Q/DQ counts show whether a file is quantized), provenance.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p} not found; pass an .onnx file, an .engine or its .json sidecar")
    if p.suffix.lower() == ".onnx":
        return _describe_onnx(p)
    if p.suffix.lower() == ".json":
        return _describe_sidecar(p, engine=_engine_beside(p))
    for side in (p.with_name(p.name + ".json"), p.with_suffix(".json")):
        if side.is_file():
            return _describe_sidecar(side, engine=p)
    raise ModelError(
        f"{p}: not an .onnx file and no .json sidecar beside it; `info` reads ONNX files and engine sidecars"
    )


def _describe_onnx(p: Path) -> dict[str, Any]:
    import onnx

    try:
        m = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError
        raise ModelError(f"cannot read {p} as ONNX ({type(exc).__name__}); is the file complete?") from exc
    spec = read_spec(p)
    init_names = {i.name for i in m.graph.initializer}
    meta = {q.key: q.value for q in m.metadata_props if q.key != SPEC_KEY}
    ops = Counter(n.op_type for n in m.graph.node)
    return {  # "gate" only for files that went through the INT8 accuracy gate
        "path": str(p),
        "kind": "onnx",
        "size_bytes": p.stat().st_size,
        "sha256": sha256_file(p),
        "precision": _onnx_precision(m, ops, spec),
        "spec": _spec_dict(spec),
        "inputs": [_io(v) for v in m.graph.input if v.name not in init_names],
        "outputs": [_io(v) for v in m.graph.output],
        "opset": next((int(o.version) for o in m.opset_import if o.domain in ("", "ai.onnx")), None),
        "ir_version": int(m.ir_version),
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "metadata": meta,
        "op_counts": dict(ops.most_common()),
        "provenance": dict(spec.provenance),
        "has_edgedet_spec": any(q.key == SPEC_KEY for q in m.metadata_props),
    } | ({"gate": gate} if (gate := _gate_line(m)) is not None else {})


def _gate_line(m: Any) -> str | None:
    """The INT8 accuracy gate's verdict stored by `convert` (None for files that never went through it)."""
    from edgedet.convert.gate import read_verdict, verdict_line

    info = read_verdict(m)
    return None if info is None else verdict_line(info)


def _onnx_precision(m: Any, ops: Counter[str], spec: ModelSpec) -> str:
    """From the graph itself (not only the spec): Q/DQ -> int8; mostly float16 weights -> fp16; else fp32."""
    if ops.get("QuantizeLinear") or ops.get("DequantizeLinear") or ops.get("QLinearConv"):
        return "int8"
    float_inits = [i for i in m.graph.initializer if i.data_type in (1, 10)]
    if float_inits and sum(i.data_type == 10 for i in float_inits) * 2 > len(float_inits):
        return "fp16"
    return "fp32" if float_inits else spec.precision


def _describe_sidecar(side: Path, engine: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise DataError(
            f"cannot read engine sidecar {side} ({type(exc).__name__}: {str(exc)[:80]}); rebuild the engine "
            "with `edgedet convert --engine`"
        ) from exc
    if not isinstance(data, dict):
        raise DataError(f"{side}: expected a JSON object; rebuild the engine with `edgedet convert --engine`")
    spec_raw = data.get("spec")
    spec = (
        ModelSpec.from_json(json.dumps(spec_raw), where=f"{side}: spec")
        if isinstance(spec_raw, dict)
        else None
    )
    out: dict[str, Any] = {
        "path": str(engine or side),
        "kind": "engine",
        "sidecar": str(side),
        "spec": _spec_dict(spec) if spec else None,
        "precision": spec.precision if spec else data.get("precision"),
        "provenance": dict(spec.provenance) if spec else {},
        "engine": {k: v for k, v in data.items() if k != "spec"},
    }
    if engine is not None and engine.is_file():
        out["size_bytes"] = engine.stat().st_size
        out["sha256"] = sha256_file(engine)
    return out


def _engine_beside(side: Path) -> Path | None:
    name = side.name[: -len(".json")]
    for cand in (side.with_name(name), side.with_suffix(".engine")):
        if cand != side and cand.is_file():
            return cand
    return None


def _spec_dict(spec: ModelSpec) -> dict[str, Any]:
    d = json.loads(spec.to_json())
    d["num_classes"] = spec.num_classes
    return d


def _io(v: Any) -> dict[str, Any]:
    t = v.type.tensor_type
    shape: list[int | str | None] = []
    for d in t.shape.dim:
        shape.append(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None))
    return {"name": v.name, "shape": shape, "dtype": _ONNX_DTYPES.get(int(t.elem_type), str(t.elem_type))}


# --- the human summary (`edgedet info`; `--json` prints describe() as it is) ----------------------------------------

#: class names shown in the summary before "..."
FIRST_CLASSES = 6
_LABEL_WIDTH = 11

_KIND_NAMES = {"onnx": "ONNX model", "engine": "TensorRT engine"}

# Provenance keys the summary shows, in this order (the rest are counted; --json has them all). Values longer than
# _VALUE_MAX are cut.
_PROVENANCE_FIRST = (
    "source", "loader", "author", "description", "version", "edgedet", "quantizer", "date", "license",
)  # fmt: skip
_VALUE_MAX = 72


def summary_row(label: str, value: str) -> str:
    """One aligned `  label  value` line, the shape of every summary line (other commands add rows with it)."""
    return f"  {label:<{_LABEL_WIDTH}}{value}"


def format_classes(names: list[str] | tuple[str, ...], first: int = FIRST_CLASSES) -> str:
    """`80: person, bicycle, car, ... (--json lists all)`; all of them when there are few."""
    if not names:
        return "none named (pass --names to run)"
    shown = ", ".join(str(n) for n in names[:first])
    if len(names) <= first:
        return f"{len(names)}: {shown}"
    return f"{len(names)}: {shown}, ... (--json lists all)"


def _short(value: Any, limit: int = _VALUE_MAX) -> str:
    text = str(value).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_provenance(provenance: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
    """Where the model came from, once: the keys a reader wants (`key value; ...`), then how many more --json has."""
    prov = dict(provenance)
    meta = metadata or {}
    if "license" not in prov and meta.get("license"):
        prov["license"] = meta["license"]
    if not prov:
        return "not recorded"
    parts = []
    for k in _PROVENANCE_FIRST:
        if k not in prov:
            continue
        v = str(prov[k])
        if k == "date":
            v = v[:10]
        elif k == "source" and prov.get("source_sha256"):
            v = f"{v} (sha256 {str(prov['source_sha256'])[:12]})"
        parts.append(f"{k} {_short(v, 48)}")
    shown = set(_PROVENANCE_FIRST) | {"source_sha256"}
    more = sum(k not in shown for k in prov)
    if more:
        parts.append(f"+{more} more")
    return "; ".join(parts)


def _tensor(io: dict[str, Any]) -> str:
    shape = ", ".join("?" if d is None else str(d) for d in io.get("shape", []))
    return f"{io.get('name')} [{shape}] {io.get('dtype')}"


def _input_line(info: dict[str, Any]) -> str:
    spec = info.get("spec") or {}
    inputs = info.get("inputs") or []
    parts = [_tensor(inputs[0])] if inputs else [f"{spec.get('input_name', '?')} {spec.get('input_hw')}"]
    if spec:
        scale = spec.get("scale")
        pre = [spec.get("layout"), spec.get("color")]
        if scale:
            pre.append("x/255" if abs(float(scale) - 1 / 255) < 1e-9 else f"x*{float(scale):g}")
        parts.append(" ".join(str(p) for p in pre if p))
        if spec.get("letterbox"):
            parts.append(f"letterbox (pad {spec.get('pad_value')})")
    if len(inputs) > 1:
        parts.append(f"+{len(inputs) - 1} more inputs")
    return ", ".join(parts)


def _output_line(info: dict[str, Any]) -> str:
    spec = info.get("spec") or {}
    outputs = info.get("outputs") or []
    parts = [_tensor(o) for o in outputs[:2]]
    if len(outputs) > 2:
        parts.append(f"+{len(outputs) - 2} more")
    if spec.get("output_format"):
        parts.append(f"format {spec['output_format']}")
    return ", ".join(parts) or "?"


def _size(info: dict[str, Any]) -> str:
    n = info.get("size_bytes")
    return "" if n is None else f", {n / 1e6:.1f} MB"


def format_summary(info: dict[str, Any]) -> list[str]:
    """The short human summary of describe()'s dict: a title line, then kind-specific rows.

    Rows: precision, input, output (tensors and head format), classes (a count and the first few), provenance
    (once), graph facts, sha256; a last line points to --json for everything else. Callers that know more
    (an INT8 gate verdict, a PyTorch checkpoint) insert summary_row() lines before the last line.
    """
    kind = _KIND_NAMES.get(str(info.get("kind")), str(info.get("kind", "model")))
    spec = info.get("spec") or {}
    name = Path(str(info.get("path", ""))).name
    lines = [f"{name}: {kind}, {info.get('precision') or spec.get('precision') or '?'}{_size(info)}"]
    if info.get("kind") == "onnx" or info.get("inputs"):
        lines.append(summary_row("input", _input_line(info)))
        lines.append(summary_row("output", _output_line(info)))
    elif spec:
        hw = spec.get("input_hw")
        lines.append(summary_row("input", f"{spec.get('input_name')} {hw}"))
        lines.append(summary_row("output", f"format {spec.get('output_format')}"))
    lines.append(summary_row("classes", format_classes(spec.get("class_names") or [])))
    lines.append(
        summary_row("provenance", format_provenance(info.get("provenance") or {}, info.get("metadata")))
    )
    if info.get("kind") == "onnx":
        graph = f"opset {info.get('opset')}, IR {info.get('ir_version')}"
        if info.get("producer"):
            graph += f", by {info['producer']}"
        ops = info.get("op_counts") or {}
        qdq = int(ops.get("QuantizeLinear", 0)) + int(ops.get("DequantizeLinear", 0))
        graph += f", {sum(ops.values())} nodes" + (f" ({qdq} Q/DQ)" if qdq else "")
        lines.append(summary_row("graph", graph))
        if not info.get("has_edgedet_spec"):
            lines.append(
                summary_row(
                    "spec", "read from the exporter's metadata (no edgedet spec; run takes --format/--names)"
                )
            )
    engine = info.get("engine")
    if isinstance(engine, dict):
        raw_key = engine.get("key")
        key: dict[str, Any] = raw_key if isinstance(raw_key, dict) else {}
        facts = [
            f"{label} {_short(src[k], 30)}"
            for label, src, k in (
                ("TensorRT", key, "tensorrt_version"), ("TensorRT", engine, "tensorrt"),
                ("GPU", key, "gpu_name"), ("GPU", engine, "gpu"), ("SM", key, "sm"),
            )
            if k in src
        ]  # fmt: skip
        if facts:
            lines.append(summary_row("built for", ", ".join(facts)))
    if info.get("gate"):  # the INT8 accuracy gate's verdict, stored by convert (issue 12)
        lines.append(summary_row("INT8 gate", str(info["gate"])))
    if info.get("sha256"):
        lines.append(summary_row("sha256", str(info["sha256"])))
    lines.append("--json prints everything (full spec, class names, metadata, op counts)")
    return lines
