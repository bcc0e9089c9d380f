"""Fuse SiLU (x * Sigmoid(x)) into ONNX Runtime's one-pass `com.microsoft.QuickGelu` in a CPU INT8 Q/DQ graph.

Why: ONNX Runtime's CPU kernels run a quantized SiLU as QLinearSigmoid (a scalar table lookup) plus QLinearMul,
which on YOLOv5n@320 (1 thread) cost 1.9 ms of a 5.5 ms INT8 run, more than the FP32 model's whole fused SiLU
(QuickGelu, 0.55 ms): the INT8 file was barely faster than FP32. Dequantizing the conv output, running one
vectorised QuickGelu and quantizing again costs 1.3 ms and is exact (no rounding of the sigmoid in between), so
the same calibration gives a faster and more accurate model (see benchmarks/bench_precision.py).

Only for `--int8-target cpu` files: QuickGelu is an ONNX Runtime contrib op, which TensorRT's parser does not
read (TensorRT fuses SiLU into its INT8 conv kernels itself, so its file keeps the plain Sigmoid * Mul).

Patterns rewritten (x is any tensor; every intermediate must have no other reader and not be a graph output):
    x -> Sigmoid -> QuantizeLinear -> DequantizeLinear -> Mul(x, .)     (SiLU quantized inside)
    x -> Sigmoid -> Mul(x, .)                                           (SiLU left in float)
become `QuickGelu(x, alpha=1)` writing the Mul's output tensor, so what reads the Mul reads it unchanged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from edgedet.convert.export_onnx import drop_unused_initializers

CONTRIB_DOMAIN = "com.microsoft"
#: SiLU's minimum is at x = -1.2785; below it SiLU rises back towards 0
_SILU_ARGMIN = -1.2784645


def fuse_silu(model: Any) -> int:
    """Rewrite every SiLU of the ONNX `model` (a ModelProto, changed in place) into QuickGelu; returns how many."""
    from onnx import helper

    graph = model.graph
    readers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    graph_outputs = {o.name for o in graph.output}

    def only_reader(tensor: str, op_type: str) -> Any | None:
        r = readers.get(tensor, [])
        if len(r) != 1 or r[0].op_type != op_type or tensor in graph_outputs:
            return None
        return r[0]

    dropped: set[int] = set()
    replace: dict[int, Any] = {}
    for sig in graph.node:
        if sig.op_type != "Sigmoid" or sig.domain not in ("", "ai.onnx"):
            continue
        x = sig.input[0]
        chain = [sig]
        gate = sig.output[0]
        q = only_reader(gate, "QuantizeLinear")
        if q is not None:
            dq = only_reader(q.output[0], "DequantizeLinear")
            if dq is None:
                continue
            chain += [q, dq]
            gate = dq.output[0]
        mul = only_reader(gate, "Mul")
        if mul is None or sorted(mul.input) != sorted([x, gate]) or x == gate:
            continue
        for n in chain:
            dropped.add(id(n))
        replace[id(mul)] = helper.make_node(
            "QuickGelu",
            [x],
            [mul.output[0]],
            name=f"{mul.name or sig.name}_silu",
            domain=CONTRIB_DOMAIN,
            alpha=1.0,
        )
    if not replace:
        return 0
    nodes = [replace.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == CONTRIB_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    drop_unused_initializers(graph)  # the removed Q/DQ pairs' scales and zero points
    return len(replace)


def silu_pairs(model: Any) -> list[tuple[str, str]]:
    """(input, output) tensor names of every float SiLU (x -> Sigmoid -> Mul(x, sigmoid)) in `model`."""
    readers: dict[str, list[Any]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            readers[name].append(node)
    pairs = []
    for sig in model.graph.node:
        if sig.op_type != "Sigmoid":
            continue
        x = sig.input[0]
        for mul in readers.get(sig.output[0], []):
            if mul.op_type == "Mul" and sorted(mul.input) == sorted([x, sig.output[0]]):
                pairs.append((x, mul.output[0]))
    return pairs


def _silu(x: float) -> float:
    return x / (1.0 + math.exp(-x))


def clip_silu_inputs(model: Any, ranges: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Ranges with each SiLU input's low end raised to where SiLU is within half an output step of 0.

    A conv feeding a SiLU is quantized on its own (uint8, asymmetric) range, and a long negative tail (YOLOv5n's
    stem reaches about -20) spends most of the 256 levels on inputs that SiLU maps to ~0. Below the point t where
    |SiLU(t)| is half the SiLU output's quantization step, every input rounds to the same output level anyway,
    so [t, high] loses nothing there and halves the step for the values that matter. Only for uint8 (CPU) files.
    """
    out = dict(ranges)
    for x, y in silu_pairs(model):
        if x not in ranges or y not in ranges:
            continue
        lo, hi = ranges[x]
        y_lo, y_hi = ranges[y]
        half_step = (y_hi - min(y_lo, 0.0)) / 255 / 2
        if half_step <= 0 or lo >= _SILU_ARGMIN:
            continue
        a, b = (
            -60.0,
            _SILU_ARGMIN,
        )  # |SiLU| falls monotonically from b down to a: bisect |SiLU(t)| = half_step
        if abs(_silu(a)) > half_step:
            continue
        for _ in range(60):
            mid = (a + b) / 2
            if abs(_silu(mid)) > half_step:
                b = mid
            else:
                a = mid
        out[x] = (max(lo, a), hi)
    return out


__all__ = ["CONTRIB_DOMAIN", "clip_silu_inputs", "fuse_silu", "silu_pairs"]
