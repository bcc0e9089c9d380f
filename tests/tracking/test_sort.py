"""SortTracker: exact SORT when configured as SORT, lifetimes in seconds, track-only frames, options."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edgedet.errors import ConfigError
from edgedet.tracking.sort import SortTracker, TrackerConfig
from edgedet.types import Detections

REPO = Path(__file__).resolve().parents[2]


def reference_sort() -> ModuleType:
    """benchmarks/bench_tracker.py holds the faithful filterpy-per-track SORT (the benchmark's baseline)."""
    pytest.importorskip("filterpy")
    name = "edgedet_bench_tracker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_tracker.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def dets(
    boxes: np.ndarray | list[list[float]], conf: float | list[float] = 0.9, cls: int | list[int] = 0
) -> Detections:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(
        b, np.broadcast_to(np.asarray(conf, np.float32), len(b)), np.broadcast_to(np.asarray(cls), len(b))
    )


def moving_box(f: int, x0: float = 100.0, vx: float = 4.0) -> list[float]:
    return [x0 + vx * f, 200.0, x0 + vx * f + 40.0, 300.0]


@pytest.mark.parametrize("seed", [0, 1])
def test_configured_as_sort_reproduces_sort_frame_by_frame(seed: int) -> None:
    bench = reference_sort()
    frames = bench.synthetic_scene(25, 120, seed=seed)
    # close objects so that assignment is contested: shrink the canvas
    frames = [np.concatenate([f[:, :4] / 6.0, f[:, 4:]], axis=1) for f in frames]
    ref = bench.ReferenceSort(max_age=1, min_hits=3, iou_threshold=0.3)
    ours = SortTracker(TrackerConfig.sort(30.0))
    for i, f in enumerate(frames):
        r = ref.update(f.copy())
        o = ours.update(Detections(f[:, :4], f[:, 4], np.zeros(len(f), np.int32)), i / 30.0)
        r = r[np.argsort(r[:, 4])]
        order = np.argsort(o.track_id)
        assert o.track_id[order].tolist() == r[:, 4].astype(int).tolist(), f"frame {i}"
        np.testing.assert_allclose(o.xyxy[order], r[:, :4], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(o.confidence[order], r[:, 5], rtol=1e-6)


def test_ids_start_at_one_per_instance_and_reset_restarts_them() -> None:
    a, b = SortTracker(TrackerConfig(min_hits=0)), SortTracker(TrackerConfig(min_hits=0))
    assert a.update(dets([moving_box(0)]), 0.0).track_id.tolist() == [1]
    assert b.update(dets([moving_box(0), [900, 900, 950, 990]]), 0.0).track_id.tolist() == [1, 2]
    a.reset()
    assert a.num_tracks == 0
    assert a.update(dets([[500, 500, 540, 600]]), 0.0).track_id.tolist() == [1]


def test_confirmation_after_min_hits_and_output_fields() -> None:
    tr = SortTracker(TrackerConfig(min_hits=2, nominal_fps=10.0))
    tr.update(dets([moving_box(0)]), 0.0)  # warm-up: frames 1..min_hits report everything
    tr.update(dets([moving_box(1)]), 0.1)
    tr.update(dets([moving_box(2)], conf=0.7, cls=3), 0.2)
    out = tr.update(dets([moving_box(3)], conf=0.6, cls=3), 0.3)
    assert out.track_id.tolist() == [1]
    assert out.confidence.tolist() == pytest.approx([0.6])
    assert out.class_id.tolist() == [3]
    np.testing.assert_allclose(out.xyxy[0], moving_box(3), atol=1.5)
    # a new object after the warm-up is held back until matched min_hits times
    seen = [
        len(tr.update(dets([moving_box(4 + k), [600, 50 + k, 640, 150 + k]]), 0.4 + k / 10)) for k in range(4)
    ]
    assert seen == [1, 1, 2, 2]


@pytest.mark.parametrize("fps", [10.0, 30.0])
def test_lifetime_is_seconds_not_frames(fps: float) -> None:
    """A track unmatched for 0.9 s survives max_age_s = 1.0 at any frame rate; for 1.1 s it is deleted."""
    for gap_s, alive in [(0.9, True), (1.1, False)]:
        tr = SortTracker(TrackerConfig(max_age_s=1.0, min_hits=0, nominal_fps=fps))
        box = np.array([100, 100, 150, 200.0])
        for k in range(3):
            tr.update(dets(box[None]), k / fps)
        t_last = 2 / fps
        n_empty = round(gap_s * fps)
        for k in range(1, n_empty + 1):
            tr.update(Detections.empty(), t_last + k / fps)
        out = tr.update(dets(box[None]), t_last + (n_empty + 1) / fps)
        assert (out.track_id.tolist() == [1]) is alive, (fps, gap_s, out.track_id)


def test_dead_tracks_are_removed_on_a_long_run() -> None:
    """Objects that appear for a while and vanish: the number of tracks held stays bounded."""
    tr = SortTracker(TrackerConfig(max_age_s=0.5, nominal_fps=30.0))
    rng = np.random.default_rng(0)
    held = []
    for f in range(900):
        # 10 objects, each lives 60 frames then a new one takes its slot somewhere else
        slot = np.arange(10)
        gen = (f + slot * 6) // 60
        x = (gen * 97 + slot * 180) % 1800
        boxes = np.stack([x, slot * 100.0, x + 50, slot * 100.0 + 90], axis=1) + rng.normal(0, 0.5, (10, 4))
        tr.update(dets(boxes), f / 30.0)
        held.append(tr.num_tracks)
    assert max(held[300:]) <= 20
    assert tr._next_id > 100  # many tracks were made (and dropped)


def test_predict_frames_report_confirmed_tracks_with_predicted_boxes() -> None:
    tr = SortTracker(TrackerConfig(min_hits=1, nominal_fps=30.0))
    for f in range(0, 20, 2):  # detector every 2nd frame, predict on the others
        tr.update(dets([moving_box(f)]), f / 30.0)
        out = tr.predict((f + 1) / 30.0)
        if f >= 4:
            assert out.track_id.tolist() == [1]
            # the constant-velocity prediction lands on the true position
            np.testing.assert_allclose(out.xyxy[0], moving_box(f + 1), atol=1.0)
    # real time, not call count: a predict 5 frames later moves 5 frames of velocity
    out = tr.predict(23 / 30.0)
    np.testing.assert_allclose(out.xyxy[0], moving_box(23), atol=1.5)


def test_predict_reports_nothing_unconfirmed_and_expires_tracks() -> None:
    tr = SortTracker(TrackerConfig(min_hits=3, max_age_s=0.2, nominal_fps=10.0))
    for k in range(5):
        tr.update(dets([moving_box(k)]), k / 10)
    tr.update(dets([[900, 900, 950, 990]]), 0.5)  # new object, unconfirmed; first one missed
    assert tr.predict(0.6).track_id.tolist() == []  # track 1 missed the last detector frame: not reported
    assert tr.num_tracks == 2
    tr.predict(0.8)
    assert tr.num_tracks == 0  # both unmatched for > 0.2 s


def test_report_lost_s_coasts_confirmed_tracks() -> None:
    for report_lost_s, expect in [(0.0, []), (0.25, [1])]:
        tr = SortTracker(
            TrackerConfig(report_lost_s=report_lost_s, min_hits=1, nominal_fps=10.0, max_age_s=1.0)
        )
        for k in range(4):
            tr.update(dets([moving_box(k)]), k / 10)
        out = tr.update(Detections.empty(), 0.4)
        assert out.track_id.tolist() == expect
        if expect:
            np.testing.assert_allclose(out.xyxy[0], moving_box(4), atol=1.0)


@pytest.mark.parametrize(("second", "expect_id"), [(True, [1]), (False, [])])
def test_second_association_rescues_low_score_detections(second: bool, expect_id: list[int]) -> None:
    cfg = TrackerConfig(
        min_hits=1, score_threshold=0.6, low_score_threshold=0.1, second_association=second, report_lost_s=0.0
    )
    tr = SortTracker(cfg)
    for k in range(4):
        tr.update(dets([moving_box(k)], conf=0.9), k / 30)
    out = tr.update(dets([moving_box(4)], conf=0.3), 4 / 30)  # occluded: the detector is unsure
    assert out.track_id.tolist() == expect_id
    if second:
        assert out.confidence.tolist() == pytest.approx([0.3])
    # a low-score detection never starts a track
    tr2 = SortTracker(cfg)
    tr2.update(dets([moving_box(0)], conf=0.3), 0.0)
    assert tr2.num_tracks == 0


@pytest.mark.parametrize(("class_aware", "same_track"), [(True, False), (False, True)])
def test_class_aware_matching(class_aware: bool, same_track: bool) -> None:
    tr = SortTracker(TrackerConfig(min_hits=0, class_aware=class_aware))
    a = tr.update(dets([moving_box(0)], cls=1), 0.0)
    b = tr.update(dets([moving_box(1)], cls=2), 1 / 30)
    assert (a.track_id.tolist() == b.track_id.tolist()) is same_track


@pytest.mark.parametrize(("use_warp", "same_track"), [(True, True), (False, False)])
def test_warp_compensates_camera_motion(use_warp: bool, same_track: bool) -> None:
    """The camera pans 80 px a frame: boxes jump in pixels; the warp keeps the track."""
    tr = SortTracker(TrackerConfig(min_hits=0, nominal_fps=30.0))
    ids = []
    for f in range(5):
        shift = -80.0 * f
        box = np.array([500 + shift, 200, 560 + shift, 320])
        warp = np.array([[1.0, 0.0, -80.0], [0.0, 1.0, 0.0]]) if (use_warp and f) else None
        ids.append(tr.update(dets(box[None]), f / 30, warp=warp).track_id.tolist())
    assert (ids[-1] == [1]) is same_track


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="iou_threshold"):
        TrackerConfig(iou_threshold=1.5)
    with pytest.raises(ConfigError, match="low_score_threshold"):
        TrackerConfig(second_association=True, score_threshold=0.2, low_score_threshold=0.5)
    tr = SortTracker()
    tr.update(Detections.empty(), 1.0)
    with pytest.raises(ValueError, match="backwards"):
        tr.update(Detections.empty(), 0.5)
