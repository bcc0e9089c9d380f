"""Postprocessor end to end: synthetic heads with known answers, config checks, and the real YOLOv5n model."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.boxes import Letterbox, cxcywh_to_xyxy, iou_matrix
from edgedet.errors import ConfigError
from edgedet.postprocess import PostprocessConfig, Postprocessor
from edgedet.spec import ModelSpec
from edgedet.types import Detections


def _v5_row(cx, cy, w, h, obj, cls, nc=3, p=1.0):
    r = np.zeros(5 + nc, np.float32)
    r[:5] = cx, cy, w, h, obj
    r[5 + cls] = p
    return r


def test_yolov5_head_to_frame_pixels():
    # 1280x720 frame into 640x640: scale 0.5, resized 640x360, pad_top 140
    lb = Letterbox.fit((720, 1280), (640, 640))
    assert (lb.resized_hw, lb.pad_top, lb.pad_left) == ((360, 640), 140, 0)
    rows = np.stack(
        [
            _v5_row(100, 240, 40, 20, 0.9, 0),  # kept
            _v5_row(101, 240, 40, 20, 0.8, 0),  # duplicate of the first, suppressed
            _v5_row(101, 240, 40, 20, 0.7, 1),  # same place, other class: kept (class-aware)
            _v5_row(630, 150, 40, 40, 0.6, 2),  # crosses the right and top edges of the image: clipped
            _v5_row(300, 300, 10, 10, 0.2, 2),  # below conf 0.25
        ]
    )
    spec = ModelSpec(output_format="yolov5", class_names=("a", "b", "c"))
    dets = Postprocessor(spec)([rows[None]], lb)
    assert isinstance(dets, Detections)
    np.testing.assert_allclose(
        dets.xyxy, [[160, 180, 240, 220], [162, 180, 242, 220], [1220, 0, 1280, 60]], rtol=0, atol=1e-4
    )
    np.testing.assert_allclose(dets.confidence, [0.9, 0.7, 0.6])
    assert dets.class_id.tolist() == [0, 1, 2]
    assert dets.track_id.tolist() == [-1, -1, -1]
    agnostic = Postprocessor(spec, PostprocessConfig(agnostic=True))([rows[None]], lb)
    assert agnostic.class_id.tolist() == [0, 2]


def test_end2end_skips_nms_and_sorts():
    rows = np.array([[[0, 0, 10, 10, 0.5, 1], [0, 0, 10, 10, 0.9, 1], [0, 0, 10, 10, 0.1, 0]]], np.float32)
    lb = Letterbox.fit((640, 640), (640, 640))
    dets = Postprocessor(ModelSpec(output_format="end2end"), PostprocessConfig(max_det=5))([rows], lb)
    assert dets.confidence.tolist() == pytest.approx([0.9, 0.5])  # overlapping boxes both kept: no NMS


def test_empty_result():
    lb = Letterbox.fit((480, 640), (320, 320))
    dets = Postprocessor(ModelSpec(output_format="yolov8"))([np.zeros((1, 84, 2100), np.float32)], lb)
    assert len(dets) == 0 and dets.xyxy.shape == (0, 4)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"conf_threshold": 1.0}, "conf threshold"),
        ({"conf_threshold": -0.1}, "conf threshold"),
        ({"iou_threshold": 1.5}, "IoU threshold"),
        ({"max_det": 0}, "max detections"),
        ({"top_k": 0}, "top-k"),
    ],
)
def test_config_rejects_bad_values(kwargs, text):
    with pytest.raises(ConfigError, match=text):
        PostprocessConfig(**kwargs)


def _run_reference_model(image_name: str, size: int, config: PostprocessConfig):
    ort = pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    from edgedet.preprocess import Preprocessor
    from edgedet.spec import spec_from_metadata

    model = shared_path("models", "reference_onnx", f"yolov5n_{size}.onnx")
    image = cv2.imread(str(shared_path("coco128", "images", "train2017", f"{image_name}.jpg")))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    spec = spec_from_metadata(
        sess.get_modelmeta().custom_metadata_map, inp.name, inp.shape, [o.shape for o in sess.get_outputs()]
    )
    assert spec.output_format == "yolov5" and spec.num_classes == 80
    tensor, lb = Preprocessor(spec)(image)
    dets = Postprocessor(spec, config)(sess.run(None, {inp.name: tensor}), lb)
    labels = np.loadtxt(shared_path("coco128", "labels", "train2017", f"{image_name}.txt"), ndmin=2)
    h, w = image.shape[:2]
    gt_xyxy = cxcywh_to_xyxy(labels[:, 1:] * [w, h, w, h])
    return dets, labels[:, 0].astype(int), gt_xyxy


# coco128 images with large, clear objects: (image, gt classes expected to be found at IoU > 0.7)
REAL_CASES = [
    ("000000000036", [25, 0]),  # umbrella, person
    ("000000000034", [22]),  # zebra
    ("000000000030", [58, 75]),  # potted plant, vase
]


@pytest.mark.parametrize(("image_name", "expected_classes"), REAL_CASES)
def test_reference_yolov5n_finds_labelled_objects(image_name, expected_classes):
    dets, gt_cls, gt_xyxy = _run_reference_model(image_name, 640, PostprocessConfig())
    big = [
        (gt_xyxy[i, 2] - gt_xyxy[i, 0]) * (gt_xyxy[i, 3] - gt_xyxy[i, 1]) > 30_000 for i in range(len(gt_cls))
    ]
    assert sorted(gt_cls[big].tolist()) == sorted(expected_classes)
    iou = iou_matrix(gt_xyxy[big], dets.xyxy)
    for row, cls in zip(iou, gt_cls[big], strict=True):
        same_class = dets.class_id == cls
        assert same_class.any() and row[same_class].max() > 0.7, (
            f"class {cls} not found: IoUs {row}, classes {dets.class_id}"
        )
    assert np.all(dets.confidence > 0.25) and np.all(np.diff(dets.confidence) <= 0)
    assert np.all(dets.xyxy[:, [0, 2]] <= 640) and np.all(dets.xyxy >= 0)


def test_reference_yolov5n_low_threshold_multi_label():
    """mAP settings (conf 0.001, IoU 0.6, multi-label) give many more, still valid, detections."""
    dets, _, _ = _run_reference_model("000000000036", 320, PostprocessConfig(0.001, 0.6, multi_label=True))
    assert 50 <= len(dets) <= 300
    assert dets.confidence.min() > 0.001
