"""NMS against a brute-force greedy reference written plainly here, on hand cases and random boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedet.postprocess.nms import nms, nms_numpy, nms_opencv

ENGINES = {"nms": nms, "numpy": nms_numpy, "opencv": nms_opencv}


def reference_nms(xyxy, score, class_id, iou_threshold, agnostic=False, max_det=300, top_k=30000):
    """Greedy NMS, one pair at a time. Visit in descending score, ties by lower index; drop a box whose IoU
    with a kept box of the same class (any class if agnostic) is > threshold; IoU 0 when the union is 0."""
    order = sorted(range(len(score)), key=lambda i: (-float(score[i]), i))[:top_k]
    kept: list[int] = []
    for i in order:
        if len(kept) == max_det:
            break
        ok = True
        for k in kept:
            if not agnostic and class_id is not None and class_id[i] != class_id[k]:
                continue
            a, b = [float(v) for v in xyxy[i]], [float(v) for v in xyxy[k]]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            union = (
                max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
                + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
                - inter
            )
            iou = inter / union if union > 0 else 0.0
            if iou > iou_threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return np.asarray(kept, np.int64)


def _xyxy(rows):
    return np.asarray(rows, np.float32).reshape(-1, 4)


# name, boxes, scores, classes, kwargs, expected kept indices
HAND_CASES = [
    ("empty", [], [], [], {}, []),
    ("one box", [[0, 0, 10, 10]], [0.5], [0], {}, [0]),
    ("duplicate suppressed", [[0, 0, 10, 10], [0, 0, 10, 10]], [0.4, 0.9], [0, 0], {}, [1]),
    ("other class kept", [[0, 0, 10, 10], [0, 0, 10, 10]], [0.4, 0.9], [0, 1], {}, [1, 0]),
    (
        "agnostic suppresses across classes",
        [[0, 0, 10, 10], [0, 0, 10, 10]],
        [0.4, 0.9],
        [0, 1],
        {"agnostic": True},
        [1],
    ),
    # IoU of [0,0,10,10] and [0,0,10,20] is exactly 0.5: kept at threshold 0.5 (strictly greater suppresses)
    (
        "iou equal to threshold is kept",
        [[0, 0, 10, 10], [0, 0, 10, 20]],
        [0.9, 0.8],
        [0, 0],
        {"iou_threshold": 0.5},
        [0, 1],
    ),
    (
        "iou above threshold suppressed",
        [[0, 0, 10, 10], [0, 0, 10, 20]],
        [0.9, 0.8],
        [0, 0],
        {"iou_threshold": 0.49},
        [0],
    ),
    # ties: equal scores are visited in input order, so the first of two identical boxes wins
    (
        "tie keeps lower index",
        [[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]],
        [0.7, 0.7, 0.7],
        [3, 3, 3],
        {},
        [0, 2],
    ),
    ("tie order of output", [[50, 50, 60, 60], [0, 0, 10, 10]], [0.7, 0.7], [0, 0], {}, [0, 1]),
    (
        "max_det caps in score order",
        [[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]],
        [0.1, 0.3, 0.2],
        [0, 0, 0],
        {"max_det": 2},
        [1, 2],
    ),
    # top_k pre-filters by score BEFORE suppression: box 2 (score .5) is outside the top 2 and never kept
    (
        "top_k prefilters",
        [[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]],
        [0.9, 0.8, 0.5],
        [0, 0, 0],
        {"top_k": 2},
        [0],
    ),
    # chained: B suppressed by A, so C (overlapping B only) survives
    (
        "suppressed box does not suppress",
        [[0, 0, 10, 10], [4, 0, 14, 10], [9, 0, 19, 10]],
        [0.9, 0.8, 0.7],
        [0, 0, 0],
        {"iou_threshold": 0.3},
        [0, 2],
    ),
    # negative input-pixel coordinates (a box half outside the input): classes must still stay apart. An
    # offset of (max coordinate + 1), as OpenCV's NMSBoxesBatched uses, would overlap class 1 onto class 0.
    (
        "negative coordinates, class-aware",
        [[-100, -100, 5, 5], [-40, -40, 5, 5]],
        [0.9, 0.8],
        [0, 1],
        {"iou_threshold": 0.1},
        [0, 1],
    ),
]


@pytest.mark.parametrize("engine", ["nms", "numpy", "opencv"])
@pytest.mark.parametrize(
    ("name", "boxes", "scores", "classes", "kwargs", "expected"), HAND_CASES, ids=[c[0] for c in HAND_CASES]
)
def test_hand_cases(engine, name, boxes, scores, classes, kwargs, expected):
    b, s, c = _xyxy(boxes), np.asarray(scores, np.float32), np.asarray(classes, np.int32)
    got = ENGINES[engine](b, s, c, **kwargs)
    assert got.dtype == np.int64
    assert got.tolist() == expected
    assert (
        reference_nms(
            b,
            s,
            c,
            kwargs.get("iou_threshold", 0.45),
            **{k: v for k, v in kwargs.items() if k != "iou_threshold"},
        ).tolist()
        == expected
    )


def test_opencv_batched_overlaps_classes_with_negative_coordinates():
    """Why we offset classes ourselves: cv2.dnn.NMSBoxesBatched lets class 1 suppress class 0 here."""
    xywh = np.array([[-100, -100, 105, 105], [-40, -40, 45, 45]], np.float64)
    got = np.asarray(
        cv2.dnn.NMSBoxesBatched(xywh, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.0, 0.1)
    ).reshape(-1)
    assert got.tolist() == [0]
    assert nms(_xyxy([[-100, -100, 5, 5], [-40, -40, 5, 5]]), [0.9, 0.8], [0, 1], 0.1).tolist() == [0, 1]


# Cases where OpenCV alone would disagree with the contract; `nms` must route them to numpy.
EDGE_CASES = [
    # two zero-area boxes: IoU 0 by our rule (OpenCV calls it 1 and drops the second)
    ("zero-area boxes", [[5, 5, 5, 5], [5, 5, 5, 5]], [0.9, 0.8], [0, 0], [0, 1]),
    # a score of 0 (OpenCV's score threshold must be >= 0 and it keeps only scores above it)
    ("zero score", [[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.0], [0, 0], [0, 1]),
    # a box with a NaN or infinite side (a broken FP16 head) neither suppresses nor is suppressed, and the
    # others are suppressed as usual (the class offsets must not turn NaN)
    (
        "non-finite boxes",
        [[0, 0, 10, 10], [np.nan, 0, 10, 10], [-np.inf, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]],
        [0.9, 0.8, 0.75, 0.7, 0.6],
        [0, 0, 0, 0, 1],
        [0, 1, 2, 4],
    ),
]


@pytest.mark.parametrize(
    ("name", "boxes", "scores", "classes", "expected"), EDGE_CASES, ids=[c[0] for c in EDGE_CASES]
)
def test_edge_cases_follow_the_contract(name, boxes, scores, classes, expected):
    b, s, c = _xyxy(boxes), np.asarray(scores, np.float32), np.asarray(classes)
    assert reference_nms(b, s, c, 0.45).tolist() == expected
    assert nms(b, s, c).tolist() == expected
    assert nms_numpy(b, s, c).tolist() == expected


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        nms(_xyxy([[0, 0, 1, 1], [0, 0, 1, 1]]), [0.5])


@st.composite
def candidate_sets(draw, integer: bool):
    # few distinct coordinates and scores so overlaps and exact ties are common
    if integer:
        coord, size = st.integers(-20, 100), st.integers(1, 60)
    else:
        coord, size = st.floats(-20, 100, width=32), st.floats(0.5, 60, width=32)
    rows = draw(
        st.lists(
            st.tuples(
                coord, coord, size, size, st.sampled_from([0.05, 0.2, 0.5, 0.7, 1.0]), st.integers(0, 3)
            ),
            max_size=40,
        )
    )
    a = np.asarray(rows, np.float64).reshape(-1, 6)
    boxes = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:4]], axis=1)
    kwargs = {
        "iou_threshold": draw(st.sampled_from([0.0, 0.3, 0.45, 0.5, 0.7, 1.0])),
        "agnostic": draw(st.booleans()),
        "max_det": draw(st.integers(1, 45)),
        "top_k": draw(st.integers(1, 45)),
    }
    return _xyxy(boxes), a[:, 4].astype(np.float32), a[:, 5].astype(np.int32), kwargs


def _check(engine, case):
    b, s, c, kw = case
    expected = reference_nms(b, s, c, **kw)
    assert ENGINES[engine](b, s, c, **kw).tolist() == expected.tolist()


@settings(max_examples=100, deadline=None)
@given(case=candidate_sets(integer=False))
def test_numpy_equals_reference_float_boxes(case):
    _check("numpy", case)


# OpenCV compares IoU in float32. With integer coordinates under ~640 px every IoU differs from the threshold
# by 0 or by more than float32 can blur, so OpenCV must match exactly; with arbitrary floats an IoU within
# ~3e-8 of the threshold could round either way (documented in nms_opencv).
@settings(max_examples=100, deadline=None)
@given(case=candidate_sets(integer=True))
@pytest.mark.parametrize("engine", ["nms", "opencv", "numpy"])
def test_engines_equal_reference_integer_boxes(engine, case):
    _check(engine, case)


@pytest.mark.parametrize(("n", "max_det"), [(400, 300), (400, 40), (3000, 300)])
@pytest.mark.parametrize("agnostic", [False, True])
def test_large_realistic_sets_agree(n, max_det, agnostic):
    """Clustered boxes of many classes, as a detector at a low threshold gives: OpenCV (whose prefix grows
    until max_det are kept) equals numpy, and the plain reference where it is quick enough to run."""
    rng = np.random.default_rng(n + max_det)
    k = n // 10
    centres, sizes = rng.uniform(0, 640, (k, 2)), rng.uniform(10, 200, (k, 2))
    idx = rng.integers(0, k, n)
    c = centres[idx] + rng.normal(0, 5, (n, 2))
    wh = sizes[idx] * rng.uniform(0.8, 1.2, (n, 2))
    b = np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32)
    s = rng.uniform(0.001, 1, n).astype(np.float32)
    cls = rng.integers(0, 80, n).astype(np.int32)
    got = nms_opencv(b, s, cls, 0.45, agnostic, max_det)
    assert got.tolist() == nms_numpy(b, s, cls, 0.45, agnostic, max_det).tolist()
    assert nms(b, s, cls, 0.45, agnostic, max_det).tolist() == got.tolist()
    if n <= 400:
        assert got.tolist() == reference_nms(b, s, cls, 0.45, agnostic, max_det).tolist()
