"""The drone link, measured on loopback against real peers (a GStreamer receiver, a pymavlink ground station).

    python benchmarks/bench_link.py [stream|encoder|mavlink|faults|all] [--frames 600]

stream:  the demo run as `edgedet run --source demo` makes it (600 frames = 20 s of flight, paced to 30 FPS, target
         FPS 30, camera-motion compensation; without its video/tracks files) without and with
         `--stream rtp://127.0.0.1:PORT`, in ABBA order:
         run FPS of each; frames sent / decoded by the GStreamer receiver (tests/link/gst_receiver.py, system
         python3 + python3-gi); latency from capture (the source handing the frame over) and from the stream's
         submit to decoded, p50/p99, from a frame counter drawn into each frame and read back after decoding.
encoder: PyAV/libx264 (ultrafast, zerolatency) process CPU per frame at 640x384 and 1280x720 (demo-scene frames),
         BGR->I420 conversion + encode + RTP send, nothing else running in the process.
mavlink: TRACK_POINT -> first CAMERA_TRACKING_IMAGE_STATUS (ms, 30 tries); status rate achieved vs asked.
faults:  a 12 s demo run streaming to a receiver that is killed at 4 s and restarted at 7 s, with a MAVLink peer
         sending garbage and malformed commands throughout: run FPS, drops, time to the first decoded frame after
         the restart.

Numbers are comparable only within one run (shared CPU); they are printed as measured.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.link.framecode import stamp  # noqa: E402

from edgedet.config import RunConfig, apply_demo_defaults  # noqa: E402
from edgedet.link.stream_sink import StreamSink  # noqa: E402
from edgedet.link.video import StreamOptions  # noqa: E402
from edgedet.pipeline import build_pipeline  # noqa: E402
from edgedet.types import Frame  # noqa: E402

RECEIVER = REPO / "tests" / "link" / "gst_receiver.py"


def free_port(even: bool = False) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not even or port % 2 == 0:
            return port


class Receiver:
    def __init__(self, mode: str, port: int, threads: int = 0) -> None:
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(RECEIVER), mode, str(port), str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "READY"
        self.frames: list[tuple[float, int]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            p = line.split()
            if p and p[0] == "FRAME":
                self.frames.append((float(p[1]), int(p[4])))

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(5)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


class StampedSource:
    """Wraps a source: notes time.monotonic() when each frame is handed to the loop ("capture")."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.is_live = getattr(inner, "is_live", False)
        self.fps = getattr(inner, "fps", None)
        self.captured: dict[int, float] = {}

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.inner:
            self.captured[frame.index] = time.monotonic()
            yield frame

    def close(self) -> None:
        self.inner.close()

    def stats(self) -> Any:
        return self.inner.stats()


def pct(values: list[float]) -> str:
    if not values:
        return "n/a"
    a = np.asarray(values)
    return f"p50 {np.percentile(a, 50):.1f} ms, p99 {np.percentile(a, 99):.1f} ms (n={a.size})"


def demo_run(frames: int, stream_port: int | None) -> dict[str, Any]:
    # `edgedet run --source demo` (paced to 30 FPS, target FPS 30, CMC) without its output files
    pipeline = build_pipeline(apply_demo_defaults(RunConfig(source=f"demo:frames={frames}"), outputs=False))
    source = StampedSource(pipeline.source)
    pipeline.source = source
    submitted: dict[int, float] = {}
    sink = None
    if stream_port is not None:
        sink = StreamSink(
            f"rtp://127.0.0.1:{stream_port}", StreamOptions(encoder="pyav"), fps=30.0,
            class_names=pipeline.backend.spec.class_names, stamp=stamp,
            on_sent=lambda job, t: submitted.__setitem__(job.index, t),
        )  # fmt: skip
        pipeline.sinks = [*pipeline.sinks, sink]
    cpu0 = time.process_time()
    summary = pipeline.run()
    out: dict[str, Any] = {
        "cpu_ms": (time.process_time() - cpu0) * 1e3 / max(summary.frames, 1),
        "detector_runs": summary.detector_runs,
        "fps": summary.fps,
        "frames": summary.frames,
        "captured": source.captured,
        "submitted": submitted,
    }
    if sink is not None:
        out["stream"] = sink.stream_stats()
    return out


