"""Video out against real receivers on loopback: GStreamer (RTP, MPEG-TS/UDP, SRT) and FFmpeg through PyAV
(the .sdp, MPEG-TS/UDP); plus the faults: no receiver, receiver killed and restarted, a slow or dead link."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tests.link.conftest import free_port
from tests.link.framecode import read_stamp, stamp

from edgedet.errors import ConfigError, SinkError
from edgedet.link.urls import parse_stream_url
from edgedet.link.video import (
    StreamOptions,
    VideoStreamer,
    gst_pipeline,
    hardware_encoder_problem,
    opencv_has_gstreamer,
    output_size,
    sdp_text,
    write_sdp,
)

pytest.importorskip("av", reason="PyAV not installed: pip install 'edgedet[link]'")

PYAV = StreamOptions(encoder="pyav", keyint_s=0.5)


def frames(n: int, hw: tuple[int, int] = (384, 640), seed: int = 0) -> list[np.ndarray]:
    """n textured frames (a moving gradient plus noise, so the encoder has real work) with a counter."""
    rng = np.random.default_rng(seed)
    h, w = hw
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        img = np.roll(base, 4 * i, axis=1)
        stamp(img, i)
        out.append(img)
    return out


def send(streamer: VideoStreamer, images: list[np.ndarray], fps: float = 30.0) -> None:
    t0 = time.monotonic()
    for i, img in enumerate(images):
        streamer.submit(img)
        time.sleep(max(0.0, t0 + (i + 1) / fps - time.monotonic()))


@pytest.mark.parametrize(("scheme", "mode", "tail"), [("rtp", "rtp", 0), ("udp", "ts", 2), ("srt", "srt", 2)])
def test_gstreamer_receiver_decodes_every_frame_in_order(receiver, scheme: str, mode: str, tail: int) -> None:
    # MPEG-TS receivers hold the last frames until the next PES/access unit starts (no length in video PES),
    # so over TS the final `tail` frames of a stream stay inside the demuxer/parser; RTP delivers all.
    port = free_port(even=True)
    rx = receiver(mode, port).start()
    sent: list[int] = []
    streamer = VideoStreamer(
        f"{scheme}://127.0.0.1:{port}", PYAV, fps=30, on_sent=lambda img, t: sent.append(read_stamp(img))
    )
    send(streamer, frames(60))
    stats = streamer.close()
    # On a busy machine the encoder may fall behind and skip frames (newest wins): those are counted, and
    # every frame that was sent must arrive.
    assert stats.sent == len(sent) and stats.sent + stats.dropped == 60 and stats.errors == 0
    assert stats.sent >= 45
    # SRT: the relay connects to the listener while the first frames are already on their way, so the
    # receiver starts at the first keyframe after the handshake (keyframes every 0.5 s here).
    skip = 0 if scheme != "srt" else 30
    assert rx.wait_frames(len(sent) - tail - skip, timeout_s=10), rx.codes()
    time.sleep(0.3)
    codes = rx.codes()
    start = sent.index(codes[0])
    assert start <= skip
    assert codes == sent[start : len(sent) - tail]
    w, h = rx.frames[0][1], rx.frames[0][2]
    assert (w, h) == (640, 384)


def test_pyav_reads_the_rtp_stream_through_the_written_sdp(tmp_path: Path) -> None:
    import av

    port = free_port(even=True)
    url = parse_stream_url(f"rtp://127.0.0.1:{port}")
    sdp = write_sdp(url, tmp_path / "run" / "stream.sdp")
    assert f"m=video {port} RTP/AVP 96" in sdp.read_text() and "a=rtpmap:96 H264/90000" in sdp.read_text()
    decoded: list[tuple[int, int]] = []
    opened = threading.Event()

    def read() -> None:
        with av.open(str(sdp), options={"protocol_whitelist": "file,udp,rtp", "fflags": "nobuffer"},
                     timeout=(10.0, 3.0)) as c:  # fmt: skip
            opened.set()
            for frame in c.decode(video=0):
                decoded.append((frame.width, frame.height))
                if len(decoded) >= 40:
                    return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    time.sleep(1.0)  # FFmpeg's RTP demuxer binds the port while probing: let it listen before frames go out
    streamer = VideoStreamer(url, PYAV, fps=30)
    send(streamer, frames(90))
    streamer.close()
    t.join(15)
    # FFmpeg waits for a keyframe with SPS/PPS (every 0.5 s here), so it may skip the first frames.
    assert len(decoded) >= 40, len(decoded)
    assert set(decoded) == {(640, 384)}


def test_pyav_reads_mpegts_over_udp_and_downscale_applies() -> None:
    import av

    port = free_port()
    decoded: list[tuple[int, int]] = []

    def read() -> None:
        with av.open(f"udp://127.0.0.1:{port}?timeout=5000000", format="mpegts", timeout=(10.0, 5.0)) as c:
            for frame in c.decode(video=0):
                decoded.append((frame.width, frame.height))
                if len(decoded) >= 30:
                    return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    time.sleep(0.5)
    streamer = VideoStreamer(
        f"udp://127.0.0.1:{port}", StreamOptions(encoder="pyav", keyint_s=0.5, width=320), fps=30
    )
    send(streamer, frames(60))
    streamer.close()
    t.join(15)
    assert len(decoded) >= 30
    assert set(decoded) == {(320, 192)}


def test_no_receiver_at_all_streams_on_and_counts_nothing_lost() -> None:
    port = free_port(even=True)
    streamer = VideoStreamer(f"rtp://127.0.0.1:{port}", PYAV, fps=30)
    send(streamer, frames(30))
    stats = streamer.close()
    # UDP has no connection to fail: every frame is encoded and sent into the void.
    assert (stats.sent, stats.dropped, stats.errors) == (30, 0, 0)
    assert stats.bytes_sent > 10_000


def test_receiver_killed_mid_run_and_restarted_is_served_again(receiver) -> None:
    port = free_port(even=True)
    rx1 = receiver("rtp", port).start()
    streamer = VideoStreamer(f"rtp://127.0.0.1:{port}", PYAV, fps=30)
    imgs = frames(150)
    send(streamer, imgs[:45])
    assert rx1.wait_frames(40, 10)
    rx1.kill()
    send(streamer, imgs[45:90])  # nobody listening (ICMP port unreachable on loopback)
    rx2 = receiver("rtp", port).start()
    send(streamer, imgs[90:])
    stats = streamer.close()
    assert stats.sent == 150 and stats.errors == 0
    assert rx2.wait_frames(30, 10)
    codes = rx2.codes()
    # The new receiver decodes from the first keyframe (every 15 frames here) after it started, and then all.
    assert 90 <= codes[0] < 90 + 15 + 5, codes[:5]
    assert codes == list(range(codes[0], 150)), codes


class _SlowOutput:
    """A link that takes 50 ms per frame (a congested radio): the frame loop must not notice."""

    def __init__(self, *args: object) -> None:
        self.sent = 0

    def send(self, image: np.ndarray, pts: int) -> int:
        time.sleep(0.05)
        self.sent += 1
        return 1

    def close(self) -> None:
        pass


def test_slow_link_never_blocks_submit_newest_frame_wins_drops_counted() -> None:
    streamer = VideoStreamer("rtp://127.0.0.1:5600", PYAV, output_factory=_SlowOutput)
    worst = 0.0
    for i in range(100):
        t = time.perf_counter()
        streamer.submit(np.full((64, 64, 3), i, np.uint8))
        worst = max(worst, time.perf_counter() - t)
        time.sleep(0.005)
    stats = streamer.close()
    assert worst < 0.02  # a lock swap, never the 50 ms send
    assert stats.submitted == 100
    assert stats.sent + stats.dropped == 100
    assert 5 <= stats.sent <= 20 and stats.dropped_busy >= 80


class _FlakyFactory:
    """Opens fail while `down` is set, like an RTSP server or SRT listener that is not there."""

    def __init__(self) -> None:
        self.down = True
        self.opens = 0
        self.sent = 0

    def __call__(self, *args: object) -> _FlakyFactory:
        if self.down:
            raise OSError("connection refused")
        self.opens += 1
        return self

    def send(self, image: np.ndarray, pts: int) -> int:
        if self.down:
            raise OSError("broken pipe")
        self.sent += 1
        return 1

    def close(self) -> None:
        pass


def test_dead_link_drops_are_counted_and_a_link_that_comes_back_is_served() -> None:
    factory = _FlakyFactory()
    streamer = VideoStreamer("rtsp://127.0.0.1:8554/x", PYAV, output_factory=factory, retry_s=(0.05,))
    for _ in range(20):
        streamer.submit(np.zeros((32, 32, 3), np.uint8))
        time.sleep(0.01)
    assert not streamer.link_up
    factory.down = False
    time.sleep(0.1)
    for _ in range(20):
        streamer.submit(np.zeros((32, 32, 3), np.uint8))
        time.sleep(0.01)
    assert streamer.link_up
    factory.down = True  # dies again mid-stream
    for _ in range(5):
        streamer.submit(np.zeros((32, 32, 3), np.uint8))
        time.sleep(0.01)
    factory.down = False
    time.sleep(0.1)
    for _ in range(10):
        streamer.submit(np.zeros((32, 32, 3), np.uint8))
        time.sleep(0.01)
    stats = streamer.close()
    assert stats.submitted == 55
    assert stats.sent + stats.dropped == 55
    assert stats.dropped_down >= 20  # the first 20 had no link at all
    assert factory.opens == 2 and stats.reconnects == 1
    assert stats.sent == factory.sent >= 20


def test_rtsp_publish_without_server_does_not_stall_and_counts_drops() -> None:
    port = free_port()
    streamer = VideoStreamer(f"rtsp://127.0.0.1:{port}/edgedet", PYAV, fps=30, retry_s=(0.2,))
    t = time.perf_counter()
    send(streamer, frames(30, (96, 128)))
    elapsed = time.perf_counter() - t
    stats = streamer.close()
    assert elapsed < 3.0
    assert stats.sent == 0 and stats.dropped == 30 and stats.errors >= 1


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://1.2.3.4:5600", "unknown scheme"),
        ("rtp://127.0.0.1", "needs a port"),
        ("rtp://127.0.0.1:5601", "even port"),
        ("rtp://:5600", "no host"),
        ("rtsp://127.0.0.1:8554", "stream path"),
        ("udp://127.0.0.1:99999", "Port out of range"),
    ],
)
def test_bad_stream_urls_say_what_and_how(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_stream_url(url)


def test_bad_stream_options_are_refused() -> None:
    for opts, flag in [
        (StreamOptions(keyint_s=0), "--stream-keyint"),
        (StreamOptions(bitrate_kbps=10), "--stream-bitrate"),
        (StreamOptions(width=8), "--stream-width"),
        (StreamOptions(encoder="nvenc"), "--stream-encoder"),
    ]:
        with pytest.raises(ConfigError, match=flag):
            opts.validate()


def test_output_size_downscales_to_even_sides_and_never_upscales() -> None:
    assert output_size((384, 640), None) == (640, 384)
    assert output_size((720, 1280), 640) == (640, 360)
    assert output_size((481, 641), None) == (640, 480)
    assert output_size((384, 640), 1920) == (640, 384)
    assert output_size((1080, 1920), 853) == (852, 480)


def test_sdp_describes_h264_payload_96_on_the_port() -> None:
    text = sdp_text(parse_stream_url("rtp://192.168.1.10:5600"))
    assert text.splitlines() == [
        "v=0", "o=- 0 0 IN IP4 192.168.1.10", "s=edgedet", "c=IN IP4 192.168.1.10", "t=0 0",
        "m=video 5600 RTP/AVP 96", "a=rtpmap:96 H264/90000", "a=fmtp:96 packetization-mode=1",
    ]  # fmt: skip


def test_gstreamer_encoder_is_refused_with_the_reason_where_opencv_has_no_gstreamer() -> None:
    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer")
    assert "no GStreamer" in (hardware_encoder_problem() or "")
    with pytest.raises(SinkError, match="--stream-encoder gstreamer: this OpenCV has no GStreamer"):
        VideoStreamer("rtp://127.0.0.1:5600", StreamOptions(encoder="gstreamer"))


def test_opencv_gstreamer_detection_reads_build_information() -> None:
    assert opencv_has_gstreamer("  Video I/O:\n    GStreamer:                   YES (1.20.3)\n")
    assert not opencv_has_gstreamer("  Video I/O:\n    GStreamer:                   NO\n")
    assert not opencv_has_gstreamer("nothing about it")


@pytest.mark.parametrize(("scheme", "mode"), [("rtp", "rtp"), ("udp", "ts")])
def test_jetson_pipeline_tail_runs_in_real_gstreamer_with_x264_in_place_of_the_hw_encoder(
    receiver, scheme: str, mode: str
) -> None:
    # The hardware encoder cannot run here (no Jetson; PyPI's OpenCV has no GStreamer). What can be checked is
    # that the rest of the pipeline text OpenCV would get is valid GStreamer that a receiver decodes: replace
    # appsrc by videotestsrc and nvv4l2h264enc (+ nvvidconv) by x264enc, and run it with gst-launch-1.0.
    exe = shutil.which("gst-launch-1.0")
    if exe is None:
        pytest.skip("gst-launch-1.0 not installed (gstreamer1.0-tools)")
    port = free_port(even=True)
    rx = receiver(mode, port).start()
    text = gst_pipeline(
        parse_stream_url(f"{scheme}://127.0.0.1:{port}"), "x264enc tune=zerolatency key-int-max=10"
    )
    assert text.startswith("appsrc ")
    text = text.replace(
        "appsrc is-live=true do-timestamp=true",
        "videotestsrc num-buffers=60 is-live=true ! video/x-raw,width=320,height=240,framerate=30/1",
    )
    out = subprocess.run([exe, "-q", *text.split()], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr[-1000:]
    assert rx.wait_frames(50, 10), len(rx.frames)
    assert (rx.frames[0][1], rx.frames[0][2]) == (320, 240)


class _RtspServer:
    """tests/link/rtsp_record_server.py (GStreamer's RTSP server in RECORD mode, as MediaMTX accepts a publish)."""

    def __init__(self, port: int) -> None:
        self.frames: list[int] = []
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(Path(__file__).with_name("rtsp_record_server.py")), str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "READY"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("FRAME"):
                self.frames.append(int(line.split()[4]))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def _rtsp_server_problem() -> str | None:
    code = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        ok = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (
        None if ok else "GStreamer's RTSP server missing: apt install python3-gi gir1.2-gst-rtsp-server-1.0"
    )


def test_rtsp_publish_reaches_a_real_server_and_reconnects_after_it_restarts() -> None:
    problem = _rtsp_server_problem()
    if problem:
        pytest.skip(problem)
    port = free_port()
    server = _RtspServer(port)
    sent: list[int] = []
    streamer = VideoStreamer(
        f"rtsp://127.0.0.1:{port}/edgedet", PYAV, fps=30, retry_s=(0.3,),
        on_sent=lambda img, t: sent.append(read_stamp(img)),
    )  # fmt: skip
    imgs = frames(240)
    try:
        send(streamer, imgs[:60])
        time.sleep(0.5)
        first = list(server.frames)
        n_first = len(sent)
        assert first == sent[: len(first)] and len(first) >= n_first - 2  # every published frame decoded
        server.kill()  # the server dies: the TCP connection breaks, sends fail, the streamer retries
        send(streamer, imgs[60:120])
        server = _RtspServer(port)
        send(streamer, imgs[120:])
        stats = streamer.close()
        time.sleep(0.5)
        assert stats.reconnects >= 1 and stats.dropped_down >= 1
        assert stats.sent + stats.dropped == 240
        later = server.frames
        assert len(later) >= 30 and later == [c for c in sent if c >= later[0]][: len(later)]
    finally:
        server.kill()
