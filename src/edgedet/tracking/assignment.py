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
