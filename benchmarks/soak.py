"""Soak: run the real pipeline for minutes on a looped, live-paced source and watch for slow leaks and lag creep.

The source is a video file looped forever and served through `LiveSource` at `--live-fps` (faster than the
detector, so the pipeline runs at full speed and the newest-frame-wins path drops the rest), which also makes
frame age (now - capture time) meaningful. Every `--sample-s` seconds a probe sink records RSS, open fds
(/proc/self/fd), OS threads (/proc/self/status), the tracker's track count, and the p99 frame age of the frames
since the previous sample.

Growth is reported per hour of equivalent 30 FPS video (frames processed / 108000 per hour): the slope of a
least-squares line through the samples after the first `--warmup-frac` of the run (allocators and caches
settle first). Targets: RSS < 5 MB/h, no fd or thread growth, bounded track count, frame age not creeping.

    python benchmarks/soak.py --minutes 20 --threads 1 [--json soak.json]

Defaults: the shared people clip and the reference YOLOv5n at 320 (../shared/data); without them a synthetic
live scene and a tiny blob-detector ONNX (tests/helpers/blob_model.py) are used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgedet.config import RunConfig
from edgedet.pipeline import Pipeline, build_pipeline
from edgedet.sources import LiveSource, SourceConfig
from edgedet.types import FrameResult

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EDGEDET_DATA") or REPO.parent / "shared" / "data")  # tools/fetch_data.py
DEFAULT_VIDEO = DATA / "video" / "people_indoor_640x368.mp4"
DEFAULT_MODEL = DATA / "models" / "reference_onnx" / "yolov5n_320.onnx"
FRAMES_PER_HOUR_30FPS = 30 * 3600


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return threading.active_count()


class LoopingVideoCapture:
    """A cv2.VideoCapture over a file that restarts at the end and is paced to `fps` like a camera."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self._period_s = 1.0 / fps
        self._cap = cv2.VideoCapture(str(path))
        self._next_t = time.monotonic()

    def isOpened(self) -> bool:
        return bool(self._cap.isOpened())

    def read(self) -> tuple[bool, Any]:
        now = time.monotonic()
        if self._next_t > now:
            time.sleep(self._next_t - now)
        # a producer that fell behind does not burst to catch up: a camera does not either
        self._next_t = max(self._next_t + self._period_s, time.monotonic())
        ok, image = self._cap.read()
        if not ok:
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.path))
            ok, image = self._cap.read()
        return ok, image

    def get(self, prop: int) -> float:
        return 1.0 / self._period_s if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self._cap.release()


@dataclass
class Sample:
    t_s: float
    frames: int
    rss_mb: float
    fds: int
    threads: int
    tracks: int
    age_p99_ms: float


@dataclass
class Probe:
    """A sink that samples the process every `every_s` seconds (writes nothing)."""

    pipeline_ref: list[Pipeline]
    every_s: float
    stop_after_s: float
    samples: list[Sample] = field(default_factory=list)
    lost_frames: int = 0
    stop_requested: bool = False
    _ages_ms: list[float] = field(default_factory=list)
    _frames: int = 0
    _t0: float = field(default_factory=time.monotonic)
    _next_t: float = 0.0

    def write(self, result: FrameResult) -> None:
        now = time.monotonic()
        self._frames += 1
        self._ages_ms.append((now - result.frame.timestamp_s) * 1e3)
        if now >= self._next_t:
            self.sample(now)
            self._next_t = now + self.every_s
        if now - self._t0 >= self.stop_after_s:
            self.stop_requested = True

    def sample(self, now: float) -> None:
        tracker = self.pipeline_ref[0].tracker
        ages = np.asarray(self._ages_ms)
        self.samples.append(
            Sample(
                t_s=now - self._t0,
                frames=self._frames,
                rss_mb=rss_bytes() / 2**20,
                fds=open_fds(),
                threads=os_threads(),
                tracks=int(getattr(tracker, "num_tracks", -1)),
                age_p99_ms=float(np.percentile(ages, 99)) if ages.size else math.nan,
            )
        )
        self._ages_ms = []

    def close(self) -> None:
        """Nothing to finish; the after-close state is sampled by run_soak once the source closed too."""


def slope_per_hour(samples: list[Sample], attr: str, warmup_frac: float) -> float:
    """Least-squares growth of `attr` per 108000 frames (one hour of 30 FPS video), after the warm-up."""
    total = samples[-1].frames
    kept = [s for s in samples if s.frames >= warmup_frac * total]
    if len(kept) < 3:
        return math.nan
    x = np.array([s.frames for s in kept], np.float64)
    y = np.array([getattr(s, attr) for s in kept], np.float64)
    if np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0] * FRAMES_PER_HOUR_30FPS)


