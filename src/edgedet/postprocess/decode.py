"""Raw detector outputs -> candidate boxes, one function per ModelSpec.output_format.

Every decoder returns `Candidates`: (xyxy float32 (N, 4), score float32 (N,), class_id int32 (N,)) in
MODEL-INPUT pixels (the letterboxed tensor's), keeping only scores strictly above `conf_threshold` (as YOLOv5
and Ultralytics do). Outputs are batched ([B, ...]); one call decodes one image, `batch_index` (0 by default,
the runtime case of batch 1). The inputs are never modified (backends may hand us their reused buffers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from edgedet.errors import ModelError

__all__ = ["DECODERS", "Candidates", "decode", "decode_end2end", "decode_yolov5", "decode_yolov8"]

Candidates = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int32]]

_EXPECTED = {
    "yolov5": "one output [B, N, 5+nc] (cx, cy, w, h, obj, class probs)",
    "yolov8": "one output [B, 4+nc, N] (cx, cy, w, h, class scores)",
    "end2end": "one output [B, K, 6] (x1, y1, x2, y2, score, class) or boxes [B, K, 4] + scores [B, K] + labels [B, K]",
}


def _shapes(outputs: Sequence[np.ndarray]) -> str:
    return ", ".join(str(list(np.shape(o))) for o in outputs) or "none"


def _misfit(fmt: str, outputs: Sequence[np.ndarray], why: str) -> ModelError:
    others = ", ".join(f"{k}: {v}" for k, v in _EXPECTED.items() if k != fmt)
    return ModelError(
        f"model outputs {_shapes(outputs)} do not fit --format {fmt} ({why}); expected {_EXPECTED[fmt]}; "
        f"other formats take {others}: pass the matching --format or re-export the model"
    )


def _pick(fmt: str, outputs: Sequence[np.ndarray], out: np.ndarray, batch_index: int) -> np.ndarray:
    if not 0 <= batch_index < out.shape[0]:
        raise _misfit(fmt, outputs, f"batch index {batch_index} is outside batch size {out.shape[0]}")
    return out[batch_index]


def _cxcywh_to_xyxy(b: np.ndarray) -> npt.NDArray[np.float32]:
    """(N, 4) cx, cy, w, h -> (N, 4) float32 x1, y1, x2, y2 (a new array)."""
    b = np.asarray(b, np.float32)
    half = b[:, 2:4] * np.float32(0.5)
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1)


def _check_classes(fmt: str, outputs: Sequence[np.ndarray], nc: int, num_classes: int | None) -> None:
    if nc < 1:
        raise _misfit(fmt, outputs, "no class columns")
    if num_classes and nc != num_classes:
        raise ModelError(
            f"model outputs {_shapes(outputs)} carry {nc} classes but the model spec names {num_classes}; "
            "pass the model's own class names (--names) or check --format"
        )


def _select(
    xyxy: npt.NDArray[np.float32], cls_scores: np.ndarray, conf_threshold: float, multi_label: bool
) -> Candidates:
    """From per-class scores (M, nc): best class per box, or one candidate per (box, class) above threshold."""
    if multi_label:
        i, j = np.nonzero(cls_scores > conf_threshold)
        return xyxy[i], cls_scores[i, j].astype(np.float32, copy=False), j.astype(np.int32)
    j = cls_scores.argmax(axis=1)
    score = np.take_along_axis(cls_scores, j[:, None], axis=1)[:, 0]
    m = score > conf_threshold
    return xyxy[m], score[m].astype(np.float32, copy=False), j[m].astype(np.int32)


def decode_yolov5(
    outputs: Sequence[np.ndarray],
    conf_threshold: float = 0.25,
    multi_label: bool = False,
    num_classes: int | None = None,
    batch_index: int = 0,
) -> Candidates:
    """YOLOv5 head [B, N, 5+nc]: cx, cy, w, h (input px), objectness, class probabilities (post-sigmoid).

    score = obj * class prob. Rows are first filtered on obj > conf_threshold, as YOLOv5 does: obj bounds
    the score (probs <= 1) and it is one strided column, so the (N, nc) product is formed for a few rows only.
    """
    if len(outputs) != 1 or np.ndim(outputs[0]) != 3:
        raise _misfit("yolov5", outputs, "need one 3-D output")
    out = np.asarray(outputs[0])
    _check_classes("yolov5", outputs, out.shape[2] - 5, num_classes)
    x = _pick("yolov5", outputs, out, batch_index)
    x = x[x[:, 4] > conf_threshold]
    cls_scores = x[:, 5:] * x[:, 4:5]
    return _select(_cxcywh_to_xyxy(x[:, :4]), cls_scores, conf_threshold, multi_label)


def decode_yolov8(
    outputs: Sequence[np.ndarray],
    conf_threshold: float = 0.25,
    multi_label: bool = False,
    num_classes: int | None = None,
    batch_index: int = 0,
) -> Candidates:
    """Ultralytics YOLOv8/11 head [B, 4+nc, N]: cx, cy, w, h (input px), class scores (post-sigmoid), no obj.

    Also accepts the transposed [B, N, 4+nc] some exporters write, when the class count makes it unambiguous
    (num_classes given and only the last axis equals 4+nc).
    """
    if len(outputs) != 1 or np.ndim(outputs[0]) != 3:
        raise _misfit("yolov8", outputs, "need one 3-D output")
    out = np.asarray(outputs[0])
    channels = 4 + num_classes if num_classes else -1
    transposed = out.shape[2] == channels and out.shape[1] != channels
    if not transposed and out.shape[1] > out.shape[2]:
        raise _misfit("yolov8", outputs, "the channel axis (4+nc) is longer than the anchor axis")
    nc = (out.shape[2] if transposed else out.shape[1]) - 4
    _check_classes("yolov8", outputs, nc, num_classes)
    x = _pick("yolov8", outputs, out, batch_index)
    if transposed:
        x = x.T
    # Rows of the [4+nc, N] layout are contiguous: the per-anchor max over classes is one fast reduction,
    # and only the anchors above threshold are gathered and transposed.
    best = x[4:].max(axis=0)
    idx = np.nonzero(best > conf_threshold)[0]
    cand = x[:, idx].T  # (M, 4+nc)
    return _select(_cxcywh_to_xyxy(cand[:, :4]), cand[:, 4:], conf_threshold, multi_label)


def decode_end2end(
    outputs: Sequence[np.ndarray],
    conf_threshold: float = 0.25,
    multi_label: bool = False,
    num_classes: int | None = None,
    batch_index: int = 0,
) -> Candidates:
    """NMS-free heads (YOLOv10 / YOLO26 style): [B, K, 6] rows x1, y1, x2, y2, score, class (input px);
    or three outputs boxes [B, K, 4] + scores [B, K] + labels [B, K] in any order (scores are the float
    one, labels the integer one; with both float, the first 2-D output is the scores); an extra [B] or
    [B, 1] integer output is taken as the number of valid rows (EfficientNMS style).

    `multi_label` does not apply (the model already chose one class per row); `num_classes` only checks
    that labels are in range.
    """
    del multi_label
    count: int | None = None
    if len(outputs) == 1:
        out = np.asarray(outputs[0])
        if out.ndim != 3 or out.shape[2] != 6:
            raise _misfit("end2end", outputs, "a single output must be [B, K, 6]")
        x = _pick("end2end", outputs, out, batch_index)
        boxes, score, label = x[:, :4], x[:, 4], x[:, 5]
    else:
        arrays = [np.asarray(o) for o in outputs]
        box_i = [i for i, a in enumerate(arrays) if a.ndim == 3 and a.shape[2] == 4]
        # A count output only exists beside the three others; a [1, 1] labels output must not pass for one.
        counts = [
            i
            for i, a in enumerate(arrays)
            if len(arrays) == 4
            and np.issubdtype(a.dtype, np.integer)
            and a.ndim >= 1
            and a.size == a.shape[0]
        ]
        rest = [i for i, a in enumerate(arrays) if a.ndim == 2 and i not in box_i and i not in counts]
        if len(box_i) != 1 or len(rest) != 2 or len(arrays) != 3 + len(counts) or len(counts) > 1:
            raise _misfit(
                "end2end", outputs, "cannot tell boxes [B, K, 4], scores [B, K] and labels [B, K] apart"
            )
        ints = [i for i in rest if np.issubdtype(arrays[i].dtype, np.integer)]
        label_i = ints[0] if len(ints) == 1 else rest[1]
        score_i = rest[0] if label_i == rest[1] else rest[1]
        b, s, lab = arrays[box_i[0]], arrays[score_i], arrays[label_i]
        if not (b.shape[:2] == s.shape == lab.shape):
            raise _misfit("end2end", outputs, "boxes, scores and labels disagree on [B, K]")
        boxes = _pick("end2end", outputs, b, batch_index)
        score, label = s[batch_index], lab[batch_index]
        if counts:
            count = int(arrays[counts[0]].reshape(-1)[batch_index])
    if count is not None:
        boxes, score, label = boxes[:count], score[:count], label[:count]
    m = score > conf_threshold
    class_id = np.rint(label[m]).astype(np.int32) if label.dtype.kind == "f" else label[m].astype(np.int32)
    if num_classes and class_id.size and (class_id.min() < 0 or class_id.max() >= num_classes):
        raise ModelError(
            f"model labels range {class_id.min()}..{class_id.max()} but the model spec names {num_classes} "
            "classes; pass the model's own class names (--names) or check --format"
        )
    return np.asarray(boxes[m], np.float32).copy(), np.asarray(score[m], np.float32).copy(), class_id


Decoder = Callable[..., Candidates]
DECODERS: dict[str, Decoder] = {"yolov5": decode_yolov5, "yolov8": decode_yolov8, "end2end": decode_end2end}


def decode(
    output_format: str,
    outputs: Sequence[np.ndarray],
    conf_threshold: float = 0.25,
    multi_label: bool = False,
    num_classes: int | None = None,
    batch_index: int = 0,
) -> Candidates:
    """Dispatch on `output_format` (a key of DECODERS); see the decoders for each layout."""
    try:
        fn = DECODERS[output_format]
    except KeyError:
        raise ModelError(
            f"unknown output format {output_format!r}; use one of {', '.join(DECODERS)}"
        ) from None
    return fn(outputs, conf_threshold, multi_label, num_classes, batch_index)
