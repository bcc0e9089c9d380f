"""One Detector: preprocess -> any registered backend -> postprocess, used by run, eval det and bench."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.backends import BACKENDS, BackendConfig
from edgedet.backends.onnxruntime import OnnxRuntimeBackend
from edgedet.detector import Detector, default_backend, measure_latency_ms, open_detector
from edgedet.postprocess import PostprocessConfig

NAMES = "{0: 'car', 1: 'person'}"


def _model(tmp_path: Path) -> Path:
    raw = yolov5_raw(
        np.array([[32, 32, 16, 8], [10, 10, 4, 4]]), np.array([0.9, 0.8]), np.array([[1.0, 0.0], [0.0, 1.0]])
    )
    return constant_model(tmp_path / "m.onnx", [raw], metadata={"names": NAMES})


class CountingBackend(OnnxRuntimeBackend):
    """A backend a plugin could register: ONNX Runtime that counts its calls."""

    calls = 0

    def infer(self, tensor):  # type: ignore[no-untyped-def]
        CountingBackend.calls += 1
        return super().infer(tensor)


def test_detect_returns_detections_in_frame_pixels_and_stage_times(tmp_path: Path) -> None:
    with open_detector(_model(tmp_path), "onnxruntime", PostprocessConfig(), classes=[0]) as det:
        dets, times = det.detect(np.zeros((128, 256, 3), np.uint8))
    # 64x64 input letterboxes 128x256 at scale 0.25, 16 px padding on top: (24, 28)-(40, 36) -> (96, 48)-(160, 80)
    np.testing.assert_allclose(dets.xyxy, [[96, 48, 160, 80]], atol=1e-3)
    assert dets.class_id.tolist() == [0]  # class 1 filtered by classes=[0]
    assert times.infer_ms > 0 and times.total_ms >= times.infer_ms
    assert set(times.as_stage_ms()) == {"preprocess", "infer", "postprocess"}


def test_any_registered_backend_is_opened_by_name(tmp_path: Path) -> None:
    BACKENDS.register("counting-test", CountingBackend)
    try:
        det = open_detector(_model(tmp_path), BackendConfig(backend="counting-test", threads=1))
        with det:
            det(np.zeros((64, 64, 3), np.uint8))
        assert CountingBackend.calls == 1 and isinstance(det.backend, CountingBackend)
    finally:
        BACKENDS.unregister("counting-test")


def test_eval_det_scores_through_a_non_default_backend(tmp_path: Path) -> None:
    """`eval det --backend NAME`: the same mAP through a plugin backend as through the default one."""
    from edgedet.datasets import DetectionDataset, LabelledImage
    from edgedet.eval.det import evaluate_detections

    model = _model(tmp_path)
    img = tmp_path / "a.jpg"
    import cv2

    cv2.imwrite(str(img), np.zeros((128, 256, 3), np.uint8))
    ds = DetectionDataset(
        (LabelledImage(img, (128, 256), np.array([[96, 48, 160, 80]], np.float32), np.array([0])),),
        ("car", "person"),
    )
    BACKENDS.register("counting-test", CountingBackend)
    try:
        CountingBackend.calls = 0
        plugin = evaluate_detections(model, ds, backend="counting-test")
    finally:
        BACKENDS.unregister("counting-test")
    default = evaluate_detections(model, ds)
    assert CountingBackend.calls == 1
    assert plugin.map50 == default.map50 == pytest.approx(1.0)


def test_default_backend_by_suffix_and_latency(tmp_path: Path) -> None:
    assert default_backend("a.engine") == "tensorrt" and default_backend("a.onnx") == "onnxruntime"
    lat = measure_latency_ms(_model(tmp_path), (48, 80), runs=3, warmup=1, threads=1)
    assert set(lat) == {"preprocess", "infer", "postprocess", "e2e"} and lat["e2e"].count == 3
    assert lat["e2e"].p50_ms >= lat["infer"].p50_ms


def test_detector_wraps_an_open_backend(tmp_path: Path) -> None:
    backend = OnnxRuntimeBackend(_model(tmp_path), BackendConfig(threads=1))
    det = Detector(backend, PostprocessConfig(conf_threshold=0.85))
    with det:
        assert len(det(np.zeros((64, 64, 3), np.uint8))) == 1  # only the 0.9 box passes conf 0.85
    assert det.description == backend.description and det.model_path == backend.model_path
