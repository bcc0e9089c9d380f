"""Box maths: format conversions, IoU matrices, letterbox geometry and its exact inverse.

All boxes are float arrays of shape (N, 4). `xyxy` = x1, y1, x2, y2; `xywh` = top-left x, y, width, height;
`cxcywh` = centre x, y, width, height. Units are whatever the caller passes (pixels of one image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]


def cxcywh_to_xyxy(b: FloatArray) -> FloatArray:
    out = np.empty_like(b)
    half_w = b[..., 2] / 2
    half_h = b[..., 3] / 2
    out[..., 0] = b[..., 0] - half_w
    out[..., 1] = b[..., 1] - half_h
    out[..., 2] = b[..., 0] + half_w
    out[..., 3] = b[..., 1] + half_h
    return out


def xyxy_to_cxcywh(b: FloatArray) -> FloatArray:
    out = np.empty_like(b)
    out[..., 0] = (b[..., 0] + b[..., 2]) / 2
    out[..., 1] = (b[..., 1] + b[..., 3]) / 2
    out[..., 2] = b[..., 2] - b[..., 0]
    out[..., 3] = b[..., 3] - b[..., 1]
    return out


def xywh_to_xyxy(b: FloatArray) -> FloatArray:
    out = b.copy()
    out[..., 2:] += out[..., :2]
    return out


def xyxy_to_xywh(b: FloatArray) -> FloatArray:
    out = b.copy()
    out[..., 2:] -= out[..., :2]
    return out


def area(b: FloatArray) -> FloatArray:
    return np.maximum(b[..., 2] - b[..., 0], 0.0) * np.maximum(b[..., 3] - b[..., 1], 0.0)


def iou_matrix(a: FloatArray, b: FloatArray) -> npt.NDArray[np.float64]:
    """IoU of every box in `a` (N, 4 xyxy) with every box in `b` (M, 4 xyxy) -> (N, M) float64.

    Empty boxes (zero area) have IoU 0 with everything, including themselves.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float64)
    # np.maximum(x, 0) rather than np.clip: the tracker calls this every frame and clip was most of its cost.
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = area(a)[:, None] + area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def clip_xyxy(b: FloatArray, hw: tuple[int, int]) -> FloatArray:
    """Clip boxes to an image of height/width `hw`; returns a new array."""
    out = b.copy()
    out[..., 0::2] = np.clip(out[..., 0::2], 0, hw[1])
    out[..., 1::2] = np.clip(out[..., 1::2], 0, hw[0])
    return out


@dataclass(frozen=True)
class Letterbox:
    """How a frame of `src_hw` was placed into a model input of `dst_hw`.

    The frame is resized to `resized_hw` (aspect kept) and placed with its top-left corner at
    (`pad_left`, `pad_top`); the rest is filled with the pad value. With `keep_aspect=False` the frame is
    stretched to fill the input and both pads are 0.
    """

    src_hw: tuple[int, int]
    dst_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    pad_top: int
    pad_left: int

    @classmethod
    def fit(cls, src_hw: tuple[int, int], dst_hw: tuple[int, int], keep_aspect: bool = True) -> Letterbox:
        """The geometry Ultralytics/YOLOv5 use: scale to fit, centre, round the pads as they do."""
        h, w = src_hw
        dh, dw = dst_hw
        if h <= 0 or w <= 0:
            raise ValueError(f"frame size must be positive, got {src_hw}")
        if not keep_aspect:
            return cls((h, w), (dh, dw), (dh, dw), 0, 0)
        r = min(dh / h, dw / w)
        new_w, new_h = max(1, round(w * r)), max(1, round(h * r))
        pad_w, pad_h = (dw - new_w) / 2, (dh - new_h) / 2
        top, left = round(pad_h - 0.1), round(pad_w - 0.1)
        return cls((h, w), (dh, dw), (new_h, new_w), int(top), int(left))

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Input pixels per frame pixel along x and y (exact, from the rounded resize)."""
        return self.resized_hw[1] / self.src_hw[1], self.resized_hw[0] / self.src_hw[0]

    def to_input(self, xyxy: FloatArray) -> FloatArray:
        """Frame pixels -> model-input pixels."""
        sx, sy = self.scale_xy
        out = np.asarray(xyxy, np.float64).copy()
        out[..., 0::2] = out[..., 0::2] * sx + self.pad_left
        out[..., 1::2] = out[..., 1::2] * sy + self.pad_top
        return out

    def to_frame(self, xyxy: FloatArray, clip: bool = True) -> FloatArray:
        """Model-input pixels -> frame pixels (the exact inverse of `to_input`), clipped to the frame."""
        sx, sy = self.scale_xy
        out = np.asarray(xyxy, np.float64).copy()
        out[..., 0::2] = (out[..., 0::2] - self.pad_left) / sx
        out[..., 1::2] = (out[..., 1::2] - self.pad_top) / sy
        return clip_xyxy(out, self.src_hw) if clip else out