def bench_stream(frames: int, pairs: int = 2) -> None:
    print(f"== stream: demo run of {frames} frames, without and with --stream rtp://127.0.0.1:PORT, {pairs} pairs "
          "interleaved ABBA; receiver avdec_h264 max-threads=1 then auto")  # fmt: skip
    fps_without: list[float] = []
    fps_with: list[float] = []
    cpu_without: list[float] = []
    cpu_with: list[float] = []

    runs_without: list[int] = []
    runs_with: list[int] = []

    def without() -> None:
        run = demo_run(frames, None)
        fps_without.append(run["fps"])
        cpu_without.append(run["cpu_ms"])
        runs_without.append(run["detector_runs"])

    for k in range(pairs):
        if k % 2 == 0:  # ABBA order: a load that drifts during the benchmark favours neither side
            without()
        port = free_port(even=True)
        rx = Receiver("rtp", port, threads=1 if k == 0 else 0)
        run = demo_run(frames, port)
        fps_with.append(run["fps"])
        cpu_with.append(run["cpu_ms"])
        runs_with.append(run["detector_runs"])
        time.sleep(1.0)
        rx.stop()
        st = run["stream"]
        decoded = {code: t for t, code in rx.frames if code >= 0}
        cap, sub = run["captured"], run["submitted"]
        lat_capture = [(decoded[i] - cap[i]) * 1e3 for i in decoded if i in cap]
        lat_stream = [(decoded[i] - sub[i]) * 1e3 for i in decoded if i in sub]
        if k % 2 == 1:
            without()
        print(f"-- streamed run {k + 1} (receiver decoder threads: {'1' if k == 0 else 'auto'})")
        print(f"frames: run {run['frames']}, submitted {st.submitted}, sent {st.sent}, dropped at encoder "
              f"{st.dropped} (busy {st.dropped_busy}, link down {st.dropped_down}), decoded by GStreamer {len(rx.frames)} "
              f"(with a readable counter {len(decoded)}; sent but not decoded {len(set(sub) - set(decoded))})")  # fmt: skip
        print(f"latency capture -> decoded: {pct(lat_capture)}")
        print(f"latency stream submit -> decoded (the stream's own share): {pct(lat_stream)}")
        print(f"encoder thread wall per frame (draw + convert + encode + send): p50 {st.encode_wall_ms.p50_ms:.2f} ms, "
              f"p99 {st.encode_wall_ms.p99_ms:.2f} ms; {st.bytes_sent * 8 / max(1e-9, run['frames'] / 30.0) / 1e3:.0f} "
              "kbit/s at 30 FPS")  # fmt: skip
    print("run FPS without stream: " + ", ".join(f"{f:.1f}" for f in fps_without)
          + "; with stream: " + ", ".join(f"{f:.1f}" for f in fps_with)
          + f"; ratio of means {np.mean(fps_with) / np.mean(fps_without):.3f}")  # fmt: skip
    print("process CPU per frame without stream: " + ", ".join(f"{c:.1f}" for c in cpu_without)
          + " ms; with stream: " + ", ".join(f"{c:.1f}" for c in cpu_with)
          + f" ms; ratio of means {np.mean(cpu_with) / np.mean(cpu_without):.3f}")  # fmt: skip
    print(f"detector runs (of {frames} frames; the target-FPS scheduler decides) without stream: {runs_without}, "
          f"with stream: {runs_with}")  # fmt: skip


def bench_encoder(n: int = 150) -> None:
    from edgedet.link.urls import parse_stream_url
    from edgedet.link.video import PyAVOutput
    from edgedet.scenes import DemoScene

    print(f"== encoder: PyAV libx264 ultrafast/zerolatency, {n} demo-scene frames, process CPU per frame")
    for hw in ((384, 640), (720, 1280)):
        imgs = [img for img, _ in DemoScene(seed=0, frames=n, size_hw=hw)]
        url = parse_stream_url(f"rtp://127.0.0.1:{free_port(even=True)}")
        out = PyAVOutput(url, (hw[1], hw[0]), 30.0, StreamOptions(encoder="pyav"))
        for i in range(10):  # warm-up: encoder start-up, first keyframe
            out.send(imgs[i], i * 3000)
        c0, w0 = time.process_time(), time.perf_counter()
        sent = 0
        for i, img in enumerate(imgs[10:], start=10):
            sent += out.send(img, i * 3000)
        cpu = (time.process_time() - c0) * 1e3 / (n - 10)
        wall = (time.perf_counter() - w0) * 1e3 / (n - 10)
        out.close()
        print(
            f"{hw[1]}x{hw[0]}: CPU {cpu:.2f} ms/frame, wall {wall:.2f} ms/frame, {sent * 8 * 30 / (n - 10) / 1e3:.0f} kbit/s at 30 FPS"
        )


