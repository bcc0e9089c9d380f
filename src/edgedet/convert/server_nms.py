"""Decode + NMS appended to a raw YOLO ONNX graph, so a server sends detections instead of the raw head.

Raw heads are large (YOLOv5n at 320: 6300 x 85 floats, 2.1 MB a frame; at 640 four times that); the end2end
output is [1, K, 6] (x1, y1, x2, y2, score, class) in model-input pixels, K <= max_det, about 24 bytes a
detection. The appended ops follow the client's postprocess (`edgedet.postprocess`): score = obj * class
probability (yolov5) or the class score (yolov8); the best class per box (no multi-label); only scores above
`conf`; class-aware NMS by shifting each class into its own region (as the host NMS does) with ONNX's
NonMaxSuppression (suppress above `iou`); the `max_det` best kept, in descending score. ONNX Runtime's NMS
works in float32, the host's in float64, so a box at the exact threshold may go the other way.

Batch 1 only: NonMaxSuppression returns a variable number of rows for the whole batch, which a fixed
[B, K, 6] output cannot hold without a per-image scatter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedet.errors import ConfigError, ModelError
from edgedet.spec import SPEC_KEY, read_onnx_spec

__all__ = ["add_server_nms"]

#: per-class shift of the boxes for class-aware NMS (boxes are in input pixels, at most 8192)
_CLASS_STEP = 16384.0


def add_server_nms(
    src: str | Path, dst: str | Path, *, conf: float = 0.25, iou: float = 0.45, max_det: int = 300
) -> Path:
    """Write `dst`: the model of `src` with decode + NMS appended; its spec says output_format end2end."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = read_onnx_spec(src)
    if spec.output_format not in ("yolov5", "yolov8"):
        raise ConfigError(
            f"{Path(src).name} is already {spec.output_format}: server-side NMS is for raw heads"
        )
    if spec.batch != 1:
        raise ConfigError(
            "server-side NMS needs a batch-1 model (NonMaxSuppression's output is one list for the whole "
            "batch); export without --dynamic"
        )
    if not (0.0 <= conf < 1.0 and 0.0 < iou <= 1.0 and max_det >= 1):
        raise ConfigError(f"bad NMS settings conf={conf} iou={iou} max_det={max_det}")
    model = onnx.load(str(src))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise ConfigError(
            f"{Path(src).name} has opset {opset}; server-side NMS needs 13 or later: re-export it"
        )
    graph = model.graph
    if len(graph.output) != 1:
        raise ModelError(f"{Path(src).name} has {len(graph.output)} outputs; expected one raw head")
    raw = graph.output[0].name
    m = np.array(
        [[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]], np.float32
    )  # cxcywh->xyxy
    consts: dict[str, np.ndarray] = {
        "nms_cxcywh_to_xyxy": m,
        "nms_class_step": np.array(_CLASS_STEP, np.float32),
        "nms_max_per_class": np.array([max_det], np.int64),
        "nms_iou": np.array([iou], np.float32),
        "nms_conf": np.array([conf], np.float32),
        "nms_max_det": np.array([max_det], np.int64),
        "nms_s0": np.array([0], np.int64), "nms_s4": np.array([4], np.int64), "nms_s5": np.array([5], np.int64),
        "nms_big": np.array([1 << 30], np.int64), "nms_ax2": np.array([2], np.int64),
        "nms_ax0": np.array([0], np.int64), "nms_ax1": np.array([1], np.int64),
        "nms_col2": np.array([2], np.int64),
    }  # fmt: skip
    for k, v in consts.items():
        graph.initializer.append(numpy_helper.from_array(v, k))
    n = helper.make_node
    nodes = []
    if spec.output_format == "yolov8":  # [1, 4+nc, N] -> [1, N, 4+nc]
        nodes.append(n("Transpose", [raw], ["nms_rows"], perm=[0, 2, 1]))
        rows = "nms_rows"
        nodes += [
            n("Slice", [rows, "nms_s0", "nms_s4", "nms_ax2"], ["nms_xywh"]),
            n("Slice", [rows, "nms_s4", "nms_big", "nms_ax2"], ["nms_cls_scores"]),
        ]
    else:  # yolov5 [1, N, 5+nc]: score = obj * class probability
        rows = raw
        nodes += [
            n("Slice", [rows, "nms_s0", "nms_s4", "nms_ax2"], ["nms_xywh"]),
            n("Slice", [rows, "nms_s4", "nms_s5", "nms_ax2"], ["nms_obj"]),
            n("Slice", [rows, "nms_s5", "nms_big", "nms_ax2"], ["nms_cls"]),
            n("Mul", ["nms_cls", "nms_obj"], ["nms_cls_scores"]),
        ]
    nodes += [
        n("MatMul", ["nms_xywh", "nms_cxcywh_to_xyxy"], ["nms_xyxy"]),  # [1, N, 4]
        # [1, N]; ReduceMax takes its axes as an input from opset 18, as an attribute before
        n("ReduceMax", ["nms_cls_scores", "nms_ax2"], ["nms_best"], keepdims=0)
        if opset >= 18
        else n("ReduceMax", ["nms_cls_scores"], ["nms_best"], axes=[2], keepdims=0),
        n("ArgMax", ["nms_cls_scores"], ["nms_best_cls"], axis=2, keepdims=0),  # [1, N] int64
        n("Cast", ["nms_best_cls"], ["nms_best_cls_f"], to=TensorProto.FLOAT),
        n("Mul", ["nms_best_cls_f", "nms_class_step"], ["nms_shift1"]),
        n("Unsqueeze", ["nms_shift1", "nms_ax2"], ["nms_shift"]),  # [1, N, 1]
        n("Add", ["nms_xyxy", "nms_shift"], ["nms_boxes_shifted"]),
        n("Unsqueeze", ["nms_best", "nms_ax1"], ["nms_scores"]),  # [1, 1, N]
        n(
            "NonMaxSuppression",
            ["nms_boxes_shifted", "nms_scores", "nms_max_per_class", "nms_iou", "nms_conf"],
            ["nms_selected"],
            center_point_box=0,
        ),  # [M, 3]: batch, class (0), box index
        n("Gather", ["nms_selected", "nms_col2"], ["nms_idx2"], axis=1),  # [M, 1]
        n("Squeeze", ["nms_idx2", "nms_ax1"], ["nms_idx"]),  # [M]
        n("Squeeze", ["nms_xyxy", "nms_ax0"], ["nms_xyxy0"]),  # [N, 4]
        n("Squeeze", ["nms_best", "nms_ax0"], ["nms_best0"]),  # [N]
        n("Squeeze", ["nms_best_cls_f", "nms_ax0"], ["nms_cls0"]),  # [N]
        n("Gather", ["nms_best0", "nms_idx"], ["nms_sel_scores"], axis=0),  # [M]
        n("Shape", ["nms_sel_scores"], ["nms_m"]),
        n("Min", ["nms_m", "nms_max_det"], ["nms_k"]),
        n(
            "TopK",
            ["nms_sel_scores", "nms_k"],
            ["nms_top_scores", "nms_top_pos"],
            axis=0,
            largest=1,
            sorted=1,
        ),
        n("Gather", ["nms_idx", "nms_top_pos"], ["nms_top_idx"], axis=0),
        n("Gather", ["nms_xyxy0", "nms_top_idx"], ["nms_top_boxes"], axis=0),  # [K, 4]
        n("Gather", ["nms_cls0", "nms_top_idx"], ["nms_top_cls"], axis=0),  # [K]
        n("Unsqueeze", ["nms_top_scores", "nms_ax1"], ["nms_top_scores1"]),
        n("Unsqueeze", ["nms_top_cls", "nms_ax1"], ["nms_top_cls1"]),
        n("Concat", ["nms_top_boxes", "nms_top_scores1", "nms_top_cls1"], ["nms_dets"], axis=1),  # [K, 6]
        n("Unsqueeze", ["nms_dets", "nms_ax0"], ["detections"]),  # [1, K, 6]
    ]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, "K", 6]))
    new_spec = spec.replace(output_format="end2end")
    for p in model.metadata_props:
        if p.key == SPEC_KEY:
            p.value = new_spec.to_json()
            break
    else:
        model.metadata_props.add(key=SPEC_KEY, value=new_spec.to_json())
    onnx.checker.check_model(model)
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
