"""What a live run would score: replay a MOTChallenge sequence at its frame rate with a detector that takes time.

The model is edgedet's own loop (`Pipeline.run`) on a live, newest-frame-wins source, driven by a simulated
clock instead of real time (so the result is the same on every machine and in CI):

- frame k (1-based) arrives at (k - 1) / frameRate seconds;
- the loop takes the newest frame that has arrived; when nothing new has arrived it waits for the next one;
- the scheduler (`--detect-every` or `--target-fps`, the same classes `run` uses) decides detect or track-only;
- a detector frame f takes `latency_ms + track_ms` of loop time: its detections (det.txt's rows of frame f) reach
  the tracker when that time has passed, as `tracker.update(dets_f, t_f)`; a track-only frame takes `track_ms`;
- frames that arrived while the loop was busy and were superseded by a newer frame are "missed". With
  missed="predict" each gets the tracker's prediction, computed in frame order once the loop is free
  (after the running detection was merged), so it is late but uses only frames up to its own; with
  missed="drop" (the CLI's default) it gets no output at all, which is what `edgedet run` on a camera writes
  for a dropped frame.

The scheduler learns from the simulated frame times (`record(detected, frame_ms)`), as in a live run where the
wait for the camera is not counted. `age_ms` of an output frame is the time from its arrival to its output.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError, DataError
from edgedet.motchallenge import MotRows, SeqInfo, read_det, read_seqinfo
from edgedet.scheduler import make_scheduler
from edgedet.tracking import TrackerConfig, make_tracker, step
from edgedet.types import Detections

__all__ = ["MISSED_POLICIES", "RealtimeResult", "simulate_realtime"]

MISSED_POLICIES = ("predict", "drop")
# Arrival times are (k - 1) / fps in float: a run that ends exactly on an arrival must see that frame.
_CLOCK_EPS_S = 1e-9


@dataclass(frozen=True)
class RealtimeResult:
    """The tracker output of a simulated live run and how the loop spent its time.

    rows: MOTChallenge tracker rows (frame, id, xywh, score). frame_kind: (seq_length,) array of "detect",
    "track", "missed" (predicted late) or "dropped" (no output), per 1-based frame at index frame - 1.
    age_ms: (seq_length,) arrival-to-output time per frame in ms (NaN for dropped frames).
    loop_s: simulated time the loop ran until the last output. achieved_fps: frames processed (detector or
    track-only, not missed) per second of loop time.
    """

    rows: MotRows
    frame_kind: npt.NDArray[np.str_]
    age_ms: npt.NDArray[np.float64]
    loop_s: float
    latency_ms: float
    track_ms: float
    intervals: list[int] = field(default_factory=list)

    @property
    def detector_frames(self) -> int:
        return int(np.count_nonzero(self.frame_kind == "detect"))

    @property
    def track_only_frames(self) -> int:
        return int(np.count_nonzero(self.frame_kind == "track"))

    @property
    def missed_frames(self) -> int:
        return int(np.count_nonzero((self.frame_kind == "missed") | (self.frame_kind == "dropped")))

    @property
    def achieved_fps(self) -> float:
        processed = self.detector_frames + self.track_only_frames
        return processed / self.loop_s if self.loop_s > 0 else float("nan")

    def summary(self) -> dict[str, float | int]:
        ages = self.age_ms[np.isfinite(self.age_ms)]
        return {
            "latency_ms": round(self.latency_ms, 3),
            "track_ms": round(self.track_ms, 3),
            "frames": len(self.frame_kind),
            "detector_frames": self.detector_frames,
            "track_only_frames": self.track_only_frames,
            "missed_frames": self.missed_frames,
            "achieved_fps": round(self.achieved_fps, 2),
            "age_ms_p50": round(float(np.percentile(ages, 50)), 2) if ages.size else float("nan"),
            "age_ms_p99": round(float(np.percentile(ages, 99)), 2) if ages.size else float("nan"),
        }


def simulate_realtime(
    dets_path: str | Path | MotRows,
    seqinfo: str | Path | SeqInfo,
    config: TrackerConfig | None = None,
    *,
    latency_ms: float,
    detect_every: int = 1,
    target_fps: float | None = None,
    max_interval: int = 10,
    track_ms: float = 1.0,
    missed: str = "predict",
    tracker: str = "sort",
) -> RealtimeResult:
    """Replay det.txt through the tracker as a live loop with a `latency_ms` detector would (module docstring).

    latency_ms: detector time per detector frame (preprocess + infer + postprocess), ms, >= 0.
    track_ms: time of a tracker call and the rest of a frame's work, ms, > 0 (a track-only frame's cost).
    detect_every / target_fps / max_interval: the scheduler, as in `edgedet run`.
    With latency_ms + track_ms <= one frame interval and detect_every 1 the output equals
    `track_sequence(..., detect_every=1)`; with latency_ms + track_ms equal to k frame intervals it equals
    `track_sequence(..., detect_every=k)` (missed="predict") except on the last k frames, where the newest
    frame is the sequence's last one sooner than every k-th. tracker: a name in the tracker registry.
    """
    if not (math.isfinite(latency_ms) and latency_ms >= 0):
        raise ConfigError(f"--latency-ms must be a number >= 0, got {latency_ms}")
    if not (math.isfinite(track_ms) and track_ms > 0):
        raise ConfigError(f"track time must be a positive number of ms, got {track_ms}")
    if missed not in MISSED_POLICIES:
        raise ConfigError(
            f"unknown missed-frame policy {missed!r}: choose one of {', '.join(MISSED_POLICIES)}"
        )
    info = seqinfo if isinstance(seqinfo, SeqInfo) else read_seqinfo(seqinfo)
    dets = dets_path if isinstance(dets_path, MotRows) else read_det(dets_path)
    if len(dets) and int(dets.frame.max()) > info.seq_length:
        raise DataError(
            f"{info.name}: det.txt has rows on frame {int(dets.frame.max())} beyond seqLength {info.seq_length}: "
            "check that det.txt and seqinfo.ini belong to the same sequence"
        )
    scheduler = make_scheduler(detect_every, target_fps, max_interval)
    cfg = config if config is not None else TrackerConfig()
    if cfg.nominal_fps is None:
        cfg = dataclasses.replace(cfg, nominal_fps=info.frame_rate)
    trk = make_tracker(tracker, cfg)
    per_frame = {f: rows.to_detections() for f, rows in dets.by_frame()}
    empty = Detections.empty()

    n = info.seq_length
    kind = np.full(n, "dropped", dtype="<U7")
    age_ms = np.full(n, np.nan)
    outputs: dict[int, Detections] = {}
    intervals: list[int] = []
    now_s = 0.0
    last = 0  # last frame the loop has handled (processed or missed)
    while last < n:
        # newest frame that has arrived by `now_s`: arrival (k - 1) / fps <= now  <=>  k <= now * fps + 1
        newest = min(n, math.floor(now_s * info.frame_rate + _CLOCK_EPS_S) + 1)
        if newest <= last:
            now_s = max(now_s, info.timestamp_s(last + 1))  # idle until the next frame arrives
            continue
        for k in range(last + 1, newest):  # superseded while the loop was busy
            if missed == "predict":
                outputs[k] = step(trk, info.timestamp_s(k))
                kind[k - 1] = "missed"
                age_ms[k - 1] = (now_s - info.timestamp_s(k)) * 1e3
        j = newest
        t_j = info.timestamp_s(j)
        detect = scheduler.should_detect(t_j)
        outputs[j] = step(trk, t_j, per_frame.get(j, empty) if detect else None)
        cost_ms = latency_ms + track_ms if detect else track_ms
        kind[j - 1] = "detect" if detect else "track"
        scheduler.record(detect, cost_ms)
        intervals.append(scheduler.interval)
        now_s += cost_ms / 1e3
        age_ms[j - 1] = (now_s - t_j) * 1e3
        last = j
    return RealtimeResult(
        rows=MotRows.from_tracks(outputs),
        frame_kind=kind,
        age_ms=age_ms,
        loop_s=now_s,
        latency_ms=float(latency_ms),
        track_ms=float(track_ms),
        intervals=intervals,
    )