def bench_mavlink(tries: int = 30) -> None:
    os.environ.setdefault("MAVLINK20", "1")
    from tests.link.gcs import GroundStation

    from edgedet.link.mavlink import MavlinkCamera, MavlinkConfig
    from edgedet.link.target import TargetSelector
    from edgedet.types import Detections, FrameResult

    print("== mavlink: pymavlink ground station on UDP loopback, tracks fed at 30 FPS")
    port = free_port()
    gcs = GroundStation(f"udpin:127.0.0.1:{port}")
    selector = TargetSelector()
    camera = MavlinkCamera(MavlinkConfig(f"udpout:127.0.0.1:{port}"), selector=selector).start()
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            dets = Detections(np.array([[100, 200, 160, 230]], np.float32), [0.9], [0], [7])
            selector.observe(FrameResult(Frame(np.zeros((384, 640, 3), np.uint8), i, i / 30), dets))
            i += 1
            time.sleep(1 / 30)

    threading.Thread(target=feed, daemon=True).start()
    d = gcs.d
    try:
        gcs.wait("HEARTBEAT", timeout_s=5)
        rtt = []
        for _ in range(tries):
            t, _, res = gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 130 / 640, 215 / 384, 0.01)
            assert res == d.MAV_RESULT_ACCEPTED
            t1, _ = gcs.wait("CAMERA_TRACKING_IMAGE_STATUS", since=t)
            rtt.append((t1 - t) * 1e3)
            gcs.command(d.MAV_CMD_CAMERA_STOP_TRACKING)
            time.sleep(0.05)
        print(f"TRACK_POINT -> first CAMERA_TRACKING_IMAGE_STATUS: {pct(rtt)}, max {max(rtt):.1f} ms")
        gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 130 / 640, 215 / 384, 0.01)
        for hz in (5, 10, 20, 50):
            gcs.command(
                d.MAV_CMD_SET_MESSAGE_INTERVAL, d.MAVLINK_MSG_ID_CAMERA_TRACKING_IMAGE_STATUS, 1e6 / hz
            )
            time.sleep(0.3)
            t = time.monotonic()
            time.sleep(3.0)
            got = gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t)
            times = [x for x, _ in got]
            achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
            print(f"status rate asked {hz} Hz: achieved {achieved:.2f} Hz ({len(got)} messages in 3 s)")
    finally:
        stop.set()
        camera.close()
        gcs.close()


def bench_faults(frames: int = 360) -> None:
    os.environ.setdefault("MAVLINK20", "1")
    from tests.link.gcs import GroundStation

    from edgedet.link.mavlink import MavlinkCamera, MavlinkConfig, MavlinkSink
    from edgedet.link.target import TargetSelector

    print(
        f"== faults: {frames}-frame paced demo run; receiver killed at 4 s, restarted at 7 s; MAVLink garbage throughout"
    )
    port, gport = free_port(even=True), free_port()
    gcs = GroundStation(f"udpin:127.0.0.1:{gport}")
    selector = TargetSelector()
    camera = MavlinkCamera(MavlinkConfig(f"udpout:127.0.0.1:{gport}"), selector=selector)
    pipeline = build_pipeline(apply_demo_defaults(RunConfig(source=f"demo:frames={frames}"), outputs=False))
    sink = StreamSink(f"rtp://127.0.0.1:{port}", StreamOptions(encoder="pyav"), fps=30.0, stamp=stamp)
    pipeline.sinks = [MavlinkSink(camera.start()), *pipeline.sinks, sink]
    rx = Receiver("rtp", port)
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(pipeline.run()))
    stop = threading.Event()
    rng = random.Random(0)

    def fuzz() -> None:
        gcs.wait("HEARTBEAT", timeout_s=10)
        while not stop.is_set():
            if rng.random() < 0.5:
                gcs.conn.write(os.urandom(rng.randint(1, 280)))
            else:
                gcs.conn.mav.command_long_send(
                    1, 100, rng.choice([2004, 2005, 2010, 511, 512]), 0,
                    *[rng.choice([float("nan"), float("inf"), -1.0, 0.5, 1e9, 275.0]) for _ in range(7)],
                )  # fmt: skip
            time.sleep(0.002)

    t0 = time.monotonic()
    runner.start()
    threading.Thread(target=fuzz, daemon=True).start()
    time.sleep(4.0)
    rx.kill()
    t_kill = time.monotonic()
    time.sleep(3.0)
    rx2 = Receiver("rtp", port)
    t_restart = time.monotonic()
    time.sleep(2.0)
    threads_alive = all(t.is_alive() for t in camera._threads)  # while the run and the garbage go on
    runner.join()
    stop.set()
    time.sleep(0.5)
    rx2.stop()
    summary = result[0]
    st = sink.stream_stats()
    ms = camera.stats()
    first_after = min((t for t, _ in rx2.frames), default=float("nan"))
    print(
        f"run: {summary.frames} frames at {summary.fps:.1f} FPS (paced to 30), wall {time.monotonic() - t0:.1f} s"
    )
    print(f"stream: sent {st.sent}, dropped {st.dropped}, errors {st.errors}; decoded before kill {len(rx.frames)}, "
          f"after restart {len(rx2.frames)}; first decoded frame {first_after - t_restart:.2f} s after the restart "
          f"(receiver down {t_restart - t_kill:.1f} s)")  # fmt: skip
    print(f"mavlink: {ms.messages_in} messages in, {ms.bad_data} bad, {ms.commands} commands, acks {ms.acks}, "
          f"{ms.handler_errors} handler errors, {ms.heartbeats_sent} heartbeats sent; its threads alive during "
          f"the run: {threads_alive}")  # fmt: skip
    gcs.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "what", nargs="?", default="all", choices=["stream", "encoder", "mavlink", "faults", "all"]
    )
    ap.add_argument("--frames", type=int, default=600)
    args = ap.parse_args()
    if args.what in ("encoder", "all"):
        bench_encoder()
    if args.what in ("stream", "all"):
        bench_stream(args.frames)
    if args.what in ("mavlink", "all"):
        bench_mavlink()
    if args.what in ("faults", "all"):
        bench_faults()
    return 0


if __name__ == "__main__":
    sys.exit(main())
