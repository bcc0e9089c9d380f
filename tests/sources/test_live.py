"""The live reader thread, driven by a REAL cv2.VideoCapture on a real video, wrapped in a fault injector.

Each capture the factory makes (a reconnect makes a new one) shares one `Faults` plan keyed by the global
read number, so a drop, a stall or a dead stream happens at a known point of the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgedet.errors import SourceError
from edgedet.sources import LiveSource, Source, SourceConfig, open_source
from edgedet.types import Frame


def fast(**kwargs: Any) -> SourceConfig:
    """Short backoffs so each test's outage lasts a fraction of a second."""
    return SourceConfig(reconnect_backoff_s=0.05, reconnect_backoff_max_s=0.2, **kwargs)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-frame 96x64 mp4 whose frame k has mean value ~ 5k (so frames are distinguishable)."""
    path = tmp_path_factory.mktemp("live") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25, (96, 64))
    assert writer.isOpened()
    for k in range(40):
        writer.write(np.full((64, 96, 3), 5 * k, np.uint8))
    writer.release()
    return path


class Faults:
    """What goes wrong, and when. plan: global read number -> ("drop", s) | ("block", s) | ("dead", mode)."""

    def __init__(self, path: Path, period_s: float, plan: dict[int, tuple[str, Any]]) -> None:
        self.path = path
        self.period_s = period_s
        self.plan = plan
        self.reads = 0
        self.opens = 0
        self.down_until = 0.0  # drop: reads and opens fail until then
        self.dead: str | None = None  # "fail": opens fail; "hang": opens hang
        self.open_delay_s = 0.0  # every open takes this long (connect + probe over a slow link)
        self.hang_opens = 0  # this many first opens hang until teardown
        self.unblock = threading.Event()  # set at teardown: every stuck call returns
        self.lock = threading.Lock()

    def factory(self) -> FaultyCapture:
        return FaultyCapture(self)


class FaultyCapture:
    def __init__(self, faults: Faults) -> None:
        self.f = faults
        with faults.lock:
            faults.opens += 1
            hang = faults.dead == "hang" or faults.opens <= faults.hang_opens
        if hang:
            faults.unblock.wait()
        faults.unblock.wait(faults.open_delay_s)
        self.cap: cv2.VideoCapture | None = None
        if faults.dead is None and time.monotonic() >= faults.down_until:
            self.cap = cv2.VideoCapture(str(faults.path))

    def isOpened(self) -> bool:
        return self.cap is not None and self.cap.isOpened()

    def read(self) -> tuple[bool, Any]:
        f = self.f
        assert self.cap is not None
        if f.dead is not None or time.monotonic() < f.down_until:
            if f.dead is not None:
                f.unblock.wait()  # a dead server: the read never comes back
            return False, None
        with f.lock:
            n = f.reads
            f.reads += 1
        action, arg = f.plan.get(n, ("ok", None))
        if action == "drop":
            f.down_until = time.monotonic() + arg
            return False, None
        if action == "dead":
            f.dead = arg
            f.unblock.wait()
            return False, None
        if action == "block":
            f.unblock.wait(arg)  # stuck inside read() longer than the stall timeout, then a frame after all
        if action == "buffered":  # handed over at once from the decoder's buffer, as after a connect
            pass
        elif action == "preempted":  # a buffered frame, but the reader thread lost its core for a moment
            time.sleep(arg)
        else:
            time.sleep(f.period_s)  # the camera's frame period
        ok, image = self.cap.read()
        if not ok:  # end of the clip: start again, as a camera would keep producing
            self.cap.release()
            self.cap = cv2.VideoCapture(str(f.path))
            ok, image = self.cap.read()
        return ok, image

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()


@pytest.fixture
def faults_for(video: Path) -> Iterator[Any]:
    made: list[Faults] = []

    def make(period_s: float = 0.005, plan: dict[int, tuple[str, Any]] | None = None) -> Faults:
        made.append(Faults(video, period_s, plan or {}))
        return made[-1]

    yield make
    for f in made:
        f.unblock.set()


def consume(source: Source, n: int, delay_s: float = 0.0) -> list[tuple[Frame, float]]:
    """Take n frames, noting when each arrived; `delay_s` simulates a slow consumer."""
    out = []
    for frame in source:
        out.append((frame, time.monotonic()))
        if len(out) == n:
            break
        if delay_s:
            time.sleep(delay_s)
    return out


def assert_stream_sane(got: list[tuple[Frame, float]]) -> None:
    frames = [f for f, _ in got]
    assert [f.index for f in frames] == list(range(len(frames)))
    src = np.array([f.source_index for f in frames])
    assert np.all(np.diff(src) > 0), "a frame was delivered twice or out of order"
    ts = np.array([f.timestamp_s for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert all(f.image.shape == (64, 96, 3) and f.image.dtype == np.uint8 for f in frames)
    # a frame is never delivered before it was captured
    assert all(f.timestamp_s <= t for f, t in got)


def test_healthy_stream_delivers_fresh_frames(faults_for: Any) -> None:
    f = faults_for(period_s=0.005)
    with LiveSource(f.factory, "fake-cam", fast(stall_timeout_s=0.5, give_up_s=3)) as src:
        got = consume(src, 30)
        stats = src.stats()
    assert_stream_sane(got)
    assert src.is_live
    assert stats.delivered == 30 and stats.reconnects == 0 and stats.stalls == 0 and stats.read_failures == 0
    assert stats.frames_read - 1 <= stats.delivered + stats.dropped <= stats.frames_read


def test_drop_reconnects_with_backoff_and_frames_resume(faults_for: Any) -> None:
    f = faults_for(period_s=0.005, plan={20: ("drop", 0.4)})
    cfg = fast(stall_timeout_s=0.5, give_up_s=5)
    with LiveSource(f.factory, "fake-cam", cfg) as src:
        got = consume(src, 60)
        stats = src.stats()
    assert_stream_sane(got)
    ts = np.array([fr.timestamp_s for fr, _ in got])
    gaps = np.diff(ts)
    assert 0.38 <= gaps.max() < 0.4 + 0.2 + 0.5  # the outage, plus at most one backoff step and an open
    assert int(np.argmax(gaps)) >= 15  # frames before the outage, and 40+ after it
    # backoff 0.05 -> 0.1 -> 0.2 during a 0.4 s outage: 2-4 failed reopens, then one that works
    assert 2 <= stats.reconnects <= 6 and f.opens == stats.reconnects + 1
    assert stats.read_failures == stats.reconnects and stats.stalls == 0
    assert 0.38 <= stats.downtime_s <= gaps.max() + 0.01
    # the gap hid roughly downtime x (the frame rate measured before it) frames
    k = int(np.argmax(gaps))
    rate = k / (ts[k] - ts[0])
    assert 0.5 * stats.downtime_s * rate <= stats.lost_during_gaps <= 2.0 * stats.downtime_s * rate
    assert "open failed" in stats.last_error or "read failed" in stats.last_error


def test_stall_abandons_blocked_reader_and_consumer_wait_stays_bounded(faults_for: Any) -> None:
    block_s, stall_s = 3.0, 0.3
    f = faults_for(period_s=0.005, plan={20: ("block", block_s)})
    cfg = fast(stall_timeout_s=stall_s, give_up_s=5)
    with LiveSource(f.factory, "fake-cam", cfg) as src:
        got = consume(src, 50)
        stats = src.stats()
        assert stats.abandoned_readers == 1  # still inside read(), blocked
        f.unblock.set()
        deadline = time.monotonic() + 2
        while src.stats().abandoned_readers and time.monotonic() < deadline:
            time.sleep(0.01)
        assert src.stats().abandoned_readers == 0  # came back, saw it was abandoned, released its capture
    assert_stream_sane(got)
    arrivals = np.array([t for _, t in got])
    longest_wait = np.diff(arrivals).max()
    # stall detection + first backoff + reopen, not the 3 s the read was blocked
    assert stall_s <= longest_wait < stall_s + 0.05 + 0.6
    assert stats.stalls == 1 and stats.reconnects == 1 and stats.read_failures == 0
    assert "read stalled" in stats.last_error
    assert stats.downtime_s >= stall_s


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_dead_stream_gives_up_with_source_error_in_time(faults_for: Any, mode: str) -> None:
    give_up_s = 0.8
    f = faults_for(period_s=0.005, plan={10: ("dead", mode)})
    cfg = fast(stall_timeout_s=0.2, give_up_s=give_up_s)
    src = LiveSource(f.factory, "rtsp://cam.local/live", cfg, hint="check the camera")
    last = time.monotonic()
    with pytest.raises(SourceError) as err:
        for _ in src:
            last = time.monotonic()
    waited = time.monotonic() - last
    src.close()
    assert give_up_s - 0.05 <= waited < give_up_s + 0.6
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("rtsp://cam.local/live: no frame for") and msg.endswith("check the camera")
    stats = src.stats()
    assert stats.stalls >= 1 and stats.reconnects >= 1 and stats.delivered <= 10


def test_newest_frame_wins_keeps_age_bounded_and_counts_drops(faults_for: Any) -> None:
    f = faults_for(period_s=0.002)
    with LiveSource(f.factory, "fake-cam", fast(stall_timeout_s=1, give_up_s=5)) as src:
        got = consume(src, 25, delay_s=0.03)  # consumer ~10x slower than the camera
        stats = src.stats()
    assert_stream_sane(got)
    ages = np.array([t - fr.timestamp_s for fr, t in got])
    # a queue would make the 25th frame ~25 * 30 ms = 0.7 s old; newest-wins keeps it near one camera period
    assert ages.max() < 0.1
    assert ages[-5:].mean() < ages[:5].mean() + 0.02  # age does not creep up
    src_index = np.array([fr.source_index for fr, _ in got])
    jumps = np.diff(src_index)
    assert jumps.mean() > 2  # frames overwritten between deliveries show as source_index jumps
    # dropped = overwritten before the first delivery + between deliveries + after the last one
    overwritten = int(src_index[0] + (jumps - 1).sum())
    assert overwritten <= stats.dropped <= overwritten + stats.frames_read - 1 - int(src_index[-1])
    # every read frame was delivered, dropped, or is the one still waiting in the slot
    assert stats.frames_read - 1 <= stats.delivered + stats.dropped <= stats.frames_read


def test_slow_open_is_not_a_stall(faults_for: Any) -> None:
    f = faults_for()
    f.open_delay_s = 0.4  # longer than the stall timeout, shorter than the open timeout
    with LiveSource(
        f.factory, "slow-link", fast(stall_timeout_s=0.2, open_timeout_s=1.0, give_up_s=5)
    ) as src:
        got = consume(src, 10)
        stats = src.stats()
    assert_stream_sane(got)
    assert (stats.stalls, stats.reconnects, f.opens) == (0, 0, 1)


def test_hung_open_is_abandoned_and_retried(faults_for: Any) -> None:
    f = faults_for()
    f.hang_opens = 1
    t = time.monotonic()
    with LiveSource(
        f.factory, "hung-open", fast(stall_timeout_s=0.2, open_timeout_s=0.3, give_up_s=5)
    ) as src:
        opened_s = time.monotonic() - t
        got = consume(src, 10)
        stats = src.stats()
        assert stats.abandoned_readers == 1  # still stuck in the first open
    assert 0.3 <= opened_s < 0.3 + 0.05 + 0.5  # open timeout + first backoff + a real open
    assert_stream_sane(got)
    assert (stats.stalls, stats.reconnects, f.opens) == (1, 1, 2)
    assert stats.last_error.startswith("open stalled for 0.3s")
    assert stats.downtime_s == 0.0  # no frame had flowed yet: waiting for the first is not downtime


def test_max_frames_ends_live_iteration(faults_for: Any) -> None:
    f = faults_for()
    with LiveSource(f.factory, "fake-cam", fast(max_frames=7, stall_timeout_s=1, give_up_s=5)) as src:
        assert [fr.index for fr in src] == list(range(7))


@pytest.mark.parametrize(
    ("factory", "last_error"),
    [
        (lambda: cv2.VideoCapture("/nonexistent/clip.mp4"), "open failed"),
        (lambda: 1 / 0, "open failed: division by zero"),
    ],
)
def test_first_open_that_never_succeeds_is_retried_until_give_up(
    factory: Any, last_error: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def counting() -> Any:
        calls.append(time.monotonic())
        return factory()

    t = time.monotonic()
    with caplog.at_level("DEBUG", logger="edgedet.sources.live"), pytest.raises(SourceError) as err:
        LiveSource(counting, "cam-x", fast(stall_timeout_s=0.5, give_up_s=1.5), hint="check the camera")
    took = time.monotonic() - t
    assert 1.5 <= took < 1.5 + 0.5  # retried for give_up_s, not one attempt, not the open timeout
    # backoff 0.05, 0.1, 0.2, 0.2, ...: about 8 attempts in 1.5 s, the same schedule as a reopen
    assert 5 <= len(calls) <= 12
    gaps = np.diff(calls)
    assert gaps[0] >= 0.05 and gaps[2] >= 0.2
    msg = str(err.value)
    assert msg.startswith(f"could not open cam-x within 1.5s ({len(calls)} attempts; last error: {last_error})")
    assert msg.endswith(": check the camera")
    # said once what it waits for (warning); later attempts only at debug level
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"cam-x is not available yet ({last_error}); waiting for it, retrying with backoff for up to 1.5s"
    ]


def test_first_open_retries_until_the_camera_appears(faults_for: Any) -> None:
    f = faults_for()
    f.down_until = time.monotonic() + 0.6  # opens fail until then (the camera is not up yet)
    t = time.monotonic()
    with LiveSource(f.factory, "late-cam", fast(stall_timeout_s=1, give_up_s=5)) as src:
        opened_s = time.monotonic() - t
        got = consume(src, 5)
        stats = src.stats()
    assert 0.6 <= opened_s < 0.6 + 0.2 + 0.5  # the open after the camera appeared: one backoff step + open
    assert_stream_sane(got)
    assert f.opens >= 4  # 0.05 + 0.1 + 0.2 + 0.2 ... before 0.6 s
    assert stats.reconnects == f.opens - 1
    assert stats.downtime_s == 0.0  # waiting for the first frame is not downtime


def test_close_returns_promptly_while_reader_is_blocked(faults_for: Any) -> None:
    f = faults_for(plan={5: ("block", 10.0)})
    src = LiveSource(f.factory, "fake-cam", fast(stall_timeout_s=2, give_up_s=5))
    consume(src, 3)
    time.sleep(0.1)  # the reader is now blocked inside read()
    t = time.monotonic()
    src.close()
    assert time.monotonic() - t < 1.5
    assert list(src) == []  # a closed source yields nothing


def test_live_synthetic_source_drops_for_a_slow_consumer() -> None:
    with open_source("synthetic:160x120@200,live", SourceConfig(max_frames=12)) as src:
        assert src.is_live and src.fps == 200
        got = consume(src, 12, delay_s=0.03)
        stats = src.stats()
    jumps = np.diff([fr.source_index for fr, _ in got])
    assert np.all(jumps >= 1) and jumps.mean() > 1.5  # 30 ms consumer, 5 ms camera
    assert stats.dropped > 0 and stats.delivered == 12
    assert got[0][0].image.shape == (120, 160, 3)


def test_connect_burst_is_dropped_even_when_one_read_in_it_is_slow(faults_for: Any) -> None:
    """After a connect the decoder hands over its buffered frames at once; a busy CPU can make one of those reads
    as slow as a live frame. The burst must still be dropped whole: its frames carry no real capture time."""
    plan: dict[int, tuple[str, Any]] = {i: ("buffered", None) for i in range(12)}
    plan[5] = ("preempted", 0.06)
    f = faults_for(period_s=0.04, plan=plan)
    with LiveSource(f.factory, "fake-cam", fast(stall_timeout_s=1.0, give_up_s=5)) as src:
        got = consume(src, 8)
        stats = src.stats()
    assert_stream_sane(got)
    src_idx = [fr.source_index for fr, _ in got]
    assert src_idx[0] >= 12, src_idx  # nothing of the burst delivered
    ts = np.array([fr.timestamp_s for fr, _ in got])
    assert np.all(np.diff(ts) >= 0.5 * 0.04 * np.diff(src_idx)), np.diff(ts)
    assert stats.dropped >= 12