def run_soak(
    minutes: float,
    threads: int = 1,
    video: Path | None = None,
    model: Path | None = None,
    live_fps: float = 60.0,
    sample_s: float = 10.0,
    warmup_frac: float = 0.2,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the soak and return its report (see the module docstring)."""
    video = video if video is not None else (DEFAULT_VIDEO if DEFAULT_VIDEO.exists() else None)
    tmp = tempfile.TemporaryDirectory(prefix="edgedet-soak-")
    work = Path(out_dir) if out_dir is not None else Path(tmp.name)
    if model is None:
        if DEFAULT_MODEL.exists():
            model = DEFAULT_MODEL
        else:
            sys.path.insert(0, str(REPO))
            from tests.helpers.blob_model import blob_model

            model = blob_model(work / "blob.onnx", input_hw=(240, 320))
    # with a video, this placeholder (same rate, so the tracker steps at the right fps) is swapped out below
    source_uri = (
        f"synthetic:320x240@{live_fps:g},live" if video is None else f"synthetic:64x64@{live_fps:g},live"
    )
    config = RunConfig(
        source=source_uri,
        model=str(model),
        threads=threads,
        save_mot=str(work / "soak_mot.txt"),
        save_json=str(work / "soak.jsonl"),
        conf=0.25,
    )
    pipeline = build_pipeline(config)
    if video is not None:
        # Swap in the looped clip served like a camera (the registry has no "loop a file as live" form).
        pipeline.source.close()
        pipeline.source = LiveSource(
            lambda: LoopingVideoCapture(video, live_fps),
            f"{video.name} looped @{live_fps:g} live",
            SourceConfig(),
            fps=live_fps,
        )
    ref: list[Pipeline] = [pipeline]
    probe = Probe(ref, every_s=sample_s, stop_after_s=minutes * 60.0)
    pipeline.sinks.append(probe)
    start = Sample(0.0, 0, rss_bytes() / 2**20, open_fds(), os_threads(), 0, math.nan)
    summary = pipeline.run()
    # sinks and source are closed now: what a run leaves behind (reader threads are daemons that exit)
    time.sleep(1.0)
    frames = summary.frames
    after_close = Sample(probe.samples[-1].t_s, frames, rss_bytes() / 2**20, open_fds(), os_threads(), 0, 0.0)
    samples = probe.samples
    third = max(1, len(samples) // 3)
    report = {
        "source": pipeline.source.name,
        "model": str(model),
        "threads": threads,
        "minutes": round(summary.wall_s / 60.0, 2),
        "frames": frames,
        "fps": round(summary.fps, 2),
        "equivalent_hours_30fps": round(frames / FRAMES_PER_HOUR_30FPS, 4),
        "dropped_by_live_source": summary.dropped_frames,
        "rss_mb": {
            "before_build": round(start.rss_mb, 1),
            "first_sample": round(samples[0].rss_mb, 1),
            "end": round(samples[-1].rss_mb, 1),
            "after_close": round(after_close.rss_mb, 1),
        },
        "rss_growth_mb_per_hour": round(slope_per_hour(samples, "rss_mb", warmup_frac), 3),
        "fds": {
            "first_sample": samples[0].fds,
            "end": samples[-1].fds,
            "after_close": after_close.fds,
            "max": max(s.fds for s in samples),
        },
        "threads_os": {
            "first_sample": samples[0].threads,
            "end": samples[-1].threads,
            "after_close": after_close.threads,
            "max": max(s.threads for s in samples),
        },
        "tracks": {"max": max(s.tracks for s in samples), "end": samples[-1].tracks},
        "age_p99_ms": {
            "first_sample": round(samples[1].age_p99_ms if len(samples) > 1 else math.nan, 2),
            "last_sample": round(samples[-1].age_p99_ms, 2),
            "first_third_max": round(max(s.age_p99_ms for s in samples[1 : third + 1]), 2)
            if len(samples) > 1
            else math.nan,
            "last_third_max": round(max(s.age_p99_ms for s in samples[-third:]), 2),
            # medians of the per-sample p99s: one load spike on a shared machine moves a max, creep moves these
            "first_third_median": round(float(np.median([s.age_p99_ms for s in samples[1 : third + 1]])), 2)
            if len(samples) > 1
            else math.nan,
            "last_third_median": round(float(np.median([s.age_p99_ms for s in samples[-third:]])), 2),
        },
        "infer_p50_ms": round(summary.latency["infer"].p50_ms, 2) if "infer" in summary.latency else None,
        "samples": [s.__dict__ for s in samples],
    }
    tmp.cleanup()
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--live-fps", type=float, default=60.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--warmup-frac", type=float, default=0.2)
    ap.add_argument("--json", type=Path, default=None, help="write the full report (with samples) here")
    args = ap.parse_args(argv)
    report = run_soak(
        args.minutes, args.threads, args.video, args.model, args.live_fps, args.sample_s, args.warmup_frac
    )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    brief = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(brief, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
