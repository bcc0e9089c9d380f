"""Decode + NMS + back to frame pixels as one compiled call per frame (numba), for `Postprocessor`'s fast path.

The numpy path (`decode.decode_yolov5` / `decode_yolov8`, `nms`, `Letterbox.to_frame`) costs about 25 numpy
calls a frame, a few microseconds each on a handful of boxes: at 320 it was as long as the tracker and the
preprocess together. Here the same arithmetic runs as plain loops:

- scores and boxes in float32 exactly as the decoders form them (obj * class prob, the first class of the
  highest score, cx -/+ w * 0.5); the confidence threshold is compared in float32, as numpy compares a float32
  array with a Python float (NEP 50); a row with a NaN score is dropped, as numpy's argmax/max make it;
- greedy NMS with `postprocess.nms`'s contract (descending score, ties in input order, IoU in float64 and 0
  for an empty union, suppress when IoU > threshold, only boxes of the same class unless agnostic, top_k,
  max_det), which is `nms_numpy`'s result exactly (OpenCV's engine, the numpy path's default, rounds IoU to
  float32 and may differ for an IoU within ~3e-8 of the threshold);
- `Letterbox.to_frame`'s float64 mapping and clipping, then float32 as `Detections` stores it.

tests/postprocess/test_kernels.py holds both paths to the same Detections on the reference YOLOv5n's outputs
and on adversarial heads (ties, NaN, every box overlapping). numba is optional (edgedet[fast]); without it
`Postprocessor` takes the numpy path. Shapes: yolov5 (N, 5+nc), yolov8 (4+nc, N), both float32 C-contiguous.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedet._kernel_ops import clip as _clip
from edgedet._kernel_ops import maximum as _maximum
from edgedet._kernel_ops import minimum as _minimum
from edgedet._kernel_ops import nonnegative as _pos
from edgedet._optional import numba_jit as _jit

_HALF = np.float32(0.5)


@_jit
def _candidates(m: int) -> Any:
    """Room for m candidates: boxes (m, 4) float32, scores (m,) float32, classes (m,) int32."""
    return np.empty((m, 4), np.float32), np.empty(m, np.float32), np.empty(m, np.int32)


@_jit
def _put(box: Any, score: Any, cls: Any, k: int, cx: Any, cy: Any, w: Any, h: Any, s: Any, c: int) -> None:
    """Candidate k: decode._cxcywh_to_xyxy in float32 (half = w * 0.5; cx - half, cx + half), its score and
    class."""
    hw = w * _HALF
    hh = h * _HALF
    box[k, 0] = cx - hw
    box[k, 1] = cy - hh
    box[k, 2] = cx + hw
    box[k, 3] = cy + hh
    score[k] = s
    cls[k] = c


@_jit
def _nms_to_frame(box: Any, score: Any, cls: Any, nms: Any) -> Any:
    """Greedy NMS over candidates (box (M, 4) float32 xyxy in input pixels, score, cls), then the kept boxes in
    frame pixels. `nms`: (iou_threshold float, agnostic bool, max_det int, top_k int, pad_left int, pad_top
    int, sx float, sy float, frame_h int, frame_w int), the Postprocessor's config and the frame's letterbox. Returns (xyxy (K, 4) float32, score (K,) float32, class (K,) int32, track_id (K,) int32 all
    -1), by descending score: a Detections' four arrays."""
    iou_threshold, agnostic, max_det, top_k, pad_left, pad_top, sx, sy, frame_h, frame_w = nms
    order = np.argsort(-score, kind="mergesort")  # nms._prepare: stable, ties keep input order
    n = order.size if top_k <= 0 else min(order.size, top_k)
    x1 = np.empty(n)
    y1 = np.empty(n)
    x2 = np.empty(n)
    y2 = np.empty(n)
    area = np.empty(n)
    for p in range(n):
        i = order[p]
        x1[p] = np.float64(box[i, 0])
        y1[p] = np.float64(box[i, 1])
        x2[p] = np.float64(box[i, 2])
        y2[p] = np.float64(box[i, 3])
        area[p] = _pos(x2[p] - x1[p]) * _pos(y2[p] - y1[p])
    alive = np.ones(n, np.bool_)
    keep = np.empty(min(n, max_det), np.int64)
    k = 0
    for p in range(n):
        if not alive[p]:
            continue
        keep[k] = p
        k += 1
        if k >= max_det:
            break
        cp = cls[order[p]]
        for q in range(p + 1, n):
            if not alive[q] or (not agnostic and cls[order[q]] != cp):
                continue
            iw = _pos(_minimum(x2[p], x2[q]) - _maximum(x1[p], x1[q]))
            ih = _pos(_minimum(y2[p], y2[q]) - _maximum(y1[p], y1[q]))
            inter = iw * ih
            union = area[p] + area[q] - inter
            iou = inter / union if union > 0 else 0.0
            if iou > iou_threshold:
                alive[q] = False
    out_box = np.empty((k, 4), np.float32)
    out_score = np.empty(k, np.float32)
    out_cls = np.empty(k, np.int32)
    out_track = np.full(k, -1, np.int32)  # Detections' track_id: none yet
    fw = np.float64(frame_w)
    fh = np.float64(frame_h)
    for r in range(k):
        p = keep[r]
        i = order[p]
        # Letterbox.to_frame: (x - pad) / scale in float64, clipped to the frame; Detections stores float32
        out_box[r, 0] = np.float32(_clip((x1[p] - pad_left) / sx, fw))
        out_box[r, 1] = np.float32(_clip((y1[p] - pad_top) / sy, fh))
        out_box[r, 2] = np.float32(_clip((x2[p] - pad_left) / sx, fw))
        out_box[r, 3] = np.float32(_clip((y2[p] - pad_top) / sy, fh))
        out_score[r] = score[i]
        out_cls[r] = cls[i]
    return out_box, out_score, out_cls, out_track


