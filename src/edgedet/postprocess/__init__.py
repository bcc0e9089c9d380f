"""Raw model outputs -> Detections in frame pixels: decode (per output format), NMS, undo the letterbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgedet import _optional
from edgedet.boxes import Letterbox
from edgedet.errors import ConfigError
from edgedet.postprocess.decode import DECODERS, Candidates, decode
from edgedet.postprocess.nms import nms
from edgedet.spec import ModelSpec
from edgedet.types import Detections

__all__ = ["DECODERS", "Candidates", "PostprocessConfig", "Postprocessor", "decode", "nms"]

#: How a `Postprocessor` made without `backend=` decodes: "auto" (one compiled call a frame, postprocess.kernels,
#: when numba is installed and the head and config are ones it covers, else numpy), "numba" (the same, but numba
#: must be installed) or "numpy". Both give the same Detections; tests set this to run everything on one path.
DEFAULT_BACKEND = "auto"
BACKENDS = ("auto", "numba", "numpy")

_FLOAT32 = np.dtype(np.float32)
_kernels: Any = None  # postprocess.kernels, imported and warmed by the first numba Postprocessor


def _load_kernels() -> Any:
    global _kernels
    if _kernels is None:
        from edgedet.postprocess import kernels

        kernels.warm()
        _kernels = kernels
    return _kernels


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds of decode + NMS (the defaults are YOLOv5/Ultralytics' for inference).

    conf_threshold: keep candidates whose score is strictly above this (use 0.001 for mAP).
    iou_threshold: NMS suppresses a box whose IoU with a kept, higher-scoring box is above this.
    agnostic: suppress across classes. max_det: most detections per frame. top_k: only this many of the
    highest-scoring candidates enter NMS. multi_label: one candidate per class above threshold per box (as
    YOLOv5/Ultralytics val do for mAP) instead of the best class only.
    """

    conf_threshold: float = 0.25
    iou_threshold: float = 0.45
    agnostic: bool = False
    max_det: int = 300
    top_k: int = 30000
    multi_label: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf_threshold < 1.0:
            raise ConfigError(
                f"conf threshold {self.conf_threshold} must be in [0, 1); try 0.25 (or 0.001 for mAP)"
            )
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ConfigError(
                f"IoU threshold {self.iou_threshold} must be in [0, 1]; try 0.45 (0.6-0.7 for mAP)"
            )
        if self.max_det < 1:
            raise ConfigError(f"max detections {self.max_det} must be at least 1; try 300")
        if self.top_k < 1:
            raise ConfigError(f"NMS top-k {self.top_k} must be at least 1; try 30000")


