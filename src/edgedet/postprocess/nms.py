"""Greedy non-maximum suppression on the host: class-aware (per-class coordinate offset) or agnostic.

Contract shared by every path here (and tested against a plainly written greedy reference):

- candidates are visited in descending score; equal scores keep their input order (lower index first);
- a candidate is suppressed when its IoU with an already kept box of the same class (any class when
  `agnostic`) is strictly greater than `iou_threshold`;
- IoU is `boxes.iou_matrix`'s: intersection over union in float64, and 0 when the union is 0 (so boxes of
  zero area never suppress anything);
- only the `top_k` highest-scoring candidates take part; at most `max_det` are kept.

Two engines give that result: OpenCV's C++ `cv2.dnn.NMSBoxes` (fed our own class offsets, in float64) and a
vectorised numpy loop. `nms` picks OpenCV where it agrees with the contract (positive scores, positive box
areas) because it measured faster at every candidate count we tried (benchmarks/bench_nms.py), and numpy
otherwise.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["nms", "nms_numpy", "nms_opencv"]

IntpArray = npt.NDArray[np.int64]


def _prepare(
    xyxy: npt.ArrayLike, score: npt.ArrayLike, class_id: npt.ArrayLike | None, top_k: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64] | None, IntpArray]:
    """Validate, cast to float64 and return (boxes, scores, class ids, order of the top_k by score)."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(score, dtype=np.float64).reshape(-1)
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"nms: {boxes.shape[0]} boxes but {scores.shape[0]} scores; pass one score per box")
    classes = None
    if class_id is not None:
        classes = np.asarray(class_id).reshape(-1).astype(np.int64, copy=False)
        if classes.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"nms: {boxes.shape[0]} boxes but {classes.shape[0]} class ids; pass one per box"
            )
    # Stable sort on the negated score: the tie rule (lower index first) is the same as OpenCV's
    # std::stable_sort, and it makes the result a pure function of the input order.
    order = np.argsort(-scores, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    return boxes, scores, classes, order


def _offset_boxes(boxes: npt.NDArray[np.float64], classes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Shift each class into its own region so one agnostic pass never compares two classes.

    torchvision's `batched_nms` trick, with a step of (max - min + 1) rather than (max + 1): boxes in input
    pixels can be negative (half outside the input), and (max + 1) would then let two classes overlap
    (OpenCV's NMSBoxesBatched has that flaw). float64 keeps the shifted sides exact for pixel values.
    """
    return boxes + (classes.astype(np.float64) * _class_step(boxes))[:, None]


def _class_step(boxes: npt.NDArray[np.float64]) -> float:
    """The class offset's step: the span of the finite coordinates + 1. A box with a NaN or infinite side
    never suppresses nor is suppressed (its IoU is NaN or 0); it must not turn every offset into NaN."""
    finite = boxes[np.isfinite(boxes)]
    return float(finite.max()) - float(finite.min()) + 1.0 if finite.size else 1.0


def nms_numpy(
    xyxy: npt.ArrayLike,
    score: npt.ArrayLike,
    class_id: npt.ArrayLike | None = None,
    iou_threshold: float = 0.45,
    agnostic: bool = False,
    max_det: int = 300,
    top_k: int = 30000,
) -> IntpArray:
    """Greedy NMS in numpy: one vectorised IoU row per kept box. Same contract and result as `nms`."""
    boxes, _, classes, order = _prepare(xyxy, score, class_id, top_k)
    if order.size == 0 or max_det <= 0:
        return np.zeros(0, np.int64)
    if classes is not None and not agnostic:
        boxes = _offset_boxes(boxes, classes)
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, j]) for j in range(4))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    pos = np.arange(order.size)  # positions into the sorted arrays still alive
    keep: list[int] = []
    while pos.size:
        i = int(pos[0])
        keep.append(i)
        if len(keep) >= max_det:
            break
        rest = pos[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        pos = rest[~_iou_gt(inter, union, iou_threshold)]
    return order[np.asarray(keep, dtype=np.int64)].astype(np.int64, copy=False)


def _iou_gt(
    inter: npt.NDArray[np.float64], union: npt.NDArray[np.float64], t: float
) -> npt.NDArray[np.bool_]:
    """IoU > t, with IoU 0 where the union is 0 (as boxes.iou_matrix); divides rather than comparing
    inter > t * union so the rounding is the reference's."""
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou > t


def nms_opencv(
    xyxy: npt.ArrayLike,
    score: npt.ArrayLike,
    class_id: npt.ArrayLike | None = None,
    iou_threshold: float = 0.45,
    agnostic: bool = False,
    max_det: int = 300,
    top_k: int = 30000,
) -> IntpArray:
    """Greedy NMS through `cv2.dnn.NMSBoxes` (C++), with our top_k, max_det, class offsets and tie rule.

    Agrees with `nms_numpy` when every score is > 0 and every box has positive area: OpenCV drops scores
    that are not above its score threshold (which must be >= 0) and treats two zero-area boxes as IoU 1.
    It compares IoU as float32, so an IoU within ~3e-8 of the threshold may round the other way.
    """
    kept = _opencv(xyxy, score, class_id, iou_threshold, agnostic, max_det, top_k, check=False)
    assert kept is not None
    return kept


# Class-aware sets at least this large run one OpenCV call per class: OpenCV compares each candidate with
# every kept box, other classes' included, so one call costs ~ N x kept; per class it is ~ sum(n_c x kept_c)
# plus ~6 us per call. Measured on YOLOv5n conf-0.001 candidates (benchmarks/bench_nms.py): per class wins
# from ~1500 candidates, loses below.
PER_CLASS_MIN = 1500


def _opencv(
    xyxy: npt.ArrayLike,
    score: npt.ArrayLike,
    class_id: npt.ArrayLike | None,
    iou_threshold: float,
    agnostic: bool,
    max_det: int,
    top_k: int,
    check: bool,
) -> IntpArray | None:
    """The OpenCV engine; with `check`, None when the input needs the numpy engine (see nms_opencv)."""
    boxes = np.asarray(xyxy)
    scores = np.asarray(score).reshape(-1)
    n = scores.shape[0]
    classes = None if class_id is None or agnostic else np.asarray(class_id).reshape(-1)
    if boxes.shape != (n, 4) or (classes is not None and classes.shape[0] != n):
        _prepare(boxes, scores, classes, top_k)  # raises the precise error
    if n == 0 or max_det <= 0:
        return np.zeros(0, np.int64)
    xywh = boxes.astype(np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    # (`not x > 0` is also true for NaN, and a sum is only finite when every side is)
    if check and (not scores.min() > 0 or not xywh[:, 2:].min() > 0 or not np.isfinite(xywh.sum())):
        return None
    thr = float(iou_threshold)
    s32 = scores if scores.dtype == np.float32 else scores.astype(np.float32)
    prefix = max(2 * max_det, 64)
    if n <= prefix and n <= top_k and s32 is scores:
        # The common case (tens of boxes): one call, and OpenCV sorts; its std::stable_sort has our tie rule.
        # (float64 scores go below: rounding them to float32 could tie two different scores.)
        if classes is not None:
            xywh[:, :2] += (classes * (float(boxes.max()) - float(boxes.min()) + 1.0))[:, None]
        return _cv2_nms(xywh, scores, thr)[:max_det]
    order = np.argsort(-scores, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    if classes is not None and order.size >= PER_CLASS_MIN:
        by_class = order[np.argsort(classes[order], kind="stable")]  # within a class: still by score
        cuts = np.flatnonzero(np.diff(classes[by_class])) + 1
        parts = [g[_greedy_sorted(xywh[g], s32[g], thr, max_det, prefix)] for g in np.split(by_class, cuts)]
        kept = np.sort(np.concatenate(parts))
        return kept[np.argsort(-scores[kept], kind="stable")][:max_det]
    if classes is not None:
        xywh[:, :2] += (classes * (float(boxes.max()) - float(boxes.min()) + 1.0))[:, None]
    return order[_greedy_sorted(xywh[order], s32[order], thr, max_det, prefix)]


def _cv2_nms(xywh: npt.NDArray[np.float64], scores: np.ndarray, thr: float) -> IntpArray:
    """One cv2.dnn.NMSBoxes call: kept positions, int64, in descending score (ties: lower position first).

    Score threshold 0 (OpenCV keeps scores > it, and refuses a negative one), eta 1, and top_k 0 (none).
    """
    kept = cv2.dnn.NMSBoxes(xywh, scores, 0.0, thr, 1.0, 0)  # type: ignore[arg-type]  # stubs say lists
    return np.asarray(kept, np.int64).reshape(-1)


def _greedy_sorted(
    xywh: npt.NDArray[np.float64], s32: npt.NDArray[np.float32], thr: float, max_det: int, prefix: int
) -> IntpArray:
    """Kept positions (at most max_det) of candidates already sorted by descending score.

    OpenCV's own top_k pre-filters by score (it does not cap the number kept, whatever its docstring says)
    and it compares each candidate with every kept box, with no stop at max_det: thousands of low-score
    candidates cost milliseconds. Greedy NMS over the best-scoring prefix keeps exactly the kept boxes of
    that prefix, so run it on a prefix, and while fewer than max_det are kept, on those kept (which cannot
    suppress one another) plus the next, twice as long, stretch of candidates.
    """
    n = s32.shape[0]
    active = np.arange(min(n, prefix))
    end = active.size
    while True:
        kept = active[_cv2_nms(xywh[active], s32[active], thr)]
        if kept.size >= max_det or end == n:
            return kept[:max_det]
        new_end = min(n, 2 * end)
        active = np.concatenate([kept, np.arange(end, new_end)])
        end = new_end


def nms(
    xyxy: npt.ArrayLike,
    score: npt.ArrayLike,
    class_id: npt.ArrayLike | None = None,
    iou_threshold: float = 0.45,
    agnostic: bool = False,
    max_det: int = 300,
    top_k: int = 30000,
) -> IntpArray:
    """Indices of the boxes kept by greedy NMS, int64, in descending score (ties: lower index first).

    xyxy: (N, 4) boxes, any float dtype, one image's pixels. score: (N,). class_id: (N,) ints; None or
    `agnostic=True` suppresses across classes. iou_threshold: suppress when IoU > this. top_k: only the
    top_k highest scores take part (<= 0: all). max_det: keep at most this many.
    """
    kept = _opencv(xyxy, score, class_id, iou_threshold, agnostic, max_det, top_k, check=True)
    if kept is None:  # scores <= 0 or zero-area boxes, where OpenCV's rules differ from ours
        return nms_numpy(xyxy, score, class_id, iou_threshold, agnostic, max_det, top_k)
    return kept
