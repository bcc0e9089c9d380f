"""Tiny ONNX models built with onnx.helper: fixed raw outputs in each head format, for tests that need a file.

The graph adds 0 * mean(input) to a constant, so ONNX Runtime really runs it and the output does not depend on
the image: the detections a test gets back are exactly the ones it put in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def yolov5_raw(
    boxes_cxcywh: np.ndarray, obj: np.ndarray, cls_prob: np.ndarray, n_total: int = 64
) -> np.ndarray:
    """[1, n_total, 5+nc] with the given rows first and zero rows after."""
    nc = cls_prob.shape[1]
    out = np.zeros((1, n_total, 5 + nc), np.float32)
    k = len(boxes_cxcywh)
    out[0, :k, :4] = boxes_cxcywh
    out[0, :k, 4] = obj
    out[0, :k, 5:] = cls_prob
    return out


def constant_model(
    path: Path,
    outputs: list[np.ndarray],
    input_hw: tuple[int, int] = (64, 64),
    metadata: dict[str, str] | None = None,
    input_name: str = "images",
    opset: int = 17,
) -> Path:
    """An ONNX model with input [1, 3, H, W] float32 whose outputs are the given constants."""
    h, w = input_hw
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for i, arr in enumerate(outputs):
        inits.append(numpy_helper.from_array(arr.astype(np.float32), f"c{i}"))
        nodes.append(helper.make_node("Add", [f"c{i}", "z"], [f"output{i}"]))
        outs.append(helper.make_tensor_value_info(f"output{i}", TensorProto.FLOAT, list(arr.shape)))
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, h, w])],
        outs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
