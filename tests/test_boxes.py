"""Property tests of boxes.Letterbox (and the conversions it relies on) against plainly written formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedet.boxes import Letterbox, cxcywh_to_xyxy, iou_matrix, xyxy_to_cxcywh

sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))
inputs = st.sampled_from([(320, 320), (640, 640), (384, 640), (640, 384), (256, 416), (1088, 1920)])


def ultralytics_geometry(src_hw, dst_hw):
    """YOLOv5 letterbox(auto=False): resized (w, h) and the top/left pads, as their code computes them."""
    r = min(dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1])
    new_unpad = int(round(src_hw[1] * r)), int(round(src_hw[0] * r))  # noqa: RUF046 (as Ultralytics writes it)
    dw, dh = (dst_hw[1] - new_unpad[0]) / 2, (dst_hw[0] - new_unpad[1]) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))  # noqa: RUF046 (as Ultralytics writes it)
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))  # noqa: RUF046 (as Ultralytics writes it)
    return (new_unpad[1], new_unpad[0]), top, left, bottom, right


@settings(max_examples=300)
@given(src=sizes, dst=inputs)
def test_fit_matches_ultralytics_and_fills_the_input(src, dst):
    lb = Letterbox.fit(src, dst)
    resized, top, left, bottom, right = ultralytics_geometry(src, dst)
    if min(resized) < 1:  # Ultralytics would produce an empty image; we keep one pixel
        assert min(lb.resized_hw) == 1
        return
    assert lb.resized_hw == resized and (lb.pad_top, lb.pad_left) == (top, left)
    # the padded image is exactly the input size, and the limiting side fills it
    assert top + resized[0] + bottom == dst[0] and left + resized[1] + right == dst[1]
    assert resized[0] == dst[0] or resized[1] == dst[1]
    assert 0 <= top <= bottom <= top + 1 and 0 <= left <= right <= left + 1


@given(src=sizes, dst=inputs)
def test_stretch_has_no_padding(src, dst):
    lb = Letterbox.fit(src, dst, keep_aspect=False)
    assert (lb.resized_hw, lb.pad_top, lb.pad_left) == (dst, 0, 0)


def _boxes_in(hw, data):
    h, w = hw
    x = data.draw(st.lists(st.floats(0, w), min_size=2, max_size=2))
    y = data.draw(st.lists(st.floats(0, h), min_size=2, max_size=2))
    return np.array([[min(x), min(y), max(x), max(y)]], np.float64)


@settings(max_examples=200)
@given(src=sizes, dst=inputs, stretch=st.booleans(), data=st.data())
def test_to_frame_inverts_to_input(src, dst, stretch, data):
    lb = Letterbox.fit(src, dst, keep_aspect=not stretch)
    b = _boxes_in(src, data)
    np.testing.assert_allclose(lb.to_frame(lb.to_input(b)), b, rtol=1e-9, atol=1e-9 * max(src))
    # and the frame rectangle maps onto the resized image inside the padding
    whole = lb.to_input(np.array([[0, 0, src[1], src[0]]], np.float64))[0]
    np.testing.assert_allclose(
        whole,
        [lb.pad_left, lb.pad_top, lb.pad_left + lb.resized_hw[1], lb.pad_top + lb.resized_hw[0]],
        atol=1e-9 * max(dst),
    )


@given(src=sizes, dst=inputs, data=st.data())
def test_to_frame_clips_and_can_skip_clipping(src, dst, data):
    lb = Letterbox.fit(src, dst)
    outside = np.array([[-50.0, -50.0, dst[1] + 50.0, dst[0] + 50.0]])
    assert lb.to_frame(outside).tolist() == [[0.0, 0.0, float(src[1]), float(src[0])]]
    unclipped = lb.to_frame(outside, clip=False)
    assert unclipped[0, 0] < 0 and unclipped[0, 2] > src[1]


@pytest.mark.parametrize(
    ("src", "dst", "resized", "top", "left"),
    [
        ((720, 1280), (640, 640), (360, 640), 140, 0),
        ((1080, 1920), (320, 320), (180, 320), 70, 0),
        ((427, 640), (640, 640), (427, 640), 106, 0),  # pad 213 total: 106 top, 107 bottom
        ((480, 640), (384, 640), (384, 512), 0, 64),
        ((640, 640), (640, 640), (640, 640), 0, 0),
    ],
)
def test_fit_hand_cases(src, dst, resized, top, left):
    lb = Letterbox.fit(src, dst)
    assert (lb.resized_hw, lb.pad_top, lb.pad_left) == (resized, top, left)


# sizes of 0 (empty boxes) or well above float rounding of the centres (a 1e-40 side vanishes in cy +- h/2)
side = st.one_of(st.just(0.0), st.floats(1e-3, 50))


@settings(max_examples=100)
@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100), side, side), max_size=10))
def test_cxcywh_roundtrip_and_iou_self(rows):
    cxcywh = np.array(rows, np.float64).reshape(-1, 4)
    xyxy = cxcywh_to_xyxy(cxcywh)
    np.testing.assert_allclose(xyxy_to_cxcywh(xyxy), cxcywh, atol=1e-9)
    iou = iou_matrix(xyxy, xyxy)
    positive = (cxcywh[:, 2] > 0) & (cxcywh[:, 3] > 0)
    np.testing.assert_allclose(np.diag(iou)[positive], 1.0)
    assert np.all(np.diag(iou)[~positive] == 0) and np.all((iou >= 0) & (iou <= 1 + 1e-12))
