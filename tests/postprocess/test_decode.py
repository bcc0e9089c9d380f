"""Decoders against per-row loops written plainly here, for each output layout, plus the shape errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.errors import ModelError
from edgedet.postprocess.decode import DECODERS, decode, decode_end2end, decode_yolov5, decode_yolov8


def _random_head(rng, n, nc, obj=True):
    """(n, 4+[1]+nc) rows: centres in a 640 input, sizes 2..200, obj and class probabilities in [0, 1)."""
    cxcy = rng.uniform(0, 640, (n, 2))
    wh = rng.uniform(2, 200, (n, 2))
    probs = rng.uniform(0, 1, (n, (1 if obj else 0) + nc)) ** 3  # mostly low, as real heads
    return np.concatenate([cxcy, wh, probs], axis=1).astype(np.float32)


def reference_decode(rows, conf, multi_label, has_obj):
    """Row by row: score = obj * cls (YOLOv5) or cls (YOLOv8); best class, or every class above conf."""
    out = []
    for i, r in enumerate(rows):
        cx, cy, w, h = (float(v) for v in r[:4])
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if has_obj:
            if not r[4] > conf:
                continue
            cls = [np.float32(r[4]) * np.float32(p) for p in r[5:]]
        else:
            cls = [np.float32(p) for p in r[4:]]
        if multi_label:
            out += [(i, box, float(s), j) for j, s in enumerate(cls) if s > conf]
        else:
            j = int(np.argmax(cls))
            if cls[j] > conf:
                out.append((i, box, float(cls[j]), j))
    return out


def _assert_same(got, expected):
    xyxy, score, cls = got
    assert xyxy.dtype == np.float32 and score.dtype == np.float32 and cls.dtype == np.int32
    assert xyxy.shape == (len(expected), 4) and score.shape == cls.shape == (len(expected),)
    # the decoders emit candidates in anchor order (then class order): same order as the loop
    np.testing.assert_allclose(xyxy, np.array([e[1] for e in expected]).reshape(-1, 4), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(score, np.array([e[2] for e in expected], np.float32))
    np.testing.assert_array_equal(cls, [e[3] for e in expected])


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize(("conf", "nc"), [(0.25, 80), (0.001, 80), (0.5, 1), (0.1, 3)])
def test_yolov5_matches_reference(conf, nc, multi_label):
    rng = np.random.default_rng(nc)
    rows = _random_head(rng, 300, nc)
    out = rows[None]
    _assert_same(decode_yolov5([out], conf, multi_label, nc), reference_decode(rows, conf, multi_label, True))
    assert np.array_equal(out[0], rows)  # input untouched


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize(("conf", "nc"), [(0.25, 80), (0.001, 80), (0.5, 1), (0.1, 3)])
def test_yolov8_matches_reference(conf, nc, multi_label):
    rng = np.random.default_rng(nc + 1)
    rows = _random_head(rng, 300, nc, obj=False)
    out = np.ascontiguousarray(rows.T[None])  # [1, 4+nc, N]
    expected = reference_decode(rows, conf, multi_label, False)
    _assert_same(decode_yolov8([out], conf, multi_label, nc), expected)
    # the transposed export [1, N, 4+nc] gives the same when the class count says which axis is which
    _assert_same(decode_yolov8([rows[None]], conf, multi_label, nc), expected)


def test_batch_index_selects_image():
    rng = np.random.default_rng(7)
    a, b = _random_head(rng, 50, 5), _random_head(rng, 50, 5)
    out = np.stack([a, b])
    _assert_same(decode_yolov5([out], 0.1, batch_index=1), reference_decode(b, 0.1, False, True))
    with pytest.raises(ModelError, match="batch index 2 is outside batch size 2"):
        decode_yolov5([out], 0.1, batch_index=2)


def test_threshold_is_strict():
    # obj 0.5 * cls 1.0 = 0.5 exactly: not above conf 0.5 (as YOLOv5's `conf > conf_thres`)
    row = np.array([[[10, 10, 4, 4, 0.5, 1.0]]], np.float32)
    assert decode_yolov5([row], 0.5)[1].size == 0
    assert decode_yolov5([row], 0.49)[1].tolist() == [0.5]


def _end2end_rows(rng, k, nc):
    x1y1 = rng.uniform(0, 600, (k, 2))
    rows = np.concatenate(
        [x1y1, x1y1 + rng.uniform(1, 40, (k, 2)), rng.uniform(0, 1, (k, 1)), rng.integers(0, nc, (k, 1))],
        axis=1,
    )
    return rows.astype(np.float32)


def test_end2end_single_output():
    rng = np.random.default_rng(3)
    rows = _end2end_rows(rng, 300, 80)
    xyxy, score, cls = decode_end2end([rows[None]], 0.3)
    m = rows[:, 4] > 0.3
    np.testing.assert_array_equal(xyxy, rows[m, :4])
    np.testing.assert_array_equal(score, rows[m, 4])
    np.testing.assert_array_equal(cls, rows[m, 5].astype(np.int32))


# output order (boxes=0, scores=1, labels=2) and label dtype; float labels are told from the scores only by
# coming after them (the exporters' order), integer labels in any order
@pytest.mark.parametrize(
    ("order", "label_dtype"),
    [
        ((0, 1, 2), np.int64),
        ((2, 0, 1), np.int64),
        ((1, 2, 0), np.int32),
        ((0, 1, 2), np.float32),
        ((1, 0, 2), np.float32),
    ],
)
def test_end2end_three_outputs(order, label_dtype):
    rng = np.random.default_rng(4)
    rows = _end2end_rows(rng, 100, 10)
    parts = [rows[None, :, :4], rows[None, :, 4], rows[None, :, 5].astype(label_dtype)]
    outputs = [parts[i] for i in order]
    xyxy, score, cls = decode_end2end(outputs, 0.5, num_classes=10)
    m = rows[:, 4] > 0.5
    np.testing.assert_array_equal(xyxy, rows[m, :4])
    np.testing.assert_array_equal(score, rows[m, 4])
    np.testing.assert_array_equal(cls, rows[m, 5])


def test_end2end_with_count_output():
    rng = np.random.default_rng(5)
    rows = _end2end_rows(rng, 20, 3)
    rows[:, 4] = 0.9
    outputs = [
        np.array([[7]], np.int32),
        rows[None, :, :4],
        rows[None, :, 4],
        rows[None, :, 5].astype(np.int32),
    ]
    xyxy, _, _ = decode_end2end(outputs, 0.25)
    np.testing.assert_array_equal(xyxy, rows[:7, :4])


# format, outputs (shapes), text the error must contain
MISFITS = [
    ("yolov5", [(1, 25200)], "[1, 25200]"),
    ("yolov5", [(1, 100, 5)], "no class columns"),
    ("yolov5", [(1, 100, 85), (1, 100, 85)], "need one 3-D output"),
    ("yolov8", [(1, 8400, 84)], "channel axis"),
    ("end2end", [(1, 300, 7)], "[B, K, 6]"),
    ("end2end", [(1, 300, 4), (1, 300, 4), (1, 300)], "cannot tell"),
    ("end2end", [(1, 300, 4), (1, 200), (1, 300)], "disagree"),
]


@pytest.mark.parametrize(("fmt", "shapes", "text"), MISFITS)
def test_misfit_outputs_name_shapes_and_format(fmt, shapes, text):
    outputs = [np.zeros(s, np.float32) for s in shapes]
    with pytest.raises(ModelError) as info:
        decode(fmt, outputs, 0.25)
    msg = str(info.value)
    assert text in msg and "--format" in msg and str(list(shapes[0])) in msg
    assert "\n" not in msg


def test_class_count_mismatch_and_unknown_format():
    with pytest.raises(ModelError, match="carry 80 classes but the model spec names 3"):
        decode("yolov5", [np.zeros((1, 10, 85), np.float32)], 0.25, num_classes=3)
    with pytest.raises(ModelError, match=r"labels range 0\.\.5 but the model spec names 3"):
        decode(
            "end2end",
            [np.array([[[0, 0, 1, 1, 0.9, 5], [0, 0, 1, 1, 0.9, 0]]], np.float32)],
            0.25,
            num_classes=3,
        )
    with pytest.raises(ModelError, match="use one of yolov5, yolov8, end2end"):
        decode("ssd", [np.zeros((1, 10, 85), np.float32)])
    assert set(DECODERS) == {"yolov5", "yolov8", "end2end"}


@pytest.mark.parametrize("fmt", ["yolov5", "yolov8", "end2end"])
def test_nothing_above_threshold_gives_empty_arrays(fmt):
    shape = {"yolov5": (1, 50, 85), "yolov8": (1, 84, 500), "end2end": (1, 50, 6)}[fmt]
    xyxy, score, cls = decode(fmt, [np.zeros(shape, np.float32)], 0.25)
    assert xyxy.shape == (0, 4) and score.shape == (0,) and cls.shape == (0,)
    assert xyxy.dtype == np.float32 and cls.dtype == np.int32
