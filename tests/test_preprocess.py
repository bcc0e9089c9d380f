"""Preprocessor against Ultralytics/YOLOv5's letterbox + tensor conversion written plainly, to exact equality."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers.backends import use_backend

import edgedet.preprocess as preprocess
from edgedet.preprocess import Preprocessor
from edgedet.spec import ModelSpec


@pytest.fixture(autouse=True, params=["opencv", "numba"])
def preprocess_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both ways of filling the tensor (cv2.LUT per plane; the compiled loop)."""
    return use_backend(request, monkeypatch, preprocess)


def reference_tensor(im, new_shape=(640, 640), color=(114, 114, 114), rgb=True, keep_aspect=True):
    """YOLOv5's utils.augmentations.letterbox(auto=False) + detect.py's conversion, as they write them."""
    shape = im.shape[:2]
    if keep_aspect:
        r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
        new_unpad = int(round(shape[1] * r)), int(round(shape[0] * r))  # noqa: RUF046 (as Ultralytics writes it)
        dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
        dw /= 2
        dh /= 2
        if shape[::-1] != new_unpad:
            im = cv2.resize(im, new_unpad, interpolation=cv2.INTER_LINEAR)
        top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))  # noqa: RUF046 (as Ultralytics writes it)
        left, right = int(round(dw - 0.1)), int(round(dw + 0.1))  # noqa: RUF046 (as Ultralytics writes it)
        im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    else:
        im = cv2.resize(im, (new_shape[1], new_shape[0]), interpolation=cv2.INTER_LINEAR)
    im = im.transpose((2, 0, 1))
    if rgb:
        im = im[::-1]
    im = np.ascontiguousarray(im)
    return (im.astype(np.float32) / np.float32(255))[None]


def _image(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


# frame (h, w), input (h, w), colour, letterbox
CASES = [
    ((720, 1280), (640, 640), "RGB", True),
    ((720, 1280), (320, 320), "RGB", True),
    ((1280, 720), (640, 640), "RGB", True),
    ((480, 640), (384, 640), "RGB", True),  # rectangular input, pad on the sides
    ((427, 640), (640, 640), "RGB", True),  # odd pad: 1 px more at the bottom
    ((640, 640), (640, 640), "RGB", True),  # same size: no resize
    ((100, 60), (640, 640), "RGB", True),  # upscale
    ((7, 3), (32, 32), "RGB", True),
    ((720, 1280), (640, 640), "BGR", True),
    ((720, 1280), (320, 480), "RGB", False),  # stretch
    # whole factors: with numba, the one-pass resize (tested below to be the path taken)
    ((1080, 1920), (640, 640), "RGB", True),  # 3x
    ((1080, 1920), (320, 320), "RGB", True),  # 6x
    ((540, 960), (320, 320), "RGB", True),  # 3x
    ((900, 1600), (320, 320), "BGR", True),  # 5x
    ((1260, 2240), (320, 320), "RGB", True),  # 7x
    ((720, 1280), (240, 320), "RGB", False),  # stretch: 4x across, 3x down
    ((720, 1280), (180, 427), "RGB", False),  # 4x down, not a whole factor across
    ((2160, 3840), (640, 640), "RGB", True),  # 6x
]

# (frame h, w), input, letterbox, the factors the one-pass resize takes (None: not whole, OpenCV resizes)
WHOLE_FACTORS = [
    ((720, 1280), (320, 320), True, (4, 4)),
    ((1080, 1920), (640, 640), True, (3, 3)),
    ((1080, 1920), (320, 320), True, (6, 6)),
    ((640, 640), (640, 640), True, (1, 1)),
    ((720, 1280), (240, 320), False, (4, 3)),
    ((720, 1280), (640, 640), True, (2, 2)),
    ((720, 1280), (360, 1280), False, (1, 2)),  # 1x across, 2x down
    ((427, 640), (640, 640), True, (1, 1)),  # padding only
    ((427, 641), (640, 640), True, None),  # not whole
]


@pytest.mark.parametrize(("frame_hw", "input_hw", "color", "letterbox"), CASES)
def test_equals_reference_exactly(frame_hw, input_hw, color, letterbox):
    rng = np.random.default_rng(sum(frame_hw))
    img = _image(rng, *frame_hw)
    spec = ModelSpec(input_hw=input_hw, color=color, letterbox=letterbox)
    tensor, lb = Preprocessor(spec)(img)
    expected = reference_tensor(img, input_hw, rgb=color == "RGB", keep_aspect=letterbox)
    assert tensor.dtype == np.float32 and tensor.shape == (1, 3, *input_hw)
    np.testing.assert_array_equal(tensor, expected)
    assert lb.src_hw == frame_hw and lb.dst_hw == input_hw


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 900), w=st.integers(1, 900), size=st.sampled_from([(320, 320), (640, 640), (256, 416)])
)
def test_equals_reference_any_size(h, w, size):
    # Ultralytics rounds the resized side to 0 for extreme aspect ratios (and then cannot resize); we need >= 1
    r = min(size[0] / h, size[1] / w)
    if round(h * r) < 1 or round(w * r) < 1:
        return
    img = _image(np.random.default_rng(h * 1000 + w), h, w)
    tensor, _ = Preprocessor(ModelSpec(input_hw=size))(img)
    np.testing.assert_array_equal(tensor, reference_tensor(img, size))


