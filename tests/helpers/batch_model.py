"""A tiny yolov5-format ONNX detector whose one box moves with each image's brightness, with a chosen batch.

For batching tests: every image of a batch gets its own answer, so a frame routed to the wrong stream, or a
batch split in the wrong order, changes the output. Row 0: centre x = 8 + 40 * mean(image in [0, 1]),
centre y = 32, 16 x 8 px, objectness 0.9, class 0. Output [B, 4, 6] (4 rows, 1 class).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgedet.spec import SPEC_KEY, ModelSpec


def brightness_model(path: Path, batch: int | str = "batch", input_hw: tuple[int, int] = (64, 64)) -> Path:
    """Write the model with input [batch, 3, H, W] (batch: an int for a fixed batch, a name for dynamic)."""
    h, w = input_hw
    base = np.zeros((1, 4, 6), np.float32)
    base[0, 0] = [8, 32, 16, 8, 0.9, 1.0]
    gain = np.zeros((1, 1, 6), np.float32)
    gain[0, 0, 0] = 40.0
    inits = [
        numpy_helper.from_array(base, "base"),
        numpy_helper.from_array(gain, "gain"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
    ]
    n = helper.make_node
    nodes = [
        n("ReduceMean", ["images", "axes"], ["m"], keepdims=1),  # [B,1,1,1]
        n("Reshape", ["m", "shape"], ["m3"]),  # [B,1,1]
        n("Mul", ["m3", "gain"], ["shift"]),  # [B,1,6]: only cx moves
        n("Add", ["base", "shift"], ["rows0"]),  # [B,4,6] by broadcasting
        n("Identity", ["rows0"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, h, w])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 4, 6])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    spec = ModelSpec(
        input_hw=input_hw,
        batch=batch if isinstance(batch, int) else 0,
        output_format="yolov5",
        class_names=("blob",),
        letterbox=False,
    )
    model.metadata_props.add(key=SPEC_KEY, value=spec.to_json())
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def expected_cx(image_bgr: np.ndarray) -> float:
    """The centre x the model reports for a frame of the model's input size (stretch, no letterbox)."""
    return 8.0 + 40.0 * float(np.mean(image_bgr.astype(np.float64) / 255.0))


__all__ = ["brightness_model", "expected_cx"]
