"""The live-replay simulation: its schedule by hand, its equivalence with the offline replay, and its policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.errors import ConfigError
from edgedet.eval.realtime import simulate_realtime
from edgedet.motchallenge import MotRows, SeqInfo, read_seqinfo
from edgedet.scheduler import TargetFps
from edgedet.tracking.replay import track_sequence


def one_walker(n: int, fps: float = 10.0) -> tuple[MotRows, SeqInfo]:
    """One person walking right 5 px per frame, detected on every frame."""
    f = np.arange(1, n + 1)
    xywh = np.c_[10.0 + 5 * (f - 1), np.full(n, 20.0), np.full(n, 30.0), np.full(n, 60.0)]
    return MotRows(f.astype(np.int64), np.full(n, -1, np.int64), xywh, np.full(n, 0.9)), SeqInfo(
        "walker", fps, n, 640, 480
    )


@pytest.mark.parametrize(
    ("latency_ms", "kinds", "ages"),
    [
        # 100 ms per frame; a detector frame costs latency + 1 ms of tracking
        (0.0, "DDDDDDDDDD", [1] * 10),
        (99.0, "DDDDDDDDDD", [100] * 10),
        # 150 ms: runs on 1 (0-150), 2 (150-300), 4 (300-450), 5 (450-600), 7, 8, 10; 3, 6, 9 arrive while busy
        # and are superseded; frame 3 is predicted when the loop frees at 300 ms (age 100), frame 2 waited 50 ms
        (149.0, "DDmDDmDDmD", [150, 200, 100, 150, 200, 100, 150, 200, 100, 150]),
        # 200 ms: every other frame; at the end frame 10 is the newest when the run on 9 ends (1000 ms)
        (199.0, "DmDmDmDmDD", [200, 100] * 4 + [200, 300]),
    ],
)
def test_schedule_by_hand(latency_ms: float, kinds: str, ages: list[float]) -> None:
    dets, info = one_walker(10)
    res = simulate_realtime(dets, info, latency_ms=latency_ms, track_ms=1.0)
    got = "".join({"detect": "D", "missed": "m", "track": "T", "dropped": "x"}[k] for k in res.frame_kind)
    assert got == kinds
    np.testing.assert_allclose(res.age_ms, ages, atol=1e-6)
    assert res.detector_frames == kinds.count("D")


def test_drop_policy_writes_nothing_for_missed_frames() -> None:
    dets, info = one_walker(10)
    res = simulate_realtime(dets, info, latency_ms=149.0, missed="drop")
    assert [k for k in res.frame_kind] == ["detect", "detect", "dropped"] * 3 + ["detect"]
    assert set(res.rows.frame.tolist()) <= {1, 2, 4, 5, 7, 8, 10}
    assert np.isnan(res.age_ms[[2, 5, 8]]).all()
    predicted = simulate_realtime(dets, info, latency_ms=149.0, missed="predict")
    # same detector frames, so the tracker rows on processed frames are the same
    keep = np.isin(predicted.rows.frame, res.rows.frame)
    np.testing.assert_array_equal(predicted.rows.to_array()[keep], res.rows.to_array())


def test_target_fps_uses_the_real_scheduler_and_processes_every_frame() -> None:
    dets, info = one_walker(60, fps=25.0)  # 40 ms per frame
    res = simulate_realtime(dets, info, latency_ms=99.0, target_fps=25.0, track_ms=1.0, missed="drop")
    # TargetFps: d = 100 ms, t = 1 ms, budget 40 ms -> N = ceil(99 / 39) = 3 once both are measured
    ref = TargetFps(25.0)
    ref.record(True, 100.0)
    ref.record(False, 1.0)
    assert ref.interval == 3
    assert res.intervals[-1] == 3
    every = simulate_realtime(dets, info, latency_ms=99.0, missed="drop")
    assert res.missed_frames < every.missed_frames
    assert res.achieved_fps > every.achieved_fps
    assert res.achieved_fps == pytest.approx((res.detector_frames + res.track_only_frames) / res.loop_s)


def test_equals_offline_replay_when_the_detector_keeps_up() -> None:
    root = shared_path("mot", "TUD-Stadtmitte")
    info = read_seqinfo(root / "seqinfo.ini")  # 25 fps: 40 ms per frame
    offline = track_sequence(root / "det.txt", info, detect_every=1)
    for latency in (0.0, 20.0, 39.0):
        res = simulate_realtime(root / "det.txt", info, latency_ms=latency, track_ms=1.0)
        np.testing.assert_array_equal(res.rows.to_array(), offline.to_array())
        assert res.missed_frames == 0


@pytest.mark.parametrize("k", [2, 3, 4])
def test_k_frame_latency_equals_detect_every_k(k: int) -> None:
    root = shared_path("mot", "TUD-Stadtmitte")
    info = read_seqinfo(root / "seqinfo.ini")
    res = simulate_realtime(root / "det.txt", info, latency_ms=40.0 * k - 1.0, track_ms=1.0)
    offline = track_sequence(root / "det.txt", info, detect_every=k)
    n = info.seq_length
    a, b = res.rows.to_array(), offline.to_array()
    # near the end the newest frame is the sequence's last one sooner than every k-th
    np.testing.assert_array_equal(a[a[:, 0] <= n - k], b[b[:, 0] <= n - k])
    assert res.detector_frames in ((n + k - 1) // k, (n + k - 1) // k + 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latency_ms": -1.0}, "latency-ms"),
        ({"latency_ms": float("nan")}, "latency-ms"),
        ({"latency_ms": 10.0, "track_ms": 0.0}, "track time"),
        ({"latency_ms": 10.0, "missed": "skip"}, "missed-frame policy"),
        ({"latency_ms": 10.0, "detect_every": 2, "target_fps": 30.0}, "only one"),
    ],
)
def test_bad_options(kwargs: dict[str, float | str], match: str) -> None:
    dets, info = one_walker(3)
    with pytest.raises(ConfigError, match=match):
        simulate_realtime(dets, info, **kwargs)  # type: ignore[arg-type]


def test_detections_beyond_the_sequence_are_refused(tmp_path: Path) -> None:
    dets, _ = one_walker(5)
    from edgedet.errors import DataError

    with pytest.raises(DataError, match="beyond seqLength"):
        simulate_realtime(dets, SeqInfo("short", 10.0, 3, 640, 480), latency_ms=0.0)
