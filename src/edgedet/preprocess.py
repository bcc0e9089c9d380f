"""Frame -> model input tensor: letterbox (or stretch), BGR->RGB, HWC->NCHW, scale, float32.

The result equals, bit for bit, what Ultralytics/YOLOv5 feed their models: `cv2.resize(INTER_LINEAR)` to the
rounded size, `copyMakeBorder` with the pad value and their pad rounding (`Letterbox.fit`), channel swap,
`float32(pixel) / 255`. It gets there with less work: the resize writes into a preallocated scratch image of
the resized size only, a 256-entry float32 table (pixel * scale) turns each channel into its plane of the
output tensor, and the padding, which is the same on every frame of a given size, is written once when the
frame size changes. The table lookup is one compiled loop over the resized image (numba, edgedet[fast]), or
`cv2.split` + one `cv2.LUT` per plane without numba; both write the same values.

With numba, a frame that is a whole multiple of the resized size on both axes (1280x720 or 1920x1080 into
320x180 or 640x360, 640x360 into 640: the common camera modes) skips the scratch image: INTER_LINEAR at a whole
factor k samples, per axis, the one centre pixel (k odd) or the two centre pixels with weight 1/2 each (k
even), and OpenCV's fixed-point arithmetic then rounds the 2x2 sum as (a + b + c + d + 2) >> 2 (a pixel counted
twice where k is odd). One compiled loop reads just those pixels and writes the planes (1.3-2x faster than
OpenCV's resize + the planes loop after an inference call, 1x to 6x measured). It is used only after it has
reproduced `cv2.resize` on a random frame of that size, so an OpenCV that rounds otherwise keeps OpenCV's
resize.

After an inference call the caches are cold (the model's weights and activations went through them), so each
extra library call here costs tens of microseconds: one call for the three planes instead of four is most of
what the compiled loop saves.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgedet import _optional
from edgedet.boxes import Letterbox
from edgedet.spec import ModelSpec

__all__ = ["Preprocessor"]

_UINT8 = np.dtype(np.uint8)

#: How a `Preprocessor` made without `backend=` fills the tensor: "auto" (the compiled loop when numba is
#: installed, else OpenCV), "numba" (numba must be installed) or "opencv". Tests set it to run both.
DEFAULT_BACKEND = "auto"
BACKENDS = ("auto", "numba", "opencv")


def _sample_to_planes(
    img: Any, kx: int, ky: int, x0: int, x1: int, y0: int, y1: int,
    lut: Any, tensor: Any, top: int, left: int, c0: int, c1: int, c2: int,
) -> None:  # fmt: skip
    """cv2.resize(INTER_LINEAR) by the whole factors (kx, ky), then the planes, in one pass over `img`:
    tensor[0, c, top + y, left + x] = lut[p] for p the channel (c0, c1, c2)[c] of output pixel (y, x), which
    rounds the sum of rows ky*y + (y0, y1) x columns kx*x + (x0, x1) (the same tap twice on an odd axis) as
    OpenCV does, (sum + 2) >> 2. Factors 1 (taps 0, 0) only write the planes of an already resized image.
    Compiled by `_kernel`.

    Written for the compiler: rows as flat byte arrays indexed with unsigned offsets (no negative-index
    wrap-around to test), and the two rows' sum first, in a loop over contiguous bytes that vectorises, so
    the per-pixel loop reads two 16-bit sums instead of four bytes per channel."""
    rh, rw = img.shape[0] // ky, img.shape[1] // kx
    flat = img.reshape(img.shape[0], img.shape[1] * 3)
    u = np.uintp
    step, a0, b0 = u(3 * kx), u(3 * x0), u(3 * x1)
    k0, k1, k2 = u(c0), u(c1), u(c2)
    two = np.uint32(2)
    if x0 == x1 and y0 == y1:  # odd factors: each output pixel is one input pixel
        for y in range(rh):
            row = flat[ky * y + y0]
            d0, d1, d2 = (
                tensor[0, 0, top + y, left:],
                tensor[0, 1, top + y, left:],
                tensor[0, 2, top + y, left:],
            )
            a = a0
            for x in range(rw):
                d0[u(x)] = lut[row[a + k0]]
                d1[u(x)] = lut[row[a + k1]]
                d2[u(x)] = lut[row[a + k2]]
                a += step
        return
    n = flat.shape[1]
    rows = np.empty(n, np.uint16)  # the two rows' sum
    for y in range(rh):
        r0, r1 = flat[ky * y + y0], flat[ky * y + y1]
        for j in range(n):
            rows[j] = np.uint16(r0[j]) + np.uint16(r1[j])
        d0, d1, d2 = tensor[0, 0, top + y, left:], tensor[0, 1, top + y, left:], tensor[0, 2, top + y, left:]
        a, b = a0, b0
        for x in range(rw):
            d0[u(x)] = lut[(np.uint32(rows[a + k0]) + rows[b + k0] + two) >> two]
            d1[u(x)] = lut[(np.uint32(rows[a + k1]) + rows[b + k1] + two) >> two]
            d2[u(x)] = lut[(np.uint32(rows[a + k2]) + rows[b + k2] + two) >> two]
            a += step
            b += step


#: `_sample_to_planes`' factors and taps for an image already at the resized size
_PLANES_ONLY = (1, 1, 0, 0, 0, 0)


_compiled: Any = None  # _sample_to_planes compiled, once per process


def _kernel() -> Any:
    global _compiled
    if _compiled is None:
        kernel = _optional.numba_jit(_sample_to_planes)
        # compile (or load numba's cache) now, with the argument types __call__ passes, not on a live frame
        lut, tensor = np.zeros(256, np.float32), np.zeros((1, 3, 1, 1), np.float32)
        kernel(np.zeros((1, 1, 3), np.uint8), *_PLANES_ONLY, lut, tensor, 0, 0, 2, 1, 0)
        _compiled = kernel
    return _compiled


def _centre_taps(k: int) -> tuple[int, int]:
    """The input pixels INTER_LINEAR reads, relative to k * x, for output x at a whole downscale factor k:
    the source coordinate (x + 0.5) * k - 0.5 falls on pixel (k - 1) / 2 for odd k, halfway between k/2 - 1
    and k/2 for even k."""
    return ((k - 1) // 2, (k - 1) // 2) if k % 2 else (k // 2 - 1, k // 2)


def _whole_factors(lb: Letterbox) -> tuple[int, int] | None:
    """(kx, ky) when the frame is a whole multiple of the resized size on both axes (1 included: no resize),
    else None."""
    (h, w), (rh, rw) = lb.src_hw, lb.resized_hw
    if h % rh or w % rw:
        return None
    return w // rw, h // rh


class Preprocessor:
    """Turns BGR frames into the input tensor `spec` describes.

    `__call__(image_bgr)`: image HxWx3 uint8 BGR (any size) -> (tensor, letterbox). tensor: (1, 3, H, W)
    float32 for (H, W) = spec.input_hw, channels in spec.color order, values pixel * spec.scale (pad pixels
    spec.pad_value * spec.scale). letterbox: the geometry, for `Letterbox.to_frame` on the model's boxes.

    The tensor is ONE buffer owned by this Preprocessor and overwritten by the next call: consume it (run
    inference) before preprocessing the next frame, or copy it. Not thread-safe; use one per thread.
    """

    def __init__(self, spec: ModelSpec, backend: str | None = None) -> None:
        spec.validate()
        self.spec = spec
        self.backend = _optional.choose_backend(
            DEFAULT_BACKEND if backend is None else backend,
            BACKENDS,
            strict=backend is not None,
            covered=True,
            what="preprocess",
        )
        self._kernel: Any = _kernel() if self.backend == "numba" else None
        h, w = spec.input_hw
        self._tensor = np.empty((1, 3, h, w), np.float32)
        # pixel -> pixel * scale, computed in float64 and rounded once; equals float32(p) / float32(255) for
        # scale 1/255 on all 256 values (tested), i.e. what torch does in YOLOv5/Ultralytics.
        self._lut = (np.arange(256, dtype=np.float64) * spec.scale).astype(np.float32)
        # output plane c takes input channel _src_channel[c]
        self._src_channel = (2, 1, 0) if spec.color == "RGB" else (0, 1, 2)
        self._geometry: Letterbox | None = None
        self._dsize: tuple[int, int] | None = None
        self._kernel_args: tuple[Any, ...] = ()  # after the image: the planes of the resized image
        # after the image: the one-pass resize's, where it serves this geometry
        self._sample_args: tuple[Any, ...] | None = None
        self._resized: npt.NDArray[np.uint8] = np.empty((0, 0, 3), np.uint8)
        self._planes: list[npt.NDArray[np.uint8]] = []
        self._last_shape: tuple[int, ...] | None = None  # of the last frame, once checked

    @property
    def tensor(self) -> npt.NDArray[np.float32]:
        """The (1, 3, H, W) float32 buffer every call writes and returns."""
        return self._tensor

    def _set_geometry(self, lb: Letterbox) -> None:
        rh, rw = lb.resized_hw
        self._resized = np.empty((rh, rw, 3), np.uint8)
        self._planes = [np.empty((rh, rw), np.uint8) for _ in range(3)]
        # Every pixel outside the resized image is padding; writing the whole tensor once is simplest and
        # the image region is overwritten on every call anyway.
        self._tensor[...] = self._lut[self.spec.pad_value]
        self._geometry = lb
        # Ultralytics skips the resize at the same size
        self._dsize = None if lb.resized_hw == lb.src_hw else (rw, rh)
        self._kernel_args = (
            *_PLANES_ONLY,
            self._lut,
            self._tensor,
            lb.pad_top,
            lb.pad_left,
            *self._src_channel,
        )
        self._sample_args = self._one_pass_args(lb) if self._kernel is not None else None

    def _one_pass_args(self, lb: Letterbox) -> tuple[Any, ...] | None:
        """`_sample_to_planes`' arguments after the image for this geometry, if it is a whole-factor one and the
        kernel reproduces OpenCV's resize there (checked on a random frame once per frame size), else None."""
        factors = _whole_factors(lb)
        if factors is None:
            return None
        kx, ky = factors
        tensor_args = self._kernel_args[len(_PLANES_ONLY) :]
        args = (kx, ky, *_centre_taps(kx), *_centre_taps(ky), *tensor_args)
        img = np.random.default_rng(0).integers(0, 256, (*lb.src_hw, 3), np.uint8)
        resized = img if self._dsize is None else cv2.resize(img, self._dsize, interpolation=cv2.INTER_LINEAR)
        expected, got = np.full_like(self._tensor, -1), np.full_like(self._tensor, -1)
        self._kernel(resized, *_PLANES_ONLY, self._lut, expected, *tensor_args[2:])
        self._kernel(img, *args[:6], self._lut, got, *tensor_args[2:])
        return args if np.array_equal(expected, got) else None

    def __call__(self, image_bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], Letterbox]:
        # A frame like the last one (same shape, uint8, C order, writable: every frame of a camera or a file)
        # goes straight to the resize; anything else is checked, converted or refused by _call_checked.
        # (After an inference call every line here runs from a cold cache: each one costs microseconds.)
        img = image_bgr
        if (
            type(img) is np.ndarray
            and img.shape == self._last_shape
            and img.dtype is _UINT8
            and img.flags.carray
        ):
            if self._sample_args is None:
                return self._fill(img)
            self._kernel(img, *self._sample_args)
            return self._tensor, self._geometry  # type: ignore[return-value]  # set with _last_shape
        return self._call_checked(image_bgr)

    def _call_checked(self, image_bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], Letterbox]:
        img = image_bgr if type(image_bgr) is np.ndarray else np.asarray(image_bgr)
        shape = img.shape
        if len(shape) != 3 or shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(
                f"preprocess expects an HxWx3 uint8 BGR image, got shape {img.shape} dtype {img.dtype}; "
                "convert grey or RGBA frames with cv2.cvtColor first"
            )
        if not img.flags.c_contiguous:
            img = np.ascontiguousarray(img)  # crops and flips: OpenCV (and the kernels) want packed rows
        lb = self._geometry
        if lb is None or lb.src_hw != shape[:2]:
            lb = Letterbox.fit(
                (int(shape[0]), int(shape[1])), self.spec.input_hw, keep_aspect=self.spec.letterbox
            )
            self._set_geometry(lb)
        self._last_shape = shape  # the next frame of this shape takes __call__'s short path
        if self._sample_args is not None and img.flags.writeable:  # (numba compiles anew for read-only)
            self._kernel(img, *self._sample_args)
            return self._tensor, lb
        return self._fill(img)

    def _fill(self, img: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], Letterbox]:
        """The tensor for `img`, a C-ordered uint8 BGR frame of the current geometry's size, through OpenCV's
        resize."""
        lb = self._geometry
        assert lb is not None  # set by _call_checked before any frame reaches here
        if self._dsize is None:
            np.copyto(self._resized, img)
        else:
            cv2.resize(img, self._dsize, self._resized, interpolation=cv2.INTER_LINEAR)
        if self._kernel is not None:
            self._kernel(self._resized, *self._kernel_args)
            return self._tensor, lb
        cv2.split(self._resized, self._planes)
        top, left = lb.pad_top, lb.pad_left
        rh, rw = lb.resized_hw
        for c in range(3):
            cv2.LUT(
                self._planes[self._src_channel[c]],
                self._lut,
                dst=self._tensor[0, c, top : top + rh, left : left + rw],
            )
        return self._tensor, lb
