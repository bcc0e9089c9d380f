"""FP32 ONNX -> FP16 ONNX whose inputs and outputs stay float32.

Weights and activations are float16 inside; a Cast after each float input and before each float output keeps
the file a drop-in replacement (same I/O names, shapes and dtypes), which is what TensorRT's strongly typed
networks and ONNX Runtime both want. Written with `onnx` directly (onnxconverter-common pins an old protobuf).

Inputs that the ONNX spec requires to be float32 whatever the data type (Resize's roi/scales) are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgedet.errors import ModelError

# op type -> input positions that must stay float32 (ONNX spec: "tensor(float)" regardless of T)
_FLOAT32_ONLY_INPUTS: dict[str, tuple[int, ...]] = {"Resize": (1, 2), "Upsample": (1,)}
# ops whose output dtype comes from an attribute
_DTYPE_ATTRS: dict[str, str] = {
    "Cast": "to",
    "RandomNormal": "dtype",
    "RandomUniform": "dtype",
    "EyeLike": "dtype",
}
FP16_MAX = 65504.0


def convert_fp16(src: str | Path, out: str | Path) -> Path:
    """Write an FP16 copy of the FP32 model `src` to `out`; I/O stays float32. Returns `out`.

    Initializer values outside the float16 range are clipped to +-65504 (YOLO weights are far inside it).
    The edgedet spec in the metadata (if any) is carried over with precision "fp16".
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    src, out = Path(src), Path(out)
    model = onnx.load(str(src))
    graph = model.graph
    keep_fp32: set[str] = set()
    for node in _all_nodes(graph):
        for pos in _FLOAT32_ONLY_INPUTS.get(node.op_type, ()):
            if pos < len(node.input) and node.input[pos]:
                keep_fp32.add(node.input[pos])

    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in keep_fp32:
            init.CopyFrom(_to_fp16_tensor(init, numpy_helper))
    for node in _all_nodes(graph):
        if node.op_type == "Constant" and node.output[0] not in keep_fp32:
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(_to_fp16_tensor(attr.t, numpy_helper))
                elif attr.name in ("value_float", "value_floats"):
                    raise ModelError(
                        f"{src}: Constant {node.name!r} uses {attr.name}; simplify the model first"
                    )
        attr_name = _DTYPE_ATTRS.get(node.op_type)
        if attr_name:
            for attr in node.attribute:
                if attr.name == attr_name and attr.i == TensorProto.FLOAT and node.output[0] not in keep_fp32:
                    attr.i = TensorProto.FLOAT16

    existing = {n for node in _all_nodes(graph) for n in (*node.input, *node.output)}
    new_nodes: list[Any] = []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type != TensorProto.FLOAT or inp.name in {
            i.name for i in graph.initializer
        }:
            continue
        casted = _fresh(f"{inp.name}_fp16", existing)
        _rename_uses(graph, inp.name, casted)
        new_nodes.append(
            helper.make_node("Cast", [inp.name], [casted], name=casted + "_cast", to=TensorProto.FLOAT16)
        )
    tail: list[Any] = []
    for outp in graph.output:
        if outp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        produced = _fresh(f"{outp.name}_fp16", existing)
        for node in graph.node:
            for i, name in enumerate(node.output):
                if name == outp.name:
                    node.output[i] = produced
        _rename_uses(graph, outp.name, produced)
        tail.append(
            helper.make_node("Cast", [produced], [outp.name], name=outp.name + "_cast", to=TensorProto.FLOAT)
        )
    nodes = [*new_nodes, *graph.node, *tail]
    del graph.node[:]
    graph.node.extend(nodes)
    # intermediate type annotations are now wrong (float -> float16): drop them, ONNX Runtime re-infers
    del graph.value_info[:]

    _retag_spec(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(
            f"{src}: FP16 conversion produced an invalid graph ({str(exc).splitlines()[0]})"
        ) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out), save_as_external_data=False)
    return out


def _to_fp16_tensor(t: Any, numpy_helper: Any) -> Any:
    arr = numpy_helper.to_array(t).astype(np.float32)
    arr16 = np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(arr16, t.name)


def _all_nodes(graph: Any) -> list[Any]:
    """Nodes of the graph and of every subgraph (If/Loop bodies)."""
    out: list[Any] = []
    stack = [graph]
    while stack:
        g = stack.pop()
        for node in g.node:
            out.append(node)
            for attr in node.attribute:
                if attr.g.node:
                    stack.append(attr.g)
                stack.extend(sg for sg in attr.graphs)
    return out


def _rename_uses(graph: Any, old: str, new: str) -> None:
    for node in _all_nodes(graph):
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _fresh(base: str, taken: set[str]) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _retag_spec(model: Any) -> None:
    from edgedet.spec import SPEC_KEY, ModelSpec

    for p in model.metadata_props:
        if p.key == SPEC_KEY:
            spec = ModelSpec.from_json(p.value, where=f"metadata {SPEC_KEY}")
            prov = dict(spec.provenance)
            prov["fp16"] = "float16 weights and activations, float32 I/O (edgedet.convert.fp16)"
            p.value = spec.replace(precision="fp16", provenance=prov).to_json()
