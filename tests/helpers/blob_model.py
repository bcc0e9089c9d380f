"""A real (image-dependent) detector in plain ONNX ops: one box per colour, around that colour's pixels.

For end-to-end tests that need detections that MOVE with the scene (a GStreamer `videotestsrc pattern=ball`
over RTSP, a synthetic scene), where the constant models of tiny_models.py cannot help.

Class k is a colour given as a sign per RGB channel (+1: the channel must be high, -1: low); a pixel belongs
to class k when every channel is on the required side of 0.5 by at least `margin` (input scaled to [0, 1]).
For each class the model outputs one yolov5 row: the centroid (cx, cy) of its pixels, w = 4 * std(x) and
h = 4 * std(y) (exact for a filled disc: 4 * sd = its diameter; 1.15x the side of a square), objectness `obj` when it has at least `min_pixels` pixels else 0, and a one-hot
class probability. Output [1, K, 5 + K], format yolov5, boxes in input pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgedet.spec import SPEC_KEY, ModelSpec

WHITE = (1, 1, 1)
RED = (1, -1, -1)
GREEN = (-1, 1, -1)
BLUE = (-1, -1, 1)


def blob_model(
    path: Path,
    input_hw: tuple[int, int] = (120, 160),
    colors: tuple[tuple[int, int, int], ...] = (WHITE,),
    names: tuple[str, ...] | None = None,
    margin: float = 0.2,
    min_pixels: float = 30.0,
    obj: float = 0.9,
    letterbox: bool = False,
) -> Path:
    """Write the blob detector to `path` (RGB input [1, 3, H, W] float32 in [0, 1]) and return `path`.

    With `letterbox=False` (stretch) and `input_hw` equal to the frame size, boxes are in frame pixels as-is.
    """
    h, w = input_hw
    k = len(colors)
    signs = np.asarray(colors, np.float32).reshape(k, 3, 1, 1)
    xs = (np.arange(w, dtype=np.float32) + 0.5).reshape(1, 1, 1, w)
    ys = (np.arange(h, dtype=np.float32) + 0.5).reshape(1, 1, h, 1)
    consts = {
        "half": np.float32(0.5),
        "signs": signs,
        "margin": np.float32(margin),
        "xs": xs,
        "ys": ys,
        "eps": np.float32(1e-6),
        "four": np.float32(4.0),
        "zero": np.float32(0.0),
        "minpix": np.float32(min_pixels),
        "obj": np.float32(obj),
        "eye": np.eye(k, dtype=np.float32),
        "axes_hw": np.array([2, 3], np.int64),
        "shape_k5": np.array([k, 5], np.int64),
        "shape_out": np.array([1, k, 5 + k], np.int64),
    }
    n = helper.make_node
    nodes = [
        n("Sub", ["images", "half"], ["centred"]),  # [1,3,H,W]
        n("Mul", ["centred", "signs"], ["signed"]),  # [K,3,H,W]
        n("ReduceMin", ["signed"], ["worst"], axes=[1], keepdims=1),  # [K,1,H,W]
        n("Greater", ["worst", "margin"], ["is_on"]),
        n("Cast", ["is_on"], ["mask"], to=TensorProto.FLOAT),
        n("ReduceSum", ["mask", "axes_hw"], ["count"], keepdims=1),  # [K,1,1,1]
        n("Add", ["count", "eps"], ["count_eps"]),
        n("Mul", ["mask", "xs"], ["mx"]),
        n("Mul", ["mask", "ys"], ["my"]),
        n("ReduceSum", ["mx", "axes_hw"], ["sx"], keepdims=1),
        n("ReduceSum", ["my", "axes_hw"], ["sy"], keepdims=1),
        n("Div", ["sx", "count_eps"], ["cx"]),
        n("Div", ["sy", "count_eps"], ["cy"]),
        n("Mul", ["mx", "xs"], ["mxx"]),
        n("Mul", ["my", "ys"], ["myy"]),
        n("ReduceSum", ["mxx", "axes_hw"], ["sxx"], keepdims=1),
        n("ReduceSum", ["myy", "axes_hw"], ["syy"], keepdims=1),
        n("Div", ["sxx", "count_eps"], ["exx"]),
        n("Div", ["syy", "count_eps"], ["eyy"]),
        n("Mul", ["cx", "cx"], ["cx2"]),
        n("Mul", ["cy", "cy"], ["cy2"]),
        n("Sub", ["exx", "cx2"], ["vx_raw"]),
        n("Sub", ["eyy", "cy2"], ["vy_raw"]),
        n("Max", ["vx_raw", "zero"], ["vx"]),
        n("Max", ["vy_raw", "zero"], ["vy"]),
        n("Sqrt", ["vx"], ["sdx"]),
        n("Sqrt", ["vy"], ["sdy"]),
        n("Mul", ["sdx", "four"], ["bw"]),
        n("Mul", ["sdy", "four"], ["bh"]),
        n("Greater", ["count", "minpix"], ["present"]),
        n("Cast", ["present"], ["present_f"], to=TensorProto.FLOAT),
        n("Mul", ["present_f", "obj"], ["objness"]),
        n("Concat", ["cx", "cy", "bw", "bh", "objness"], ["box5"], axis=1),  # [K,5,1,1]
        n("Reshape", ["box5", "shape_k5"], ["box5_k"]),  # [K,5]
        n("Concat", ["box5_k", "eye"], ["rows"], axis=1),  # [K, 5+K]
        n("Reshape", ["rows", "shape_out"], ["output0"]),
    ]
    inits = [numpy_helper.from_array(np.asarray(v), name) for name, v in consts.items()]
    graph = helper.make_graph(
        nodes,
        "blob_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, k, 5 + k])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    spec = ModelSpec(
        input_hw=input_hw,
        letterbox=letterbox,
        pad_value=0,
        output_format="yolov5",
        class_names=names if names is not None else tuple(f"blob{i}" for i in range(k)),
        stride=1,
    )
    model.metadata_props.add(key=SPEC_KEY, value=spec.to_json())
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
