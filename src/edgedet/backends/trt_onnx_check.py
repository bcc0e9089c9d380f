"""Will TensorRT 10's ONNX parser take this file? Checked here, before a Jetson spends minutes finding out.

Three rules from TensorRT 10's ONNX parser (the table in `_trt10_onnx_ops`):
- every node is an operator the parser supports, in the default ONNX domain (contrib ops such as ONNX
  Runtime's com.microsoft ones need plugins TensorRT does not have);
- the default-domain opset is inside TensorRT 10's range (9-20);
- UINT8 tensors appear only as network inputs or outputs: inside the network TensorRT reads INT8 only through
  symmetric Q/DQ, so a uint8 zero point (ONNX Runtime's CPU flavour of INT8) or a uint8 intermediate is refused.

`check_onnx_for_tensorrt(path)` returns the findings; `require_tensorrt_compatible(path)` raises ModelError
in one line naming them and the fix (for `convert --engine` before it builds). Operators marked restricted
are listed for the user to check against the conditions in onnx-tensorrt's operator table; they are not errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.backends._trt10_onnx_ops import OPSET_RANGE, SUPPORTED, UNSUPPORTED
from edgedet.errors import ModelError

_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class TrtOnnxCheck:
    """Findings for one ONNX file.

    opset: the default-domain opset. op_types: the distinct operators used (sorted).
    problems: one line each for what TensorRT 10 would refuse (empty = the parser takes it).
    restricted: supported operators that carry conditions in the table (check those by hand).
    """

    path: str
    opset: int
    op_types: tuple[str, ...]
    problems: tuple[str, ...]
    restricted: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = f"{Path(self.path).name}: opset {self.opset}, {len(self.op_types)} operator types"
        if self.ok:
            extra = (
                f"; restricted (check conditions): {', '.join(self.restricted)}" if self.restricted else ""
            )
            return f"{head}, TensorRT 10 parser: ok{extra}"
        return f"{head}, TensorRT 10 parser would refuse it: {'; '.join(self.problems)}"


def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for g in attr.graphs:
                yield from _graphs(g)


def check_onnx_for_tensorrt(model: str | Path | Any) -> TrtOnnxCheck:
    """Check an ONNX file (or a loaded ModelProto) against TensorRT 10's ONNX parser rules above."""
    onnx = require("onnx", "checking an ONNX file for TensorRT")
    where = str(model) if isinstance(model, (str, Path)) else "<model>"
    if isinstance(model, (str, Path)):
        try:
            model = onnx.load(str(model), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError, OSError... for unreadable files
            raise ModelError(f"cannot read {where} as ONNX ({type(exc).__name__}): re-export it") from exc
    problems: list[str] = []
    opset = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), 0)
    lo, hi = OPSET_RANGE
    if not lo <= opset <= hi:
        problems.append(
            f"opset {opset} is outside TensorRT 10's {lo}-{hi} (re-export with --opset {min(hi, 19)})"
        )

    ops: set[str] = set()
    bad_ops: dict[str, int] = {}
    for g in _graphs(model.graph):
        for node in g.node:
            if node.domain not in _DEFAULT_DOMAINS:
                key = f"{node.domain}.{node.op_type}"
                bad_ops[key] = bad_ops.get(key, 0) + 1
                continue
            ops.add(node.op_type)
            if node.op_type not in SUPPORTED:
                bad_ops[node.op_type] = bad_ops.get(node.op_type, 0) + 1
    for op, n in sorted(bad_ops.items()):
        why = (
            "not supported"
            if op in UNSUPPORTED or "." not in op
            else "a custom-domain operator (needs a plugin)"
        )
        problems.append(f"{op} x{n} is {why} by TensorRT 10's ONNX parser")

    problems.extend(_uint8_inside(onnx, model))
    restricted = tuple(sorted(op for op in ops if op in SUPPORTED and SUPPORTED[op][1]))
    return TrtOnnxCheck(where, int(opset), tuple(sorted(ops)), tuple(problems), restricted)


def _uint8_inside(onnx: Any, model: Any) -> list[str]:
    """Lines naming UINT8 initializers and intermediate tensors (graph inputs/outputs may be UINT8)."""
    uint8 = onnx.TensorProto.UINT8
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference fails on some exotic graphs: fall back to the types written in the file
        inferred = model
    graph = inferred.graph
    io = {v.name for v in (*graph.input, *graph.output)}
    inits = sorted(
        i.name for g in _graphs(graph) for i in g.initializer if i.data_type == uint8 and i.name not in io
    )
    inner = sorted(
        v.name
        for g in _graphs(graph)
        for v in g.value_info
        if v.type.tensor_type.elem_type == uint8 and v.name not in io
    )
    out = []
    if inits:
        out.append(
            f"{len(inits)} uint8 constants inside the network (e.g. {inits[0]!r}: uint8 Q/DQ zero points, ONNX "
            "Runtime's CPU flavour); TensorRT reads symmetric int8 Q/DQ only: quantize with --int8-target tensorrt"
        )
    if inner:
        out.append(
            f"{len(inner)} uint8 tensors inside the network (e.g. {inner[0]!r}); TensorRT takes uint8 only as a "
            "network input or output: cast to float or int8 before it is used"
        )
    return out


def require_tensorrt_compatible(path: str | Path) -> TrtOnnxCheck:
    """`check_onnx_for_tensorrt`, raising ModelError in one line when TensorRT 10 would refuse the file."""
    check = check_onnx_for_tensorrt(path)
    if not check.ok:
        raise ModelError(check.summary())
    return check


__all__ = ["TrtOnnxCheck", "check_onnx_for_tensorrt", "require_tensorrt_compatible"]
