"""Detection-to-track association: IoU cost, gated, solved with scipy's linear_sum_assignment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from edgedet.boxes import iou_matrix

Int = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Assignment:
    """matches: (K, 2) intp rows of (detection index, track index); unmatched_dets (D,), unmatched_tracks (T,)."""

    matches: Int
    unmatched_dets: Int
    unmatched_tracks: Int


def assign(iou: npt.ArrayLike, iou_threshold: float, gate_first: bool = True) -> Assignment:
    """Match rows (detections) to columns (tracks) maximising total IoU over pairs with IoU >= iou_threshold.

    gate_first=True: pairs under the threshold are removed *before* solving, so a passing pair is never
    given up to make room for two failing ones. gate_first=False is abewley/sort exactly: take the passing
    pairs directly when they are one-to-one, else solve on the raw IoU, then drop pairs under the threshold
    (the two agree whenever every row and column has at most one passing pair, the usual case).
    """
    m = np.asarray(iou, np.float64)
    n_det, n_trk = m.shape
    if n_det == 0 or n_trk == 0:
        return Assignment(
            np.zeros((0, 2), np.intp), np.arange(n_det, dtype=np.intp), np.arange(n_trk, dtype=np.intp)
        )
    if gate_first:
        rows, cols = linear_sum_assignment(np.where(m >= iou_threshold, m, 0.0), maximize=True)
    else:
        passing = m > iou_threshold
        if passing.sum(1).max() == 1 and passing.sum(0).max() == 1:
            rows, cols = np.nonzero(passing)
        else:
            rows, cols = linear_sum_assignment(m, maximize=True)
    ok = m[rows, cols] >= iou_threshold
    if iou_threshold <= 0:
        ok &= m[rows, cols] > 0  # a zero-IoU pair is no evidence, even with the gate off
    rows, cols = rows[ok], cols[ok]
    det_free = np.ones(n_det, bool)
    det_free[rows] = False
    trk_free = np.ones(n_trk, bool)
    trk_free[cols] = False
    return Assignment(
        np.stack([rows, cols], axis=1).astype(np.intp),
        np.flatnonzero(det_free).astype(np.intp),
        np.flatnonzero(trk_free).astype(np.intp),
    )


def iou_cost(
    det_xyxy: npt.ArrayLike,
    trk_xyxy: npt.ArrayLike,
    det_class: npt.ArrayLike | None = None,
    trk_class: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """(D, T) IoU of detections with tracks; pairs of different classes get 0 when both classes are given."""
    iou = iou_matrix(np.asarray(det_xyxy, np.float64), np.asarray(trk_xyxy, np.float64))
    if det_class is not None and trk_class is not None:
        same = np.asarray(det_class)[:, None] == np.asarray(trk_class)[None, :]
        iou = np.where(same, iou, 0.0)
    return iou


def associate(
    det_xyxy: npt.ArrayLike,
    trk_xyxy: npt.ArrayLike,
    iou_threshold: float,
    det_class: npt.ArrayLike | None = None,
    trk_class: npt.ArrayLike | None = None,
    gate_first: bool = True,
) -> Assignment:
    """IoU association of detections (D, 4 xyxy) with track boxes (T, 4 xyxy); class-aware when classes given."""
    return assign(iou_cost(det_xyxy, trk_xyxy, det_class, trk_class), iou_threshold, gate_first)


# --- the tracker's per-frame path ---------------------------------------------------------------------------
# The functions above take any array-like and check it; the tracker calls the ones below every frame on
# arrays it made itself (float64, (N, 4), contiguous), where those checks and copies were most of the cost.


# Boxes on this path are held "negated": x1, y1, -x2, -y2. Then one np.maximum over all four columns gives the
# intersection's max(x1), max(y1) and -min(x2), -min(y2) at once; negation is exact, so every IoU and area is
# bit-for-bit what `edgedet.boxes.iou_matrix` / `area` compute from the plain boxes.
NEGATE = np.array([1.0, 1.0, -1.0, -1.0])


def neg_areas(neg_xyxy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(N,) areas of (N, 4) negated boxes, as `edgedet.boxes.area` of the plain ones (negative sides count 0)."""
    d = neg_xyxy[:, 2:] + neg_xyxy[:, :2]  # -(x2 - x1), -(y2 - y1)
    np.minimum(d, 0.0, out=d)
    return d[:, 0] * d[:, 1]


def iou_neg(
    det_neg: npt.NDArray[np.float64],
    trk_neg: npt.NDArray[np.float64],
    det_area: npt.NDArray[np.float64],
    trk_area: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """(D, T) IoU of negated boxes with the arithmetic of `edgedet.boxes.iou_matrix`, except that pairs of two
    empty boxes give NaN instead of 0 (call it under np.errstate; the gates below treat NaN as failing)."""
    m = np.maximum(det_neg[:, None, :], trk_neg[None, :, :])
    side = m[:, :, 2:] + m[:, :, :2]  # -(min x2 - max x1), -(min y2 - max y1)
    np.minimum(side, 0.0, out=side)
    inter = side[:, :, 0] * side[:, :, 1]
    union = det_area[:, None] + trk_area[None, :]
    union -= inter
    inter /= union
    return inter


def match_gated(iou: npt.NDArray[np.float64], iou_threshold: float) -> tuple[Int, Int]:
    """(rows, cols) of `assign(iou, iou_threshold, gate_first=True).matches` for iou_threshold > 0: the
    optimal matching over pairs with IoU >= iou_threshold (NaN never passes)."""
    if iou.shape[0] == 0 or iou.shape[1] == 0:
        empty = np.zeros(0, np.intp)
        return empty, empty
    gated = np.where(iou >= iou_threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(gated, maximize=True)
    ok = gated[rows, cols] > 0.0  # the solver also pairs leftover rows with zero (failing) columns
    return rows[ok], cols[ok]
