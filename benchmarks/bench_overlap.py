"""Engine-only FPS vs end-to-end FPS with `--overlap off` and `--overlap on`, side by side in one run.

    python benchmarks/bench_overlap.py [--video PATH] [--models 320 640] [--repeat 2] [--threads 1] [--demo]

For each YOLOv5n reference (../shared/data/models/reference_onnx/yolov5n_<size>.onnx) on the people clip
(../shared/data/video/people_indoor_640x368.mp4), ONNX Runtime on the CPU at `--threads`:
- engine-only: the detector's `infer` alone on the clip's frames, FPS = 1000 / infer p50;
- end to end: `edgedet run` on `--passes` loops of the clip (every frame, detector on every frame, SORT, the
  video sink writing an mp4), once with `--overlap off` (one frame at a time) and once with `--overlap on`
  (stages on threads); FPS = frames / wall time, and the steady rate after the first `--skip` frames (model
  start-up and the pipeline filling left out, as the engine-only number leaves out its warm-up); each run's own
  infer p50 is shown beside it.
With `--demo` (or `--demo-only`): `edgedet run --source demo` (600 frames at 30 FPS, its defaults: target FPS
30, CMC, the run folder's video, tracks and detections) with `--overlap off` and `on`, idle and with one core
busy (`python -c "while True: pass"` beside it): FPS, detector runs out of 600, infer p50, and the backend's
description (the ONNX Runtime thread budget the run chose).
Runs are interleaved (engine, off, on, engine, off, on, ...) and the median of `--repeat` rounds is reported,
with `uptime`'s 1-minute load average at each measurement: numbers are comparable only within one run, and
only on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgedet.backends import BackendConfig
from edgedet.config import RunConfig, build_config
from edgedet.detector import open_detector
from edgedet.pipeline import build_pipeline
from edgedet.sources import open_source

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load1() -> float:
    return os.getloadavg()[0]


def engine_only_p50(model: Path, video: Path, threads: int, frames: int) -> float:
    """Median `infer` ms over the clip's first `frames` frames (5 warm-up calls discarded)."""
    with open_detector(model, BackendConfig(threads=threads)) as det:
        images = [f.image for f, _ in zip(open_source(str(video)), range(frames), strict=False)]
        times = []
        for i, img in enumerate([*images[:5], *images]):
            _, t = det.detect(img)
            if i >= 5:
                times.append(t.infer_ms)
    return float(np.median(times))


class _OutputTimes:
    """A sink that only notes when each frame came out (for the steady-state rate)."""

    flag = "bench"
    lost_frames = 0
    stop_requested = False

    def __init__(self) -> None:
        self.t_ns: list[int] = []

    def write(self, result: object) -> None:
        self.t_ns.append(time.perf_counter_ns())

    def close(self) -> None:
        pass


def end_to_end(
    model: Path, video: Path, threads: int, overlap: str, out: Path, passes: int, skip: int
) -> tuple[float, float, float, int]:
    """(FPS over the run, steady FPS after the first `skip` frames, infer p50 ms, frames) of one `edgedet run`
    over `passes` loops of the clip with the video sink writing."""
    frames = passes * sum(1 for _ in open_source(str(video)))
    cfg = build_config(
        RunConfig,
        None,
        source=str(video),
        model=str(model),
        threads=threads,
        overlap=overlap,
        classes=(0,),
        save_video=str(out),
        loop=passes > 1,
        max_frames=frames,
    )
    pipeline = build_pipeline(cfg)
    times = _OutputTimes()
    pipeline.sinks.append(times)  # type: ignore[arg-type]
    summary = pipeline.run()
    assert out.stat().st_size > 0 and summary.frames == frames
    t = times.t_ns
    steady = (len(t) - 1 - skip) / ((t[-1] - t[skip]) / 1e9)
    return summary.fps, steady, summary.latency["infer"].p50_ms, summary.frames


