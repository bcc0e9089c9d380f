from __future__ import annotations

import pytest

from edgedet.errors import ConfigError
from edgedet.scheduler import EveryN, TargetFps, make_scheduler


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_every_n_runs_first_frame_and_every_nth(n):
    s = EveryN(n)
    got = [s.should_detect(i / 30) for i in range(3 * n + 1)]
    assert got == [i % n == 0 for i in range(3 * n + 1)]


@pytest.mark.parametrize(
    ("detect_ms", "track_ms", "fps", "expected"),
    [
        (10.0, 1.0, 30, 1),  # fits the 33 ms budget: every frame
        (50.0, 2.0, 30, 2),  # (50 + 2) / 2 = 26 ms <= 33
        (100.0, 2.0, 30, 4),  # ceil((100-2)/(33.3-2)) = 4: (100 + 3*2) / 4 = 26.5 ms
        (100.0, 40.0, 30, 10),  # track-only frames alone miss the target: clamp to max
    ],
)
def test_target_fps_interval_from_measured_times(detect_ms, track_ms, fps, expected):
    s = TargetFps(fps, max_interval=10, alpha=1.0)
    s.record(True, detect_ms)
    s.record(False, track_ms)
    assert s.interval == expected
    n = s.interval
    if expected < 10:
        # the chosen interval holds the target, and one less would not
        assert (detect_ms + (n - 1) * track_ms) / n <= 1000 / fps + 1e-9
        if n > 1:
            assert (detect_ms + (n - 2) * track_ms) / (n - 1) > 1000 / fps


def test_target_fps_adapts_in_a_simulated_run():
    s = TargetFps(30, alpha=0.2)
    detects = 0
    total_ms = 0.0
    for i in range(300):
        d = s.should_detect(i / 30)
        ms = 60.0 if d else 3.0
        detects += d
        total_ms += ms
        s.record(d, ms)
    assert 300 / (total_ms / 1000) >= 28  # holds ~30 FPS
    assert detects == 150  # interval 2 holds it: (60 + 3) / 2 = 31.5 ms per frame


def test_make_scheduler_conflicts():
    with pytest.raises(ConfigError, match="only one"):
        make_scheduler(detect_every=2, target_fps=30)
    with pytest.raises(ConfigError):
        EveryN(0)
    with pytest.raises(ConfigError):
        TargetFps(0)
