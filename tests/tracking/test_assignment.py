"""Gated IoU assignment against brute force, and SORT's solve-then-filter mode."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgedet.tracking.assignment import assign, associate, iou_cost


def brute_force_best(iou: np.ndarray, thr: float) -> float:
    """Largest total IoU over all one-to-one matchings that use only pairs with IoU >= thr."""
    n, m = iou.shape
    best = 0.0
    for k in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                vals = iou[list(rows), list(cols)]
                if np.all(vals >= thr):
                    best = max(best, float(vals.sum()))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_gated_assignment_is_optimal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 5, 2)
    iou = rng.uniform(0, 1, (n, m)) * (rng.random((n, m)) < 0.6)
    thr = 0.3
    a = assign(iou, thr)
    total = float(iou[a.matches[:, 0], a.matches[:, 1]].sum()) if len(a.matches) else 0.0
    assert total == pytest.approx(brute_force_best(iou, thr))
    assert np.all(iou[a.matches[:, 0], a.matches[:, 1]] >= thr)
    # every index is either matched or listed unmatched, exactly once
    assert sorted([*a.matches[:, 0], *a.unmatched_dets]) == list(range(n))
    assert sorted([*a.matches[:, 1], *a.unmatched_tracks]) == list(range(m))


@pytest.mark.parametrize(
    ("iou", "gate_first", "matches"),
    [
        # one passing pair per row/column: both modes take it
        ([[0.9, 0.0], [0.0, 0.5]], True, [(0, 0), (1, 1)]),
        ([[0.9, 0.0], [0.0, 0.5]], False, [(0, 0), (1, 1)]),
        # SORT solves on raw IoU: 0.29 + 0.29 + 0.35 beats 0.31 + 0.6, then two pairs fail the 0.3 filter
        ([[0.31, 0.29, 0.0], [0.29, 0.0, 0.6], [0.0, 0.0, 0.35]], False, [(2, 2)]),
        ([[0.31, 0.29, 0.0], [0.29, 0.0, 0.6], [0.0, 0.0, 0.35]], True, [(0, 0), (1, 2)]),
        # exactly at the threshold passes
        ([[0.3]], True, [(0, 0)]),
        ([[0.3]], False, [(0, 0)]),
        ([[0.2999]], True, []),
    ],
)
def test_assignment_cases(iou: list[list[float]], gate_first: bool, matches: list[tuple[int, int]]) -> None:
    a = assign(np.array(iou), 0.3, gate_first=gate_first)
    assert sorted(map(tuple, a.matches.tolist())) == matches


def test_empty_inputs() -> None:
    a = associate(np.zeros((0, 4)), np.array([[0, 0, 1, 1.0]]), 0.3)
    assert a.matches.shape == (0, 2) and a.unmatched_tracks.tolist() == [0] and a.unmatched_dets.size == 0
    a = associate(np.array([[0, 0, 1, 1.0]]), np.zeros((0, 4)), 0.3)
    assert a.unmatched_dets.tolist() == [0] and a.unmatched_tracks.size == 0


def test_class_aware_cost_zeroes_other_classes() -> None:
    box = np.array([[0, 0, 10, 10.0], [20, 20, 30, 30.0]])
    c = iou_cost(box, box, np.array([1, 2]), np.array([1, 3]))
    np.testing.assert_allclose(c, [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(iou_cost(box, box), np.eye(2))


@pytest.mark.parametrize("seed", range(30))
def test_tracker_path_equals_assign(seed: int) -> None:
    """neg_areas + iou_neg + match_gated (the tracker's per-frame path) give assign()'s matches exactly."""
    from edgedet.boxes import iou_matrix
    from edgedet.tracking.assignment import NEGATE, iou_neg, match_gated, neg_areas

    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 12, 2)

    def boxes(k: int) -> np.ndarray:
        xy = rng.uniform(0, 100, (k, 2))
        return np.concatenate([xy, xy + rng.uniform(0, 40, (k, 2))], axis=1)

    det, trk = boxes(n), boxes(m)
    if n:
        det[0, 2:] = det[0, :2]  # an empty box
    with np.errstate(invalid="ignore", divide="ignore"):
        dn, tn = det * NEGATE, trk * NEGATE
        raw = iou_neg(dn, tn, neg_areas(dn), neg_areas(tn))
    ref = iou_matrix(det, trk)
    ok = np.isfinite(raw)
    np.testing.assert_array_equal(raw[ok], ref[ok])
    assert np.all(ref[~ok] == 0)
    rows, cols = match_gated(raw, 0.2)
    expected = assign(ref, 0.2).matches
    assert rows.tolist() == expected[:, 0].tolist() and cols.tolist() == expected[:, 1].tolist()