def demo_run(overlap: str, busy: bool, run_dir: Path) -> tuple[float, int, int, float, str]:
    """(FPS, detector runs, frames, infer p50 ms, backend description) of `edgedet run --source demo`."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.5 if busy else 0.0)  # let the busy loop take its core
        cfg = build_config(RunConfig, None, source="demo", overlap=overlap, run_dir=str(run_dir))
        pipeline = build_pipeline(cfg)
        summary = pipeline.run()
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    infer = summary.latency["infer"].p50_ms
    return summary.fps, summary.detector_runs, summary.frames, infer, pipeline.detector.description


def demo_table(repeat: int) -> None:
    print("demo: edgedet run --source demo (600 frames, target 30 FPS), idle and with one core busy")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for busy in (False, True):
            for overlap in ("off", "on"):
                runs = []
                for r in range(repeat):
                    load = load1()
                    fps, det, n, infer, desc = demo_run(overlap, busy, Path(tmp) / f"{overlap}{busy}{r}")
                    runs.append((fps, det, infer))
                    print(
                        f"  {'one core busy' if busy else 'idle':<14}overlap {overlap:<4} {fps:5.1f} FPS, detector "
                        f"{det}/{n}, infer p50 {infer:.1f} ms, load {load:.1f}; {desc}",
                        flush=True,
                    )
                rows.append((busy, overlap, *(statistics.median(x[i] for x in runs) for i in range(3)), n))
    print(f"{'machine':<16}{'overlap':<9}{'FPS':>6}{'detector runs':>15}{'infer p50':>11}")
    for busy, overlap, fps, det, infer, n in rows:
        print(
            f"{'one core busy' if busy else 'idle':<16}{overlap:<9}{fps:>6.1f}{f'{det:.0f}/{n}':>15}{infer:>11.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=DATA / "video" / "people_indoor_640x368.mp4")
    ap.add_argument("--models", nargs="+", type=int, default=[320, 640])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engine-frames", type=int, default=60)
    ap.add_argument("--passes", type=int, default=3, help="loops of the clip per end-to-end run")
    ap.add_argument("--skip", type=int, default=10, help="frames left out of the steady rate (start-up)")
    ap.add_argument("--demo", action="store_true", help="also the demo, idle and with one core busy")
    ap.add_argument("--demo-only", action="store_true", help="only the demo table")
    args = ap.parse_args()
    if args.demo_only:
        demo_table(args.repeat)
        return
    if not args.video.exists():
        raise SystemExit(f"missing {args.video}: the people clip lives in ../shared/data/video")
    print(
        f"cores usable: {len(os.sched_getaffinity(0))}, ONNX Runtime CPU, {args.threads} thread(s)",
        flush=True,
    )
    med = statistics.median
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.models:
            model = DATA / "models" / "reference_onnx" / f"yolov5n_{size}.onnx"
            if not model.exists():
                raise SystemExit(f"missing {model}")
            eng: list[float] = []
            off: list[tuple[float, float, float, int]] = []
            on: list[tuple[float, float, float, int]] = []
            loads: list[float] = []
            for r in range(args.repeat):
                loads.append(load1())
                eng.append(1000.0 / engine_only_p50(model, args.video, args.threads, args.engine_frames))
                for mode, into in (("off", off), ("on", on)):
                    loads.append(load1())
                    out = Path(tmp) / f"{mode}{size}_{r}.mp4"
                    into.append(
                        end_to_end(model, args.video, args.threads, mode, out, args.passes, args.skip)
                    )
                print(
                    f"  yolov5n {size} round {r + 1}: engine {eng[-1]:.1f} FPS; off {off[-1][0]:.1f} FPS, steady "
                    f"{off[-1][1]:.1f} (infer p50 {off[-1][2]:.1f} ms); on {on[-1][0]:.1f} FPS, steady "
                    f"{on[-1][1]:.1f} (infer p50 {on[-1][2]:.1f} ms); load {loads[-3]:.1f}/{loads[-2]:.1f}/"
                    f"{loads[-1]:.1f}",
                    flush=True,
                )
            rows.append(
                (size, off[0][3], med(eng), *(med(x[i] for x in off) for i in range(3)),
                 *(med(x[i] for x in on) for i in range(3)), min(loads), max(loads))
            )  # fmt: skip
    print()
    print(
        f"{'model':<12}{'frames':>7}{'engine':>8}{'off':>7}{'steady':>8}{'infer':>7}{'on':>7}{'steady':>8}"
        f"{'infer':>7}{'on/engine':>11}{'on/off':>8}{'load 1m':>10}"
    )
    for size, n, e, f_off, s_off, i_off, f_on, s_on, i_on, lo, hi in rows:
        print(
            f"{'yolov5n ' + str(size):<12}{n:>7}{e:>8.1f}{f_off:>7.1f}{s_off:>8.1f}{i_off:>7.1f}{f_on:>7.1f}"
            f"{s_on:>8.1f}{i_on:>7.1f}{s_on / e:>11.2f}{s_on / s_off:>8.2f}{f'{lo:.1f}-{hi:.1f}':>10}"
        )
    print(
        "FPS. engine = 1000 / infer p50 of the detector alone; off / on = `edgedet run --overlap off|on` with the "
        f"video sink, frames / wall time, and steady = the output rate after the first {args.skip} frames; infer = "
        "that run's infer p50 (ms); on/engine and on/off compare the steady rates"
    )
    if args.demo:
        print()
        demo_table(args.repeat)


if __name__ == "__main__":
    main()