def test_buffer_is_reused_and_repadded_when_the_frame_size_changes():
    rng = np.random.default_rng(0)
    pre = Preprocessor(ModelSpec(input_hw=(320, 320)))
    wide, tall = _image(rng, 720, 1280), _image(rng, 1280, 720)
    t1, _ = pre(wide)
    t2, lb = pre(tall)
    assert t1 is t2 is pre.tensor
    np.testing.assert_array_equal(t2, reference_tensor(tall, (320, 320)))  # no stripe of the wide frame left
    assert lb.src_hw == (1280, 720)
    t3, _ = pre(wide)
    np.testing.assert_array_equal(t3, reference_tensor(wide, (320, 320)))


def test_lookup_table_equals_float_division_on_all_values():
    pre = Preprocessor(ModelSpec(input_hw=(32, 32)))
    all_values = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    tensor, _ = pre(
        np.ascontiguousarray(np.pad(all_values, ((8, 8), (8, 8), (0, 0))))
    )  # same size: no resize
    np.testing.assert_array_equal(
        tensor[0, 0, 8:24, 8:24].reshape(-1), np.arange(256, dtype=np.float32) / np.float32(255)
    )


def test_non_contiguous_frame():
    img = _image(np.random.default_rng(1), 480, 800)
    view = img[10:400, 20:700]
    tensor, _ = Preprocessor(ModelSpec(input_hw=(320, 320)))(view)
    np.testing.assert_array_equal(tensor, reference_tensor(np.ascontiguousarray(view), (320, 320)))


@pytest.mark.parametrize(
    "shape_dtype", [((10, 10), np.uint8), ((10, 10, 4), np.uint8), ((10, 10, 3), np.float32)]
)
def test_rejects_non_bgr_images(shape_dtype):
    shape, dtype = shape_dtype
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        Preprocessor(ModelSpec(input_hw=(32, 32)))(np.zeros(shape, dtype))


@settings(max_examples=60, deadline=None)
@given(
    hw=st.tuples(st.integers(40, 900), st.integers(40, 900)),
    box=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0.1, 1), st.floats(0.1, 1)),
    size=st.sampled_from([(320, 320), (640, 640), (256, 416)]),
)
def test_box_drawn_in_frame_lands_where_to_input_says(hw, box, size):
    """A white rectangle on black, letterboxed: its extent in the tensor is Letterbox.to_input of its box."""
    h, w = hw
    x1, y1 = int(box[0] * (w - 8)), int(box[1] * (h - 8))
    x2 = min(w, x1 + max(8, int(box[2] * (w - x1))))
    y2 = min(h, y1 + max(8, int(box[3] * (h - y1))))
    img = np.zeros((h, w, 3), np.uint8)
    img[y1:y2, x1:x2] = 255  # pixels x1..x2-1 cover [x1, x2) in continuous pixel coordinates
    tensor, lb = Preprocessor(ModelSpec(input_hw=size))(img)
    expected = lb.to_input(np.array([x1, y1, x2, y2], np.float64))
    ys, xs = np.nonzero(tensor[0, 0] > 0.5)  # bilinear edges cross half intensity at the true edge
    seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
    np.testing.assert_allclose(seen, expected, atol=1.0)
    # and nothing of the rectangle leaks into the padding
    pad = np.ones(tensor.shape[2:], bool)
    pad[lb.pad_top : lb.pad_top + lb.resized_hw[0], lb.pad_left : lb.pad_left + lb.resized_hw[1]] = False
    assert np.all(tensor[0, :, pad] == np.float32(114) / np.float32(255))