@_jit
def yolov5(x: Any, conf: Any, nms: Any) -> Any:
    """decode.decode_yolov5 (single label) + NMS + to frame pixels for one image's head x (N, 5+nc).
    conf: np.float32; nms: see _nms_to_frame."""
    n = x.shape[0]
    nc = x.shape[1] - 5
    rows = np.empty(n, np.int64)
    m = 0
    for i in range(n):  # x[x[:, 4] > conf]: objectness bounds the score
        if x[i, 4] > conf:
            rows[m] = i
            m += 1
    box, score, cls = _candidates(m)
    k = 0
    for t in range(m):
        i = rows[t]
        obj = x[i, 4]
        best = x[i, 5] * obj  # cls_scores = x[:, 5:] * x[:, 4:5], float32
        bj = 0
        nan = best != best
        for j in range(1, nc):
            v = x[i, 5 + j] * obj
            if v != v:
                nan = True
            elif v > best:  # argmax: the first of equal maxima
                best = v
                bj = j
        if nan or not best > conf:  # argmax picks a NaN, and NaN > conf is False
            continue
        _put(box, score, cls, k, x[i, 0], x[i, 1], x[i, 2], x[i, 3], best, bj)
        k += 1
    return _nms_to_frame(box[:k], score[:k], cls[:k], nms)


@_jit
def yolov8(x: Any, conf: Any, nms: Any) -> Any:
    """decode.decode_yolov8 (single label, the [4+nc, N] layout) + NMS + to frame pixels. conf: np.float32;
    nms: see _nms_to_frame."""
    nc = x.shape[0] - 4
    n = x.shape[1]
    best = x[4].copy()  # x[4:].max(axis=0), row by row so each pass reads one contiguous row
    arg = np.zeros(n, np.int32)
    for j in range(1, nc):
        for i in range(n):
            v = x[4 + j, i]
            if v > best[i]:
                best[i] = v
                arg[i] = j
            elif v != v:  # max propagates NaN (and the anchor is dropped below)
                best[i] = v
    m = 0
    for i in range(n):
        if best[i] > conf:
            m += 1
    box, score, cls = _candidates(m)
    k = 0
    for i in range(n):
        if best[i] > conf:
            _put(box, score, cls, k, x[0, i], x[1, i], x[2, i], x[3, i], best[i], arg[i])
            k += 1
    return _nms_to_frame(box, score, cls, nms)


KERNELS = {"yolov5": yolov5, "yolov8": yolov8}


def warm() -> None:
    """Run each kernel once (compiles it, or loads numba's cache), with the argument types the Postprocessor
    passes, so no live frame waits on the compiler."""
    v5 = np.zeros((3, 7), np.float32)
    v5[:, :5] = [[10, 10, 4, 4, 0.9], [11, 10, 4, 4, 0.8], [50, 50, 4, 4, 0.1]]
    v5[:, 5] = 1.0
    v8 = np.ascontiguousarray(np.concatenate([v5[:, :4], v5[:, 4:6]], axis=1).T)
    for fn, x in ((yolov5, v5), (yolov8, v8)):
        fn(x, np.float32(0.25), (0.45, False, 300, 30000, 0, 2, 0.5, 0.5, 40, 40))
