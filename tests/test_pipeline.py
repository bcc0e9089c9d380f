"""The whole loop, built from options the way `edgedet run` builds it, on real files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from tests.conftest import shared_path
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.backends.fake import FakeBackend
from edgedet.config import RunConfig
from edgedet.detector import Detector
from edgedet.pipeline import Pipeline, build_pipeline
from edgedet.postprocess import PostprocessConfig
from edgedet.scheduler import EveryN
from edgedet.sources import SourceConfig, open_source
from edgedet.spec import ModelSpec
from edgedet.tracking import SortTracker, TrackerConfig

NAMES = "{0: 'car', 1: 'person'}"


def _one_box_model(tmp_path, input_hw=(64, 64)):
    # one car centred at (32, 32) of the input, 16x8 px
    raw = yolov5_raw(np.array([[32, 32, 16, 8]]), np.array([0.9]), np.array([[1.0, 0.0]]))
    return constant_model(tmp_path / "m.onnx", [raw], input_hw=input_hw, metadata={"names": NAMES})


def _write_images(folder, n, hw=(128, 256)):
    folder.mkdir()
    for i in range(n):
        img = np.full((*hw, 3), 40 + i, np.uint8)
        cv2.imwrite(str(folder / f"{i + 10:06d}.jpg"), img)


def test_image_folder_end_to_end_with_every_output(tmp_path):
    _write_images(tmp_path / "imgs", 6)
    cfg = RunConfig(
        source=str(tmp_path / "imgs"),
        model=str(_one_box_model(tmp_path)),
        save_mot=str(tmp_path / "out" / "t.txt"),
        save_json=str(tmp_path / "out" / "d.jsonl"),
        save_coco=str(tmp_path / "out" / "c.json"),
        save_video=str(tmp_path / "out" / "v.mp4"),
        track_min_hits=1,
    )
    pipeline = build_pipeline(cfg)
    assert pipeline.cmc is None  # --cmc auto: off for files (on for live sources)
    summary = pipeline.run()
    assert summary.frames == 6 and summary.detector_runs == 6 and summary.track_only_frames == 0
    # The 64x64 input letterboxes a 128x256 frame at scale 0.25 with 16 px of padding on top and bottom:
    # input box (24, 28)-(40, 36) maps back to frame (96, 48)-(160, 80).
    lines = [json.loads(ln) for ln in (tmp_path / "out" / "d.jsonl").read_text().splitlines()]
    assert len(lines) == 6
    det = lines[0]["detections"][0]
    np.testing.assert_allclose(det["xyxy"], [96, 48, 160, 80], atol=1e-3)
    assert det["class_name"] == "car" and det["track_id"] == 1
    coco = json.loads((tmp_path / "out" / "c.json").read_text())
    assert sorted({r["image_id"] for r in coco}) == list(range(10, 16))  # numeric file stems
    np.testing.assert_allclose(coco[0]["bbox"], [96, 48, 64, 32], atol=1e-2)
    mot = np.loadtxt(tmp_path / "out" / "t.txt", delimiter=",", ndmin=2)
    assert mot.shape == (6, 10) and set(mot[:, 1]) == {1.0}
    np.testing.assert_allclose(mot[0, 2:6], [97, 49, 64, 32], atol=1e-2)  # MOTChallenge is 1-based
    cap = cv2.VideoCapture(str(tmp_path / "out" / "v.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6


def test_skipped_frames_are_predicted_by_the_tracker(tmp_path):
    spec = ModelSpec(input_hw=(64, 64), output_format="yolov5", class_names=("car", "person"))
    moving = []

    def outputs(_tensor, call):
        # a box moving right 2 px per detector call, in input pixels
        moving.append(call)
        return [yolov5_raw(np.array([[20 + 2 * call, 32, 10, 10]]), np.array([0.9]), np.array([[1.0, 0.0]]))]

    backend = FakeBackend(spec, outputs, [(1, 64, 7)])
    source = open_source("synthetic:64x64@30", SourceConfig(max_frames=12))
    pipe = Pipeline(
        source,
        Detector(backend, PostprocessConfig()),
        sinks=[],
        tracker=SortTracker(TrackerConfig(min_hits=1)),
        scheduler=EveryN(3),
    )
    summary = pipe.run()
    assert summary.frames == 12
    assert summary.detector_runs == 4 and backend.calls == 4
    assert summary.track_only_frames == 8
    assert set(summary.latency) >= {"preprocess", "infer", "postprocess", "track", "sinks", "frame"}


def test_no_track_cannot_skip():
    from edgedet.errors import ConfigError

    with pytest.raises(ConfigError, match="--no-track"):
        build_pipeline(RunConfig(source="synthetic", model="x.onnx", track=False, detect_every=2))


@pytest.mark.slow
def test_real_model_on_real_video(tmp_path):
    video = shared_path("video", "people_indoor_640x368.mp4")
    model = shared_path("models", "reference_onnx", "yolov5n_320.onnx")
    cfg = RunConfig(
        source=str(video),
        model=str(model),
        detect_every=2,
        threads=1,
        save_mot=str(tmp_path / "t.txt"),
        classes=(0,),
    )
    summary = build_pipeline(cfg).run()
    assert summary.frames == 156 and summary.detector_runs == 78
    mot = np.loadtxt(tmp_path / "t.txt", delimiter=",", ndmin=2)
    # three people dance in the clip (two of them cross, which may cost an identity switch)
    ids = np.unique(mot[:, 1])
    per_frame = np.bincount(mot[:, 0].astype(int))[1:]
    assert np.median(per_frame) == 3
    assert 3 <= len(ids) <= 5
    # skipped frames are reported too (predicted boxes): nearly every frame has rows
    assert (per_frame > 0).sum() >= 150


def test_tracker_boxes_are_clipped_to_the_frame():
    from edgedet.tracking import inside_frame
    from edgedet.types import Detections

    d = Detections(
        np.array([[-5, 10, 20, 30], [300, 10, 330, 40], [10, 90, 30, 174]]), [0.9] * 3, [0] * 3, [1, 2, 3]
    )
    got = inside_frame(d, (120, 160))
    np.testing.assert_array_equal(got.track_id, [1, 3])  # track 2 lies wholly outside the 160 px width
    np.testing.assert_allclose(got.xyxy, [[0, 10, 20, 30], [10, 90, 30, 120]])
