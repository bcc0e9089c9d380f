"""Decode + NMS appended to the graph (for `edgedet export triton --nms`): the same detections as the host."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import shared_path
from tests.helpers.batch_model import brightness_model

from edgedet import demo
from edgedet.convert.server_nms import add_server_nms
from edgedet.datasets import sample_frames
from edgedet.detector import open_detector
from edgedet.errors import ConfigError
from edgedet.postprocess import PostprocessConfig


def _same(host, server, images) -> int:
    n = 0
    for img in images:
        a, b = host(img), server(img)
        assert len(a) == len(b)
        assert np.array_equal(a.class_id, b.class_id)
        assert np.allclose(a.xyxy, b.xyxy, atol=1e-3) and np.allclose(a.confidence, b.confidence, atol=1e-6)
        n += len(a)
    return n


def test_demo_model_server_nms_equals_host_postprocess(tmp_path: Path) -> None:
    out = add_server_nms(demo.model_path(), tmp_path / "nms.onnx")
    with open_detector(demo.model_path()) as host, open_detector(out) as server:
        assert server.spec.output_format == "end2end" and server.backend.output_shapes == [(1, "K", 6)]
        assert _same(host, server, sample_frames(8, (384, 640))) > 20  # real detections were compared


def test_yolov5n_on_coco_images_with_other_thresholds(tmp_path: Path) -> None:
    model = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    folder = shared_path("coco128", "images", "train2017")
    out = add_server_nms(model, tmp_path / "nms.onnx", conf=0.1, iou=0.6, max_det=50)
    images = [cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))[:12]]
    cfg = PostprocessConfig(conf_threshold=0.1, iou_threshold=0.6, max_det=50)
    with open_detector(model, postprocess=cfg) as host, open_detector(out, postprocess=cfg) as server:
        assert _same(host, server, images) > 50


def test_refused_where_it_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a batch-1 model"):
        add_server_nms(brightness_model(tmp_path / "dyn.onnx"), tmp_path / "x.onnx")
    nms = add_server_nms(demo.model_path(), tmp_path / "nms.onnx")
    with pytest.raises(ConfigError, match="already end2end"):
        add_server_nms(nms, tmp_path / "again.onnx")
