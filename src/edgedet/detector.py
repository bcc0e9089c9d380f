"""One detector: image -> preprocess -> backend -> postprocess -> Detections, with the time of each stage.

Every user of a model goes through this class: the `run` pipeline, `eval det`, `bench`, the INT8 accuracy gate
and export verification, so what is measured is what is deployed. The backend is opened through the backend
registry (`edgedet.backends.open_backend`), so any registered backend (ONNX Runtime, TensorRT, a plugin) can be
run, scored and timed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.backends import Backend, BackendConfig, open_backend
from edgedet.boxes import Letterbox
from edgedet.postprocess import PostprocessConfig, Postprocessor
from edgedet.preprocess import Preprocessor
from edgedet.profiling import LatencyStats
from edgedet.spec import ModelSpec
from edgedet.types import Detections

__all__ = ["DetectionTimes", "Detector", "default_backend", "measure_latency_ms", "open_detector"]

#: serialized TensorRT plans; everything else opens with ONNX Runtime unless a backend is named
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def default_backend(model: str | Path) -> str:
    """tensorrt for serialized engines (.engine, .plan, .trt), onnxruntime otherwise."""
    return "tensorrt" if Path(model).suffix.lower() in ENGINE_SUFFIXES else "onnxruntime"


@dataclass(frozen=True)
class DetectionTimes:
    """Milliseconds spent in each stage of one `Detector.detect` call (perf_counter_ns)."""

    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.infer_ms + self.postprocess_ms

    def as_stage_ms(self) -> dict[str, float]:
        """The pipeline's stage names -> ms."""
        return {"preprocess": self.preprocess_ms, "infer": self.infer_ms, "postprocess": self.postprocess_ms}


class Detector:
    """A loaded model with its preprocess and postprocess: `detect(image_bgr) -> (Detections, DetectionTimes)`.

    backend: an opened (not necessarily entered) Backend; the Detector owns it and closes it in `close()` /
    `__exit__`. classes: keep only these class ids (None: all). spec: override the backend's ModelSpec (a plain
    ONNX file read with a names file, say). Not thread-safe: the preprocess buffer and the backend's output
    buffers are reused between calls.
    """

    def __init__(
        self,
        backend: Backend,
        postprocess: PostprocessConfig | None = None,
        *,
        classes: Sequence[int] | None = None,
        spec: ModelSpec | None = None,
    ) -> None:
        self.backend = backend
        self.spec = spec if spec is not None else backend.spec
        self.preprocess = Preprocessor(self.spec)
        self.postprocess = Postprocessor(self.spec, postprocess)
        self.classes = np.asarray(sorted(classes), np.int32) if classes else None

    @property
    def description(self) -> str:
        return self.backend.description

    @property
    def model_path(self) -> Path:
        return self.backend.model_path

    def infer(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[Any]]:
        """Raw model outputs for a preprocessed (B, 3, H, W) float32 tensor (copies, safe to keep)."""
        return [np.array(o) for o in self.backend.infer(tensor)]

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> tuple[Detections, DetectionTimes]:
        """Detections in `image_bgr`'s pixels (track_id -1) and the time of each stage."""
        t0 = time.perf_counter_ns()
        tensor, letterbox = self.preprocess(image_bgr)
        t1 = time.perf_counter_ns()
        outputs = self.backend.infer(tensor)
        t2 = time.perf_counter_ns()
        dets = self.decode(outputs, letterbox)
        t3 = time.perf_counter_ns()
        return dets, DetectionTimes((t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6)

    def decode(self, outputs: Sequence[npt.NDArray[Any]], letterbox: Letterbox) -> Detections:
        """Raw outputs of the tensor `self.preprocess` made with `letterbox` -> Detections in frame pixels
        (decode, NMS, the class filter): the postprocess half of `detect`, for a runtime that runs the halves
        on different threads."""
        dets = self.postprocess(outputs, letterbox)
        if self.classes is not None:
            dets = dets[np.isin(dets.class_id, self.classes)]
        return dets

    def __call__(self, image_bgr: npt.NDArray[np.uint8]) -> Detections:
        return self.detect(image_bgr)[0]

    def __enter__(self) -> Detector:
        self.backend.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()


def open_detector(
    model: str | Path,
    backend: BackendConfig | str | None = None,
    postprocess: PostprocessConfig | None = None,
    *,
    classes: Sequence[int] | None = None,
    spec: ModelSpec | None = None,
) -> Detector:
    """Open `model` through the backend registry and wrap it in a Detector.

    backend: a BackendConfig, a registry name, or None (tensorrt for .engine/.plan/.trt, onnxruntime otherwise).
    The backend raises ModelError when the file is missing or unreadable.
    """
    path = Path(model).expanduser()
    if backend is None:
        backend = default_backend(path)
    cfg = BackendConfig(backend=backend) if isinstance(backend, str) else backend
    return Detector(open_backend(path, cfg), postprocess, classes=classes, spec=spec)


def measure_latency_ms(
    model: str | Path,
    frame_hw: tuple[int, int],
    runs: int = 30,
    warmup: int = 5,
    threads: int = 0,
    backend: str | None = None,
    device: str = "cpu",
) -> dict[str, LatencyStats]:
    """Latency of `model` on this machine, per stage and end to end ("preprocess", "infer", "postprocess",
    "e2e"), over `runs` calls on rendered synthetic frames of frame_hw after `warmup` discarded calls: the
    detector latency a `--realtime` MOT replay assumes when given a model instead of a number."""
    from edgedet.datasets import sample_frames

    frames = sample_frames(min(16, runs), frame_hw)
    times: list[DetectionTimes] = []
    cfg = BackendConfig(backend=backend or default_backend(model), device=device, threads=threads)
    with open_detector(model, cfg) as det:
        for i in range(warmup + runs):
            _, t = det.detect(frames[i % len(frames)])
            if i >= warmup:
                times.append(t)
    cols = {
        "preprocess": [t.preprocess_ms for t in times],
        "infer": [t.infer_ms for t in times],
        "postprocess": [t.postprocess_ms for t in times],
        "e2e": [t.total_ms for t in times],
    }
    return {k: LatencyStats.of(np.asarray(v, np.float64)) for k, v in cols.items()}
