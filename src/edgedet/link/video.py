"""Video out: H.264 to a ground station over RTP, MPEG-TS on UDP or SRT, or an RTSP server.

`VideoStreamer` owns one output. The frame loop calls `submit()`, which only swaps a reference under a lock
(newest frame wins: a frame not yet taken by the encoder is replaced and counted as dropped), so a slow, absent
or dead receiver never stalls detection. The encoder thread draws the annotations, scales, encodes and sends;
when sending fails it closes the output and opens it again with backoff, dropping (and counting) the frames
that arrive meanwhile, so a link that comes back is served again.

Two encoders write the same streams:
- `PyAVOutput`: FFmpeg through PyAV with libx264 (PyAV's wheels carry it), on any machine;
- `GstOutput`: a GStreamer pipeline through OpenCV's VideoWriter with the Jetson's hardware encoder
  (nvv4l2h264enc); usable only where OpenCV was built with GStreamer (JetPack's is; PyPI's is not).
Both encode for latency: no B-frames, a keyframe (with SPS/PPS) every `keyint_s` seconds so a receiver that
joins late or restarts decodes within that time, a bitrate cap, and the run's frame rate.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError, SinkError
from edgedet.link.urls import StreamUrl, parse_stream_url
from edgedet.profiling import LatencyStats, RingBuffer

logger = logging.getLogger(__name__)

ENCODERS = ("auto", "pyav", "gstreamer")
_RTP_CLOCK = 90000  # RTP's H.264 clock rate, and MPEG-TS's time base: frame times are kept in these units
_RTP_PAYLOAD_TYPE = 96
_RTP_PACKET_BYTES = 1200  # below a typical radio link's MTU after IP/UDP headers


@dataclass(frozen=True)
class StreamOptions:
    """How the video is encoded; shared by every `--stream` of a run.

    keyint_s: seconds between keyframes (--stream-keyint); each keyframe carries SPS/PPS, so a receiver that
        joins or restarts shows video within this time.
    bitrate_kbps: the encoder's rate cap (--stream-bitrate), kbit/s.
    width: downscale to this width (--stream-width; height follows the aspect, both made even); None: as
        captured. Never upscales.
    fps: the frame rate announced to the encoder; None: the run's (the source's nominal rate, else 30).
    encoder: auto (GStreamer's hardware encoder where available, else PyAV) | pyav | gstreamer.
    preset: libx264 preset for PyAV (ultrafast costs the least CPU per frame).
    """

    keyint_s: float = 1.0
    bitrate_kbps: int = 2000
    width: int | None = None
    fps: float | None = None
    encoder: str = "auto"
    preset: str = "ultrafast"

    def validate(self) -> StreamOptions:
        if not (math.isfinite(self.keyint_s) and 0.0 < self.keyint_s <= 60.0):
            raise ConfigError(f"--stream-keyint {self.keyint_s} must be in (0, 60] seconds, e.g. 1")
        if not 50 <= self.bitrate_kbps <= 100_000:
            raise ConfigError(f"--stream-bitrate {self.bitrate_kbps} must be in 50..100000 kbit/s, e.g. 2000")
        if self.width is not None and not 32 <= self.width <= 8192:
            raise ConfigError(f"--stream-width {self.width} must be in 32..8192 pixels, e.g. 640")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ConfigError(f"stream fps {self.fps} must be a positive frame rate")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"--stream-encoder {self.encoder!r}: choose one of {', '.join(ENCODERS)}")
        return self


def output_size(hw: tuple[int, int], width: int | None) -> tuple[int, int]:
    """(width, height) to encode a frame of `hw` at: downscaled to `width` when smaller, both sides even
    (4:2:0 chroma needs it)."""
    h, w = hw
    if width is not None and width < w:
        h = round(h * width / w)
        w = width
    return max(2, w - w % 2), max(2, h - h % 2)


def sdp_text(url: StreamUrl, sprop: str | None = None) -> str:
    """An SDP description of an RTP/H.264 stream (payload 96, 90 kHz) for receivers that need one (VLC,
    ffplay, FFmpeg); QGroundControl does not. `sprop`: base64 SPS,PPS when known; without it, receivers take
    them from the stream (every keyframe carries them)."""
    fmtp = "packetization-mode=1" + (f"; sprop-parameter-sets={sprop}" if sprop else "")
    ip = "IP6" if ":" in url.host else "IP4"
    return (
        "v=0\r\n"
        f"o=- 0 0 IN {ip} {url.host}\r\n"
        "s=edgedet\r\n"
        f"c=IN {ip} {url.host}\r\n"
        "t=0 0\r\n"
        f"m=video {url.port} RTP/AVP {_RTP_PAYLOAD_TYPE}\r\n"
        f"a=rtpmap:{_RTP_PAYLOAD_TYPE} H264/{_RTP_CLOCK}\r\n"
        f"a=fmtp:{_RTP_PAYLOAD_TYPE} {fmtp}\r\n"
    )


def write_sdp(url: StreamUrl, path: str | Path) -> Path:
    """Write `sdp_text(url)` to `path` (parents created). Raises SinkError when it cannot be written."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(sdp_text(url), encoding="ascii")
    except OSError as exc:
        raise SinkError(
            f"--stream {url.url}: cannot write {p} ({exc.strerror or exc}): choose another run folder"
        ) from exc
    return p


# --- encoders ---------------------------------------------------------------------------------------------------


class EncoderOutput(Protocol):
    """One open stream. `send` encodes and sends one BGR frame at `pts` (units of 1/90000 s); both `send` and
    `close` raise OSError when the link fails."""

    def send(self, image: npt.NDArray[np.uint8], pts: int) -> int: ...
    def close(self) -> None: ...


class PyAVOutput:
    """libx264 through PyAV into FFmpeg's rtp / mpegts (udp, srt) / rtsp muxer. `send` returns bytes sent."""

    def __init__(self, url: StreamUrl, size_wh: tuple[int, int], fps: float, options: StreamOptions) -> None:
        from edgedet._optional import require

        av = require("av", f"--stream {url.url}")
        self._av = av
        self.url = url
        target, fmt, muxer_opts = _pyav_target(url)
        try:
            self._container = av.open(target, mode="w", format=fmt, options=muxer_opts, timeout=(5.0, 5.0))
        except Exception as exc:
            raise OSError(f"cannot open {url.url}: {exc}") from exc
        try:
            w, h = size_wh
            keyint = max(1, round(options.keyint_s * fps))
            kbps = int(options.bitrate_kbps)
            x264 = (
                f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0:repeat-headers=1:"
                f"vbv-maxrate={kbps}:vbv-bufsize={max(kbps // 2, 1)}"
            )
            stream = self._container.add_stream(
                "libx264",
                rate=Fraction(fps).limit_denominator(1001),
                options={"preset": options.preset, "tune": "zerolatency", "x264-params": x264},
            )
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = kbps * 1000
            stream.codec_context.time_base = Fraction(1, _RTP_CLOCK)
            stream.time_base = Fraction(1, _RTP_CLOCK)
            self._stream = stream
            self._size_wh = (w, h)
        except Exception:
            self._close_container()
            raise

    def send(self, image: npt.NDArray[np.uint8], pts: int) -> int:
        import cv2

        yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
        frame = self._av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = pts
        frame.time_base = Fraction(1, _RTP_CLOCK)
        sent = 0
        try:
            for packet in self._stream.encode(frame):
                sent += packet.size
                self._container.mux(packet)
        except Exception as exc:  # av.error.* (OSError subclasses in PyAV, but not all): a failed link
            raise OSError(f"sending to {self.url.url} failed: {exc}") from exc
        return sent

    def _close_container(self) -> None:
        try:
            self._container.close()
        except Exception as exc:
            raise OSError(f"closing {self.url.url} failed: {exc}") from exc

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except Exception:
            pass  # the receiver side is gone or the encoder had nothing left: closing still has to happen
        self._close_container()


def _pyav_target(url: StreamUrl) -> tuple[str, str, dict[str, str]]:
    """(FFmpeg URL, muxer name, muxer/protocol options) for a stream address."""
    if url.scheme == "rtp":
        return f"rtp://{url.host}:{url.port}?pkt_size={_RTP_PACKET_BYTES}", "rtp", {}
    if url.scheme == "udp":
        # 7 TS packets per datagram (1316 bytes), the size receivers expect
        return f"udp://{url.host}:{url.port}?pkt_size=1316", "mpegts", {"mpegts_flags": "resend_headers"}
    return url.url, "rtsp", {"rtsp_transport": "tcp"}


class SrtRelayOutput:
    """`srt://` through PyAV: PyAV's FFmpeg wheels have no libsrt, so the MPEG-TS goes to a loopback UDP port
    and a `gst-launch-1.0 udpsrc ! srtsink` process (GStreamer's SRT plugin, gstreamer1.0-plugins-bad) carries
    it to the listener as an SRT caller. When the relay exits (no listener, listener gone), `send` raises
    OSError and the streamer reopens both, which reconnects."""

    def __init__(self, url: StreamUrl, size_wh: tuple[int, int], fps: float, options: StreamOptions) -> None:
        exe = shutil.which("gst-launch-1.0")
        if exe is None or not gst_element_exists("srtsink"):
            raise SinkError(
                f"--stream {url.url}: SRT needs GStreamer's srtsink (PyAV's FFmpeg has no libsrt): "
                "apt install gstreamer1.0-tools gstreamer1.0-plugins-bad"
            )
        port = _free_udp_port()
        uri = f"srt://{url.host}:{url.port}?mode=caller"
        self.url = url
        self._relay = subprocess.Popen(
            [exe, "-q", "udpsrc", "address=127.0.0.1", f"port={port}", "buffer-size=2097152", "!", "queue", "!",
             "srtsink", f"uri={uri}", "latency=120", "wait-for-connection=false", "sync=false"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            self._inner = PyAVOutput(
                StreamUrl(f"udp://127.0.0.1:{port}", "udp", "127.0.0.1", port), size_wh, fps, options
            )
        except BaseException:
            self._stop_relay()
            raise

    def send(self, image: npt.NDArray[np.uint8], pts: int) -> int:
        code = self._relay.poll()
        if code is not None:
            err = (self._relay.stderr.read() if self._relay.stderr else b"").decode(errors="replace").strip()
            raise OSError(
                f"the SRT relay to {self.url.url} exited ({code}): {err.splitlines()[-1] if err else 'no listener?'}"
            )
        return self._inner.send(image, pts)

    def _stop_relay(self) -> None:
        if self._relay.poll() is None:
            self._relay.terminate()
            try:
                self._relay.wait(2.0)
            except subprocess.TimeoutExpired:
                self._relay.kill()
                self._relay.wait(2.0)
        if self._relay.stderr is not None:
            self._relay.stderr.close()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            time.sleep(0.05)  # let the relay forward the last datagrams
            self._stop_relay()


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# GStreamer elements after the H.264 encoder for each transport; {host} {port} {url} filled in.
_GST_TAILS = {
    "rtp": "rtph264pay pt=96 config-interval=1 mtu=1200 ! udpsink host={host} port={port} sync=false async=false",
    "udp": "mpegtsmux alignment=7 ! udpsink host={host} port={port} sync=false async=false",
    "srt": "mpegtsmux alignment=7 ! srtsink uri=srt://{host}:{port} mode=caller wait-for-connection=false",
    "rtsp": "rtspclientsink location={url} protocols=tcp",
}


def gst_encoder_element(options: StreamOptions, fps: float) -> str:
    """The Jetson's hardware H.264 encoder with the stream options: CBR cap, keyframe (IDR) interval with
    SPS/PPS on each, no B-frames, and the NVMM conversion it needs in front."""
    keyint = max(1, round(options.keyint_s * fps))
    return (
        "video/x-raw,format=BGRx ! nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! "
        f"nvv4l2h264enc bitrate={options.bitrate_kbps * 1000} peak-bitrate={options.bitrate_kbps * 1000} "
        f"control-rate=1 iframeinterval={keyint} idrinterval={keyint} insert-sps-pps=true num-B-Frames=0 "
        "preset-level=1 maxperf-enable=true"
    )


def gst_pipeline(url: StreamUrl, encoder: str) -> str:
    """The GStreamer pipeline for OpenCV's VideoWriter: appsrc (BGR frames) ! convert ! `encoder` ! H.264
    parser ! the transport's payloader/muxer and sink. `encoder` is `gst_encoder_element(...)` on a Jetson;
    tests put x264enc there to run the same pipeline on a PC."""
    tail = _GST_TAILS[url.scheme].format(host=url.host, port=url.port, url=url.url)
    return f"appsrc is-live=true do-timestamp=true ! videoconvert ! {encoder} ! h264parse ! {tail}"


def opencv_has_gstreamer(build_info: str | None = None) -> bool:
    """Whether this OpenCV was built with GStreamer (cv2.getBuildInformation's 'GStreamer: YES')."""
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    for line in build_info.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GStreamer":
            return value.strip().upper().startswith("YES")
    return False


def gst_element_exists(name: str) -> bool:
    """Whether GStreamer on this machine has element `name` (asks gst-inspect-1.0; False without it)."""
    exe = shutil.which("gst-inspect-1.0")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "--exists", name], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def hardware_encoder_problem() -> str | None:
    """Why the GStreamer hardware-encoder path cannot run here (one line), or None when it can."""
    if not opencv_has_gstreamer():
        return (
            "this OpenCV has no GStreamer (PyPI's wheels never do): use JetPack's OpenCV "
            "(apt install python3-opencv) or --stream-encoder pyav"
        )
    if not gst_element_exists("nvv4l2h264enc"):
        return "GStreamer has no nvv4l2h264enc (not a Jetson, or JetPack's multimedia packages are missing): use --stream-encoder pyav"
    return None


class GstOutput:
    """The hardware encoder through OpenCV's VideoWriter (CAP_GSTREAMER). GStreamer sends on its own
    threads and stamps frames itself (do-timestamp), so `pts` is not used and `send` returns 0 bytes."""

    def __init__(
        self,
        url: StreamUrl,
        size_wh: tuple[int, int],
        fps: float,
        options: StreamOptions,
        encoder: str | None = None,
    ) -> None:
        import cv2

        self.url = url
        self.pipeline = gst_pipeline(url, encoder or gst_encoder_element(options, fps))
        self._writer = cv2.VideoWriter(self.pipeline, cv2.CAP_GSTREAMER, 0, float(fps), size_wh, True)
        if not self._writer.isOpened():
            raise OSError(f"GStreamer pipeline did not start: {self.pipeline}")

    def send(self, image: npt.NDArray[np.uint8], pts: int) -> int:
        self._writer.write(image)
        return 0

    def close(self) -> None:
        self._writer.release()


OutputFactory = Callable[[StreamUrl, tuple[int, int], float, StreamOptions], EncoderOutput]


def choose_encoder(options: StreamOptions) -> str:
    """'pyav' or 'gstreamer' for `options.encoder` ('auto' picks GStreamer's hardware encoder where it can run).
    Raises SinkError when 'gstreamer' is asked for and cannot run, MissingDependencyError when PyAV is needed
    and absent."""
    from edgedet._optional import require

    if options.encoder in ("auto", "gstreamer"):
        problem = hardware_encoder_problem()
        if problem is None:
            return "gstreamer"
        if options.encoder == "gstreamer":
            raise SinkError(f"--stream-encoder gstreamer: {problem}")
    require("av", "--stream")
    return "pyav"


# --- the streamer -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamStats:
    """What one stream did. submitted = sent + dropped_busy + dropped_down + (at most 1 pending at close)."""

    url: str
    submitted: int
    sent: int
    dropped_busy: int  # replaced before the encoder took them (encoder slower than the frame loop)
    dropped_down: int  # arrived while the link was down (failed to open, or re-opening after an error)
    reconnects: int
    errors: int
    bytes_sent: int
    encode_wall_ms: (
        LatencyStats  # per frame on the encoder thread: annotate + scale + convert + encode + send
    )

    @property
    def dropped(self) -> int:
        return self.dropped_busy + self.dropped_down

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "submitted": self.submitted,
            "sent": self.sent,
            "dropped_busy": self.dropped_busy,
            "dropped_down": self.dropped_down,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "bytes_sent": self.bytes_sent,
            "encode_wall_ms": self.encode_wall_ms.as_dict(),
        }


# Drawing happens on the encoder thread: the frame loop hands over the raw frame and what to draw on it.
Renderer = Callable[[Any], npt.NDArray[np.uint8]]


class VideoStreamer:
    """One `--stream` output on its own thread; see the module docstring.

    `submit(item, time_s)` hands over the newest frame: `item` is whatever `render` turns into a BGR image
    (HxWx3 uint8) on the encoder thread; `time_s` is its time.monotonic() stamp (frame times in the stream
    follow it, so receivers play at the real rate). `on_sent(item, time_s)` is called after each frame is
    sent (tests and benchmarks record send times with it).
    """

    def __init__(
        self,
        url: str | StreamUrl,
        options: StreamOptions = StreamOptions(),
        fps: float = 30.0,
        render: Renderer | None = None,
        output_factory: OutputFactory | None = None,
        retry_s: Sequence[float] = (0.2, 0.5, 1.0, 2.0),
        on_sent: Callable[[Any, float], None] | None = None,
    ) -> None:
        self.url = url if isinstance(url, StreamUrl) else parse_stream_url(url)
        self.options = options.validate()
        self.fps = float(options.fps or fps)
        self._render = render or (lambda item: item)
        self._factory = output_factory or _default_factory(options)
        self._retry_s = tuple(retry_s)
        self._on_sent = on_sent
        self._cond = threading.Condition()
        self._pending: tuple[Any, float] | None = None
        self._closing = False
        self._submitted = self._sent = self._dropped_busy = self._dropped_down = 0
        self._reconnects = self._errors = self._bytes = 0
        self._down = (
            False  # set when an open or a send fails; frames replaced meanwhile count as dropped_down
        )
        self._wall = RingBuffer(8192)
        self._last_pts = -1
        self._t0: float | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"edgedet-stream-{self.url.scheme}", daemon=True
        )
        self._thread.start()

    # --- frame loop side ------------------------------------------------------------------------------------

    def submit(self, item: Any, time_s: float | None = None) -> None:
        """Hand over the newest frame; never blocks on the link (a lock held for a few instructions)."""
        t = time.monotonic() if time_s is None else time_s
        with self._cond:
            if self._closing:
                return
            self._submitted += 1
            if self._pending is not None:
                if self._down:
                    self._dropped_down += 1
                else:
                    self._dropped_busy += 1
            self._pending = (item, t)
            self._cond.notify()

    def stats(self) -> StreamStats:
        with self._cond:
            return StreamStats(
                self.url.url, self._submitted, self._sent, self._dropped_busy, self._dropped_down,
                self._reconnects, self._errors, self._bytes,
                LatencyStats.of(self._wall.values(), self._wall.total_count),
            )  # fmt: skip

    @property
    def link_up(self) -> bool:
        with self._cond:
            return not self._down

    def close(self, timeout_s: float = 5.0) -> StreamStats:
        """Send the frame still pending, then stop the thread, flush and close the output. Returns the final
        stats; never raises for link errors (a thread blocked on the link past `timeout_s` is left behind)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning(
                "--stream %s: the encoder thread did not stop within %.0f s (link blocked); leaving it",
                self.url.url,
                timeout_s,
            )
        return self.stats()

    # --- encoder thread -------------------------------------------------------------------------------------

    def _next(self, timeout_s: float | None) -> tuple[Any, float] | None:
        with self._cond:
            if self._pending is None and not self._closing:
                self._cond.wait(timeout_s)
            item, self._pending = self._pending, None
            return item

    def _pts(self, t: float) -> int:
        if self._t0 is None:
            self._t0 = t
        pts = round((t - self._t0) * _RTP_CLOCK)
        pts = max(pts, self._last_pts + 1)  # strictly increasing even if two frames share a stamp
        self._last_pts = pts
        return pts

    def _run(self) -> None:
        out: EncoderOutput | None = None
        size: tuple[int, int] | None = None
        failures = 0
        retry_at = 0.0
        opened_once = False
        try:
            while True:
                got = self._next(None)
                if got is None:
                    if self._closing:
                        break
                    continue
                item, t = got
                w0 = time.perf_counter()
                image = self._render(item)
                wh = output_size(image.shape[:2], self.options.width)
                if size is not None and wh != size and out is not None:
                    # The frame size changed (camera reopened at another mode): the encoder restarts for it.
                    self._close_output(out)
                    out = None
                size = wh
                if out is None:
                    if time.monotonic() < retry_at:
                        self._count_down()
                        continue
                    try:
                        out = self._factory(self.url, size, self.fps, self.options)
                    except (OSError, SinkError) as exc:
                        failures += 1
                        retry_at = time.monotonic() + self._retry_s[min(failures, len(self._retry_s)) - 1]
                        self._count_down(error=exc, first=failures == 1)
                        continue
                    with self._cond:
                        self._reconnects += int(opened_once)
                        self._down = False
                    opened_once = True
                    if failures:
                        logger.info("--stream %s: link open again", self.url.url)
                    failures = 0
                    self._last_pts = -1
                    self._t0 = None
                if image.shape[1] != size[0] or image.shape[0] != size[1]:
                    import cv2

                    image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
                try:
                    nbytes = out.send(np.ascontiguousarray(image), self._pts(t))
                except OSError as exc:
                    self._close_output(out)
                    out = None
                    failures = 1
                    retry_at = time.monotonic() + self._retry_s[0]
                    self._count_down(error=exc, first=True)
                    continue
                with self._cond:
                    self._sent += 1
                    self._bytes += nbytes
                    self._wall.append((time.perf_counter() - w0) * 1e3)
                if self._on_sent is not None:
                    self._on_sent(item, t)
        except (
            Exception
        ):  # a bug in drawing/encoding must not kill the run silently: log it, keep counting drops
            logger.exception(
                "--stream %s: the encoder thread failed; the stream is off for the rest of the run",
                self.url.url,
            )
            with self._cond:
                self._errors += 1
                self._down = True
            self._drain_forever()
        finally:
            if out is not None:
                self._close_output(out)

    def _drain_forever(self) -> None:
        while True:
            got = self._next(None)
            if self._closing:
                return
            if got is not None:
                with self._cond:
                    self._dropped_down += 1

    def _count_down(self, error: BaseException | None = None, first: bool = False) -> None:
        with self._cond:
            self._dropped_down += 1
            self._down = True
            if error is not None:
                self._errors += 1
        if error is not None and first:
            logger.warning(
                "--stream %s: %s; the run goes on and the stream is retried (frames dropped meanwhile are counted)",
                self.url.url,
                error,
            )

    def _close_output(self, out: EncoderOutput) -> None:
        try:
            out.close()
        except OSError as exc:
            logger.debug("--stream %s: closing after an error: %s", self.url.url, exc)


def _default_factory(options: StreamOptions) -> OutputFactory:
    """The output class for `options.encoder`, decided once (raises as `choose_encoder` does)."""
    if choose_encoder(options) == "gstreamer":
        return lambda url, size, fps, opts: GstOutput(url, size, fps, opts)

    def pyav(url: StreamUrl, size: tuple[int, int], fps: float, opts: StreamOptions) -> EncoderOutput:
        if url.scheme == "srt":
            return SrtRelayOutput(url, size, fps, opts)
        return PyAVOutput(url, size, fps, opts)

    return pyav


__all__ = [
    "ENCODERS",
    "EncoderOutput",
    "GstOutput",
    "PyAVOutput",
    "SrtRelayOutput",
    "StreamOptions",
    "StreamStats",
    "VideoStreamer",
    "choose_encoder",
    "gst_encoder_element",
    "gst_pipeline",
    "hardware_encoder_problem",
    "opencv_has_gstreamer",
    "output_size",
    "sdp_text",
    "write_sdp",
]
