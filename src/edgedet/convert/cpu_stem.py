"""Run the stem convolution of a CPU INT8 Q/DQ graph as a float convolution over the float image.

Why: ONNX Runtime's uint8 x int8 convolution is slow on a 3-channel input: YOLOv5n's 6x6 stride-2 stem took
about 4 ms of a 19 ms INT8 run at 640 (1 thread), against under 2 ms as a float convolution. The stem keeps its
int8-rounded weights (dequantized here into a float initializer), so the file is the same model as the
all-int8 one except that the image is no longer rounded to the input's 8-bit grid (which was within 0.1% of the
pixels' own 1/255 steps); its output is quantized as before for the next layer. Measured on YOLOv5n, coco128:
640 1.22x -> 1.41x FP32 speed, mAP50-95 0.343 -> 0.344. Only for `--int8-target cpu` files.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from edgedet.convert.export_onnx import drop_unused_initializers


def run_stem_in_float(model: Any) -> str | None:
    """Rewrite `model` (a ModelProto, in place): the Conv fed by the dequantized graph input reads the float input
    and float weights. Returns the stem's name, or None when the graph has no such Conv (nothing changed)."""
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    if not graph.input:
        return None
    image = graph.input[0].name
    readers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    producer = {o: n for n in graph.node for o in n.output}
    inits = {t.name: t for t in graph.initializer}

    q = [n for n in readers.get(image, []) if n.op_type == "QuantizeLinear"]
    if len(q) != 1:
        return None
    dq = [n for n in readers.get(q[0].output[0], []) if n.op_type == "DequantizeLinear"]
    if len(dq) != 1:
        return None
    convs = [
        n for n in readers.get(dq[0].output[0], []) if n.op_type == "Conv" and n.input[0] == dq[0].output[0]
    ]
    if len(convs) != 1:
        return None
    stem = convs[0]
    wdq = producer.get(stem.input[1])
    if wdq is None or wdq.op_type != "DequantizeLinear" or not all(i in inits for i in wdq.input):
        return None
    w = numpy_helper.to_array(inits[wdq.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(inits[wdq.input[1]]).astype(np.float32)
    zero = numpy_helper.to_array(inits[wdq.input[2]]).astype(np.float32) if len(wdq.input) > 2 else 0.0
    axis = next((a.i for a in wdq.attribute if a.name == "axis"), 1)
    shape = [1] * w.ndim
    if np.ndim(scale) == 1:
        shape[axis] = -1
    weights = (w - np.reshape(zero, shape)) * np.reshape(scale, shape)
    folded = f"{stem.input[1]}_float"
    graph.initializer.append(numpy_helper.from_array(weights.astype(np.float32), folded))
    stem.input[0], stem.input[1] = image, folded

    still_read = {name for node in graph.node for name in node.input}
    drop = {id(wdq)} if wdq.output[0] not in still_read else set()
    if dq[0].output[0] not in still_read:
        drop.add(id(dq[0]))
        if len(readers[q[0].output[0]]) == 1:
            drop.add(id(q[0]))
    nodes = [n for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused_initializers(graph)
    return str(stem.name)


__all__ = ["run_stem_in_float"]