def test_backend_is_the_one_asked(preprocess_backend: str) -> None:
    assert Preprocessor(ModelSpec(input_hw=(32, 32))).backend == preprocess_backend
    with pytest.raises(Exception, match="not one of"):
        Preprocessor(ModelSpec(input_hw=(32, 32)), backend="cuda")


@pytest.mark.parametrize(("frame_hw", "input_hw", "letterbox", "factors"), WHOLE_FACTORS)
def test_one_pass_resize_serves_whole_factors(preprocess_backend, frame_hw, input_hw, letterbox, factors):
    img = _image(np.random.default_rng(5), *frame_hw)
    pre = Preprocessor(ModelSpec(input_hw=input_hw, letterbox=letterbox))
    tensor, _ = pre(img)
    np.testing.assert_array_equal(tensor, reference_tensor(img, input_hw, keep_aspect=letterbox))
    taken = None if pre._sample_args is None else pre._sample_args[:2]
    assert taken == (factors if preprocess_backend == "numba" else None)


def test_one_pass_resize_checks_itself_against_this_opencv(preprocess_backend, monkeypatch):
    """An OpenCV whose INTER_LINEAR rounds otherwise (another version, another CPU's SIMD path): the one-pass
    resize no longer reproduces it on its check frame, so OpenCV's resize is used and the tensor is OpenCV's."""
    real = cv2.resize

    def rounds_otherwise(src, dsize, dst=None, **kw):
        out = real(src, dsize, **kw)
        out[0, 0, 0] ^= 1
        if dst is None:
            return out
        dst[...] = out
        return dst

    monkeypatch.setattr(preprocess.cv2, "resize", rounds_otherwise)
    img = _image(np.random.default_rng(6), 720, 1280)
    pre = Preprocessor(ModelSpec(input_hw=(320, 320)))
    tensor, _ = pre(img)
    assert pre._sample_args is None
    np.testing.assert_array_equal(
        tensor, reference_tensor(img, (320, 320))
    )  # reference uses the patched resize


def test_read_only_frame(preprocess_backend):
    """A frame over a buffer the source does not own (read-only) takes OpenCV's resize, same values."""
    img = _image(np.random.default_rng(7), 720, 1280)
    ro = img.copy()
    ro.flags.writeable = False
    pre = Preprocessor(ModelSpec(input_hw=(320, 320)))
    np.testing.assert_array_equal(pre(ro)[0], reference_tensor(img, (320, 320)))
    np.testing.assert_array_equal(pre(img)[0], reference_tensor(img, (320, 320)))


def test_frames_of_the_same_shape_in_every_layout(preprocess_backend):
    """A frame of the last frame's shape takes the short path only when it is uint8, C-ordered and writable:
    a flipped view, a read-only frame or a float frame of that shape between plain ones is still handled."""
    rng = np.random.default_rng(8)
    pre = Preprocessor(ModelSpec(input_hw=(320, 320)))
    a, b = _image(rng, 720, 1280), _image(rng, 720, 1280)
    ro = b.copy()
    ro.flags.writeable = False
    for frame in (a, b[:, ::-1], ro, a, b):
        np.testing.assert_array_equal(
            pre(frame)[0], reference_tensor(np.ascontiguousarray(frame), (320, 320))
        )
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        pre(a.astype(np.float32))
    np.testing.assert_array_equal(pre(list(a))[0], reference_tensor(a, (320, 320)))  # array-like


@settings(max_examples=40, deadline=None)
@given(
    kx=st.integers(1, 8),
    ky=st.integers(1, 8),
    rh=st.integers(8, 72),
    rw=st.integers(8, 72),
    rgb=st.booleans(),
)
def test_whole_factors_equal_opencv_exactly(kx, ky, rh, rw, rgb):
    """Every pair of whole factors, odd and even, on small frames (stretched to the input: no padding)."""
    img = _image(np.random.default_rng(kx * 100 + ky), ky * rh, kx * rw)
    pre = Preprocessor(ModelSpec(input_hw=(rh, rw), letterbox=False, color="RGB" if rgb else "BGR"))
    tensor, _ = pre(img)
    np.testing.assert_array_equal(tensor, reference_tensor(img, (rh, rw), rgb=rgb, keep_aspect=False))
    if pre.backend == "numba":  # (the autouse fixture runs both)
        assert pre._sample_args is not None and pre._sample_args[:2] == (kx, ky)
