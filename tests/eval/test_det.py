"""Detection mAP through pycocotools: exact values on constructed cases, and the reference YOLOv5n numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.datasets import DetectionDataset, LabelledImage, load_dataset
from edgedet.eval.det import coco_map, evaluate_detections
from edgedet.types import Detections

GT = np.array([[10, 10, 110, 110], [200, 50, 260, 150]], np.float32)


def _ds() -> DetectionDataset:
    return DetectionDataset((LabelledImage(Path("a.jpg"), (300, 400), GT, np.array([0, 1])),), ("x", "y"))


def _shift_for_iou(box: np.ndarray, iou: float) -> np.ndarray:
    """The same-size box shifted right so that its IoU with `box` is `iou`."""
    w = box[2] - box[0]
    dx = w * (1 - iou) / (1 + iou)
    return box + np.array([dx, 0, dx, 0], np.float32)


@pytest.mark.parametrize(
    ("iou", "classes", "expect_50_95", "expect_50"),
    [
        (1.0, [0, 1], 1.0, 1.0),
        (0.62, [0, 1], 0.3, 1.0),  # passes IoU thresholds 0.50, 0.55, 0.60 of ten
        (0.77, [0, 1], 0.6, 1.0),
        (0.45, [0, 1], 0.0, 0.0),
        (1.0, [1, 0], 0.0, 0.0),  # right boxes, wrong classes
    ],
)
def test_coco_map_exact_cases(iou: float, classes: list[int], expect_50_95: float, expect_50: float) -> None:
    boxes = np.stack([_shift_for_iou(b, iou) for b in GT])
    dets = Detections(boxes, np.array([0.9, 0.8]), np.array(classes))
    m50_95, m50, per_class = coco_map(_ds(), [dets], per_class=True)
    assert m50_95 == pytest.approx(expect_50_95, abs=1e-6)
    assert m50 == pytest.approx(expect_50, abs=1e-6)
    assert set(per_class) == {0, 1}


def test_half_found_and_a_false_positive_ranked_first() -> None:
    fp = np.array([[300, 200, 350, 250]], np.float32)
    dets = Detections(np.concatenate([fp, GT[:1]]), np.array([0.9, 0.5]), np.array([0, 0]))
    m50_95, m50, per_class = coco_map(_ds(), [dets], per_class=True)
    # class 0: precision 1/2 at recall 1 -> AP 0.5 (101-point interpolation); class 1: AP 0 -> mean 0.25
    assert m50 == pytest.approx(0.25, abs=1e-6) and m50_95 == pytest.approx(0.25, abs=1e-6)
    assert per_class[0] == pytest.approx((0.5, 0.5), abs=1e-6)
    assert per_class[1] == pytest.approx((0.0, 0.0), abs=1e-6)


def test_no_detections_scores_zero() -> None:
    assert coco_map(_ds(), [Detections.empty()])[:2] == (0.0, 0.0)


def test_callable_models_and_latency() -> None:
    calls = []

    def model(img: np.ndarray) -> Detections:
        calls.append(img.shape)
        return Detections(GT, np.array([0.9, 0.8]), np.array([0, 1]))

    ds = load_dataset(shared_path("coco128"))[:3]
    m = evaluate_detections(model, ds)
    assert len(calls) == 3 and calls[0] == (*ds[0].hw, 3)
    assert m.num_images == 3 and m.num_detections == 6 and m.latency_ms_p50 >= 0


def test_yolov5n_320_on_16_images() -> None:
    """Quick regression on a subset (value from the full-set check's pipeline, which matches the reference)."""
    ds = load_dataset(shared_path("coco128"))[:16]
    m = evaluate_detections(shared_path("models", "reference_onnx", "yolov5n_320.onnx"), ds)
    assert m.map50_95 == pytest.approx(0.519, abs=0.003)
    assert m.map50 == pytest.approx(0.735, abs=0.003)


def test_pseudo_label_mode() -> None:
    ref = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    images = load_dataset(shared_path("coco128")).paths[:8]
    self_score = evaluate_detections(ref, reference=ref, images=images)
    assert self_score.map50_95 > 0.95  # its own conf-0.25 boxes are all found again, ranked first
    other = evaluate_detections(
        shared_path("models", "reference_onnx", "yolov5n_640.onnx"), reference=ref, images=images
    )
    assert 0.3 < other.map50_95 < self_score.map50_95 - 0.1


@pytest.mark.slow
@pytest.mark.parametrize(("size", "map50_95", "map50"), [(640, 0.350, 0.547), (320, 0.296, 0.463)])
def test_yolov5n_reference_numbers_on_coco128(size: int, map50_95: float, map50: float) -> None:
    m = evaluate_detections(
        shared_path("models", "reference_onnx", f"yolov5n_{size}.onnx"), load_dataset(shared_path("coco128"))
    )
    assert m.map50_95 == pytest.approx(map50_95, abs=0.003)
    assert m.map50 == pytest.approx(map50, abs=0.003)
    assert m.num_gt == 929