class Postprocessor:
    """Decode one image's outputs, run NMS (not for end2end models, which are NMS-free) and map the boxes
    back to frame pixels.

    `__call__(outputs, letterbox)`: outputs as the backend returned them (batch 1, or image 0 of a batch);
    letterbox: the geometry the Preprocessor returned for this frame. Returns Detections in frame pixels
    (clipped to the frame), sorted by descending confidence, track_id -1. Holds no per-frame state (the
    compiled path keeps its arguments per frame geometry).
    """

    def __init__(
        self, spec: ModelSpec, config: PostprocessConfig | None = None, backend: str | None = None
    ) -> None:
        if spec.output_format not in DECODERS:
            raise ConfigError(
                f"model spec output format {spec.output_format!r} is unknown; use one of {', '.join(DECODERS)}"
            )
        self.spec = spec
        self.config = config if config is not None else PostprocessConfig()
        self.backend = self._choose_backend(
            DEFAULT_BACKEND if backend is None else backend, backend is not None
        )
        self._kernel: Any = _load_kernels().KERNELS[spec.output_format] if self.backend == "numba" else None
        self._conf32 = np.float32(self.config.conf_threshold)
        self._fits_shape: tuple[int, ...] | None = None  # the last head shape the kernel took
        self._args_for: Letterbox | None = None  # the kernel's NMS and letterbox arguments, for this one
        self._args: tuple[Any, ...] = ()

    def _choose_backend(self, backend: str, strict: bool) -> str:
        """ "numba" or "numpy" for the asked backend, head and config (see `_optional.choose_backend`)."""
        return _optional.choose_backend(
            backend,
            BACKENDS,
            strict=strict,
            covered=self.spec.output_format in ("yolov5", "yolov8") and not self.config.multi_label,
            what="postprocess",
            not_covered="covers yolov5 and yolov8 heads with one label per box: use backend 'numpy' or 'auto' "
            "for this model or for multi_label",
        )

    def _kernel_input(self, outputs: Sequence[np.ndarray]) -> np.ndarray | None:
        """Image 0's head as the kernels take it (float32, C order, writable, the layout they decode), or
        None: then the numpy path decodes it, or raises its precise error for a head that does not fit.
        Sets what `__call__`'s short path checks (the head shape)."""
        if len(outputs) != 1:
            return None
        out = outputs[0]
        # carray: C-contiguous, aligned and writable (numba compiles anew for a read-only array)
        if type(out) is not np.ndarray or out.dtype != np.float32 or not out.flags.carray:
            return None
        if out.shape != self._fits_shape:
            if not self._fits(out.shape):
                return None
            self._fits_shape = out.shape
        return out[0]

    def _fits(self, shape: tuple[int, ...]) -> bool:
        nc = self.spec.num_classes
        if len(shape) != 3 or shape[0] < 1:
            return False
        if self.spec.output_format == "yolov5":
            return shape[2] > 5 and (not nc or shape[2] == 5 + nc)
        # [B, 4+nc, N]; the transposed layout goes to numpy
        return 4 < shape[1] <= shape[2] and (not nc or shape[1] == 4 + nc)

    def candidates(self, outputs: Sequence[np.ndarray]) -> Candidates:
        """Decoded candidates in model-input pixels, before NMS (see postprocess.decode)."""
        c = self.config
        return decode(
            self.spec.output_format, outputs, c.conf_threshold, c.multi_label, self.spec.num_classes or None
        )

    def __call__(self, outputs: Sequence[np.ndarray], letterbox: Letterbox) -> Detections:
        # The compiled path's frame like the last one (the same Letterbox, one float32 head of the shape it
        # took, C order, writable) goes straight to the kernel; the rest through _call_checked. (After an
        # inference call every line here runs from a cold cache: each one costs microseconds.)
        if letterbox is self._args_for and len(outputs) == 1:
            out = outputs[0]
            if (
                type(out) is np.ndarray
                and out.shape == self._fits_shape
                and out.dtype is _FLOAT32
                and out.flags.carray
            ):
                return Detections.unchecked(*self._kernel(out[0], self._conf32, self._args))
        return self._call_checked(outputs, letterbox)

    def _call_checked(self, outputs: Sequence[np.ndarray], letterbox: Letterbox) -> Detections:
        c = self.config
        x = self._kernel_input(outputs) if self._kernel is not None else None
        if x is not None:
            # the Preprocessor hands out one (frozen) Letterbox per frame size: the arguments change with it
            if letterbox is not self._args_for:
                sx, sy = letterbox.scale_xy
                h, w = letterbox.src_hw
                self._args = (
                    float(c.iou_threshold), bool(c.agnostic), int(c.max_det), int(c.top_k),
                    int(letterbox.pad_left), int(letterbox.pad_top), float(sx), float(sy), int(h), int(w),
                )  # fmt: skip
                self._args_for = letterbox
            return Detections.unchecked(*self._kernel(x, self._conf32, self._args))
        xyxy, score, class_id = self.candidates(outputs)
        if self.spec.output_format == "end2end":
            keep = np.argsort(-score, kind="stable")[: c.max_det]
        else:
            keep = nms(xyxy, score, class_id, c.iou_threshold, c.agnostic, c.max_det, c.top_k)
        if keep.size == 0:
            return Detections.empty()
        return Detections(letterbox.to_frame(xyxy[keep]), score[keep], class_id[keep])
