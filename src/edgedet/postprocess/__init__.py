"""Raw model outputs -> Detections in frame pixels: decode (per output format), NMS, undo the letterbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgedet.boxes import Letterbox
from edgedet.errors import ConfigError
from edgedet.postprocess.decode import DECODERS, Candidates, decode
from edgedet.postprocess.nms import nms
from edgedet.spec import ModelSpec
from edgedet.types import Detections

__all__ = ["DECODERS", "Candidates", "PostprocessConfig", "Postprocessor", "decode", "nms"]


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
    (clipped to the frame), sorted by descending confidence, track_id -1. Holds no per-frame state.
    """

    def __init__(self, spec: ModelSpec, config: PostprocessConfig | None = None) -> None:
        if spec.output_format not in DECODERS:
            raise ConfigError(
                f"model spec output format {spec.output_format!r} is unknown; use one of {', '.join(DECODERS)}"
            )
        self.spec = spec
        self.config = config if config is not None else PostprocessConfig()

    def candidates(self, outputs: Sequence[np.ndarray]) -> Candidates:
        """Decoded candidates in model-input pixels, before NMS (see postprocess.decode)."""
        c = self.config
        return decode(
            self.spec.output_format, outputs, c.conf_threshold, c.multi_label, self.spec.num_classes or None
        )

    def __call__(self, outputs: Sequence[np.ndarray], letterbox: Letterbox) -> Detections:
        c = self.config
        xyxy, score, class_id = self.candidates(outputs)
        if self.spec.output_format == "end2end":
            keep = np.argsort(-score, kind="stable")[: c.max_det]
        else:
            keep = nms(xyxy, score, class_id, c.iou_threshold, c.agnostic, c.max_det, c.top_k)
        if keep.size == 0:
            return Detections.empty()
        return Detections(letterbox.to_frame(xyxy[keep]), score[keep], class_id[keep])
