"""A real RTSP server on loopback (GStreamer's, run by the system python) read through OpenCV's FFmpeg backend.

Skipped where Debian's GStreamer RTSP server is not installed:
apt install gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-ugly gstreamer1.0-rtsp
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgedet.errors import SourceError
from edgedet.sources import Source, SourceConfig, open_source

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_server.py")
PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay')"
)


def rtsp_server_available() -> bool:
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Server:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[str] | None = None
        self.url = f"rtsp://127.0.0.1:{self.port}/test"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def server() -> Iterator[Server]:
    if not rtsp_server_available():
        pytest.skip(
            "GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0, x264enc) not installed for /usr/bin/python3"
        )
    srv = Server()
    srv.start()
    yield srv
    srv.kill()


def take(source: Source, n: int) -> list[tuple[int, float, float]]:
    """(source_index, timestamp_s, arrival) of the next n frames."""
    out = []
    for frame in source:
        assert frame.image.shape == (120, 160, 3)
        out.append((frame.source_index, frame.timestamp_s, time.monotonic()))
        if len(out) == n:
            break
    return out


def first_after_gap(got: list[tuple[int, float, float]], gap_s: float = 0.5) -> float:
    """Capture time of the first frame that follows a gap of more than gap_s."""
    ts = np.array([g[1] for g in got])
    k = int(np.argmax(np.diff(ts) > gap_s))
    assert ts[k + 1] - ts[k] > gap_s, "no gap in the frames"
    return float(ts[k + 1])


CFG = SourceConfig(reconnect_backoff_s=0.2, reconnect_backoff_max_s=1.0, stall_timeout_s=1.0, give_up_s=10.0)


def test_server_restart_reconnects_and_frames_resume(server: Server) -> None:
    with open_source(server.url, CFG) as src:
        assert src.is_live and src.fps == 30.0
        before = take(src, 15)
        server.kill()
        killed = time.monotonic()
        threading.Timer(1.0, server.start).start()
        after = take(src, 15)
        stats = src.stats()
    got = before + after
    assert np.all(np.diff([g[0] for g in got]) > 0) and np.all(np.diff([g[1] for g in got]) > 0)
    resumed = first_after_gap(got) - killed  # frames already buffered when the server died come first
    assert 1.0 < resumed < 1.0 + 1.0 + 3.0  # server down 1 s, then at most one backoff step and a connect
    assert stats.reconnects >= 1 and stats.read_failures >= 1
    assert 1.0 < stats.downtime_s < resumed + 0.1
    # the stream declares 30 fps: the frames it would have sent while we were down
    assert round(stats.downtime_s * 30) - 2 <= stats.lost_during_gaps <= round(stats.downtime_s * 30)


def test_stalled_server_gives_up_at_give_up_s_not_ffmpeg_timeouts(server: Server) -> None:
    give_up_s = 3.0
    cfg = SourceConfig(
        reconnect_backoff_s=0.2, reconnect_backoff_max_s=1.0, stall_timeout_s=1.0, give_up_s=give_up_s
    )
    with open_source(server.url, cfg) as src:
        take(src, 10)
        server.signal(signal.SIGUSR1)  # connection stays up, frames stop
        last = time.monotonic()
        with pytest.raises(SourceError, match=r"^rtsp://127\.0\.0\.1:\d+/test: no frame for 3\.\ds") as err:
            for _ in src:
                last = time.monotonic()
        waited = time.monotonic() - last
        stats = src.stats()
    assert give_up_s - 0.1 < waited < give_up_s + 1.0
    assert stats.stalls >= 1, stats
    assert "stalled" in str(err.value)


def test_stall_then_resume_recovers(server: Server) -> None:
    with open_source(server.url, CFG) as src:
        take(src, 10)
        server.signal(signal.SIGUSR1)
        stalled = time.monotonic()
        threading.Timer(2.5, server.signal, args=(signal.SIGUSR2,)).start()
        after = take(src, 20)
        stats = src.stats()
    assert 2.5 < first_after_gap(after) - stalled < 2.5 + 1.0 + 3.0  # resumed at 2.5 s; backoff + connect
    assert stats.stalls >= 1 and stats.reconnects >= 1


@pytest.fixture
def late_server() -> Iterator[Server]:
    """A server on a free port that is NOT started yet (the test starts it)."""
    if not rtsp_server_available():
        pytest.skip(
            "GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0, x264enc) not installed for /usr/bin/python3"
        )
    srv = Server()
    yield srv
    srv.kill()


def test_server_that_starts_late_is_waited_for(late_server: Server) -> None:
    """The drone case: the service starts before the camera's server; the first open retries like a reopen."""
    t = time.monotonic()
    timer = threading.Timer(2.0, late_server.start)
    timer.start()
    try:
        with open_source(late_server.url, CFG) as src:
            opened_s = time.monotonic() - t
            got = take(src, 10)
            stats = src.stats()
    finally:
        timer.join()
    # up at ~2 s (+ the GStreamer start-up); then at most one backoff step (<= 1 s) and a connect
    assert 2.0 < opened_s < 2.0 + 2.0 + 1.0 + 3.0
    assert np.all(np.diff([g[0] for g in got]) > 0)
    assert stats.reconnects >= 2  # refused attempts before the server came up
    assert stats.downtime_s == 0.0


def test_nothing_listening_gives_up_at_give_up_s(late_server: Server) -> None:
    """A real port with nothing behind it: connection refused on every attempt until give_up_s, then one error."""
    cfg = SourceConfig(reconnect_backoff_s=0.2, reconnect_backoff_max_s=1.0, stall_timeout_s=1.0, give_up_s=3.0)
    t = time.monotonic()
    with pytest.raises(SourceError) as err:
        open_source(late_server.url, cfg)
    took = time.monotonic() - t
    assert 3.0 <= took < 3.0 + 1.0
    assert re.match(
        r"^could not open rtsp://127\.0\.0\.1:\d+/test within 3s \((\d+) attempts; last error: open failed\): ",
        str(err.value),
    )
    attempts = int(re.search(r"\((\d+) attempts", str(err.value)).group(1))  # type: ignore[union-attr]
    assert 3 <= attempts <= 6  # backoff 0.2, 0.4, 0.8, 1.0: about 4-5 attempts in 3 s
