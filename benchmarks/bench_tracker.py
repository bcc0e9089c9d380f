"""Tracker updates per second: edgedet vs the `trackers` package (SORT and ByteTrack) vs abewley/sort.

    python benchmarks/bench_tracker.py [--data ../shared/data/mot] [--repeats 5]     # MOTChallenge det.txt
    python benchmarks/bench_tracker.py --synthetic [--frames 300] [--sizes 10 50 200]
    python benchmarks/bench_tracker.py --jit-cost      # seconds to compile the numba kernels, and to load them

MOT mode (default): every sequence's det.txt, every frame, fed to each tracker in one process, interleaved
repeats. The same detections go in (MOTChallenge rows to each tracker's own detections type, built before the
clock starts); each tracker runs with its defaults at the sequence's frame rate. edgedet's SORT is
`TrackerConfig()`, its ByteTrack `TrackerConfig(second_association=True)`; the `trackers` package's
SORTTracker and ByteTrackTracker (pip install trackers); abewley/sort is the filterpy reference below.
edgedet runs twice: on its default path (numba kernels, edgedet[fast]) and with backend="numpy" (no numba). Times
are CPU time of the benchmark thread (time.thread_time: a shared machine's other processes do not count)
and wall time; the table shows the best of the repeats and the ratio edgedet / trackers.

Synthetic mode: scenes of 10, 50 and 200 objects at constant velocity; edgedet vs abewley/sort.
Also importable: `ReferenceSort` is abewley/sort's algorithm (filterpy KalmanFilter per track, IoU +
linear_sum_assignment), used by benchmarks/eval_mot_shared.py and the tests to reproduce SORT.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

from edgedet.tracking.sort import SortTracker, TrackerConfig
from edgedet.types import Detections

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"

# ---------------------------------------------------------------------------------------------------------
# abewley/sort (commit 2236dff), rewritten here without its plotting/CLI: same filter, same association,
# same bookkeeping. Kept faithful on purpose (per-track Python objects): it is the baseline.


def _iou_batch(bb_test: np.ndarray, bb_gt: np.ndarray) -> np.ndarray:
    bb_gt = np.expand_dims(bb_gt, 0)
    bb_test = np.expand_dims(bb_test, 1)
    xx1 = np.maximum(bb_test[..., 0], bb_gt[..., 0])
    yy1 = np.maximum(bb_test[..., 1], bb_gt[..., 1])
    xx2 = np.minimum(bb_test[..., 2], bb_gt[..., 2])
    yy2 = np.minimum(bb_test[..., 3], bb_gt[..., 3])
    w = np.maximum(0.0, xx2 - xx1)
    h = np.maximum(0.0, yy2 - yy1)
    wh = w * h
    return wh / (
        (bb_test[..., 2] - bb_test[..., 0]) * (bb_test[..., 3] - bb_test[..., 1])
        + (bb_gt[..., 2] - bb_gt[..., 0]) * (bb_gt[..., 3] - bb_gt[..., 1])
        - wh
    )


def _bbox_to_z(bbox: np.ndarray) -> np.ndarray:
    w = bbox[2] - bbox[0]
    h = bbox[3] - bbox[1]
    return np.array([bbox[0] + w / 2.0, bbox[1] + h / 2.0, w * h, w / float(h)]).reshape((4, 1))


def _x_to_bbox(x: np.ndarray) -> np.ndarray:
    w = np.sqrt(x[2] * x[3])
    h = x[2] / w
    return np.array([x[0] - w / 2.0, x[1] - h / 2.0, x[0] + w / 2.0, x[1] + h / 2.0]).reshape((1, 4))


def sort_kalman_filter(bbox: np.ndarray) -> KalmanFilter:
    """filterpy's KalmanFilter configured exactly as SORT's KalmanBoxTracker does."""
    kf = KalmanFilter(dim_x=7, dim_z=4)
    kf.F = np.array(
        [[1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0],
         [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1]], dtype=float
    )  # fmt: skip
    kf.H = np.array(
        [[1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]], float
    )
    kf.R[2:, 2:] *= 10.0
    kf.P[4:, 4:] *= 1000.0
    kf.P *= 10.0
    kf.Q[-1, -1] *= 0.01
    kf.Q[4:, 4:] *= 0.01
    kf.x[:4] = _bbox_to_z(bbox)
    return kf


class _KalmanBoxTracker:
    def __init__(self, bbox: np.ndarray, track_id: int) -> None:
        self.kf = sort_kalman_filter(bbox)
        self.time_since_update = 0
        self.id = track_id
        self.hits = 0
        self.hit_streak = 0
        self.age = 0
        self.score = float(bbox[4]) if len(bbox) > 4 else 1.0

    def update(self, bbox: np.ndarray) -> None:
        self.time_since_update = 0
        self.hits += 1
        self.hit_streak += 1
        self.kf.update(_bbox_to_z(bbox))
        self.score = float(bbox[4]) if len(bbox) > 4 else 1.0

    def predict(self) -> np.ndarray:
        if (self.kf.x[6] + self.kf.x[2]) <= 0:
            self.kf.x[6] *= 0.0
        self.kf.predict()
        self.age += 1
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1
        return _x_to_bbox(self.kf.x)

    def get_state(self) -> np.ndarray:
        return _x_to_bbox(self.kf.x)


def _associate(
    dets: np.ndarray, trks: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(trks) == 0:
        return np.empty((0, 2), dtype=int), np.arange(len(dets)), np.empty((0,), dtype=int)
    iou = _iou_batch(dets, trks)
    if min(iou.shape) > 0:
        a = (iou > iou_threshold).astype(np.int32)
        if a.sum(1).max() == 1 and a.sum(0).max() == 1:
            matched = np.stack(np.where(a), axis=1)
        else:
            r, c = linear_sum_assignment(-iou)
            matched = np.stack([r, c], axis=1)
    else:
        matched = np.empty(shape=(0, 2), dtype=int)
    unmatched_dets = [d for d in range(len(dets)) if d not in matched[:, 0]]
    unmatched_trks = [t for t in range(len(trks)) if t not in matched[:, 1]]
    matches = []
    for m in matched:
        if iou[m[0], m[1]] < iou_threshold:
            unmatched_dets.append(m[0])
            unmatched_trks.append(m[1])
        else:
            matches.append(m.reshape(1, 2))
    out = np.concatenate(matches, axis=0) if matches else np.empty((0, 2), dtype=int)
    return out, np.array(unmatched_dets, dtype=int), np.array(unmatched_trks, dtype=int)


class ReferenceSort:
    """abewley/sort's `Sort`: update(dets (N, 5) x1 y1 x2 y2 score) -> (M, 6) x1 y1 x2 y2 id score."""

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3) -> None:
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.trackers: list[_KalmanBoxTracker] = []
        self.frame_count = 0
        self._count = 0  # SORT uses a class counter; per instance here so runs do not leak ids

    def update(self, dets: np.ndarray) -> np.ndarray:
        self.frame_count += 1
        trks = np.zeros((len(self.trackers), 5))
        to_del = []
        for t, trk in enumerate(trks):
            pos = self.trackers[t].predict()[0]
            trk[:] = [pos[0], pos[1], pos[2], pos[3], 0]
            if np.any(np.isnan(pos)):
                to_del.append(t)
        trks = np.ma.compress_rows(np.ma.masked_invalid(trks))
        for t in reversed(to_del):
            self.trackers.pop(t)
        matched, unmatched_dets, _ = _associate(dets, trks, self.iou_threshold)
        for m in matched:
            self.trackers[m[1]].update(dets[m[0], :])
        for i in unmatched_dets:
            self.trackers.append(_KalmanBoxTracker(dets[i, :], self._count))
            self._count += 1
        ret = []
        i = len(self.trackers)
        for kbt in reversed(self.trackers):
            d = kbt.get_state()[0]
            if kbt.time_since_update < 1 and (
                kbt.hit_streak >= self.min_hits or self.frame_count <= self.min_hits
            ):
                ret.append(np.concatenate((d, [kbt.id + 1, kbt.score])).reshape(1, -1))
            i -= 1
            if kbt.time_since_update > self.max_age:
                self.trackers.pop(i)
        return np.concatenate(ret) if ret else np.empty((0, 6))


# ---------------------------------------------------------------------------------------------------------


def synthetic_scene(n_objects: int, n_frames: int, seed: int = 0) -> list[np.ndarray]:
    """Per frame (N, 5) x1 y1 x2 y2 score: objects on a 4000x4000 canvas at constant velocity, 1 px jitter,
    5 % missed detections and n/20 false positives per frame."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(200, 3800, (n_objects, 2))
    vel = rng.uniform(-3, 3, (n_objects, 2))
    wh = rng.uniform(30, 90, (n_objects, 2)) * np.array([0.5, 1.0])
    frames = []
    for f in range(n_frames):
        c = centre + vel * f + rng.normal(0, 1.0, (n_objects, 2))
        boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
        keep = rng.random(n_objects) > 0.05
        boxes = boxes[keep]
        n_fp = max(1, n_objects // 20)
        fp_c = rng.uniform(0, 4000, (n_fp, 2))
        fp = np.concatenate([fp_c - 20, fp_c + 20], axis=1)
        all_boxes = np.concatenate([boxes, fp])
        score = rng.uniform(0.5, 1.0, (len(all_boxes), 1))
        frames.append(np.concatenate([all_boxes, score], axis=1))
    return frames


def time_ours(frames: list[np.ndarray], fps: float) -> tuple[float, int]:
    tracker = SortTracker(TrackerConfig.sort(fps))
    dets = [Detections(f[:, :4], f[:, 4], np.zeros(len(f), np.int32)) for f in frames]
    t0 = time.perf_counter_ns()
    n_out = 0
    for i, d in enumerate(dets):
        n_out += len(tracker.update(d, i / fps))
    return (time.perf_counter_ns() - t0) / 1e6 / len(frames), n_out


def time_reference(frames: list[np.ndarray]) -> tuple[float, int]:
    tracker = ReferenceSort()
    t0 = time.perf_counter_ns()
    n_out = 0
    for f in frames:
        n_out += len(tracker.update(f))
    return (time.perf_counter_ns() - t0) / 1e6 / len(frames), n_out


def mot_sequences(data: Path) -> list[tuple[str, float, list[Detections]]]:
    """(name, frame rate, per-frame Detections for frames 1..seqLength) of every sequence under `data`."""
    from edgedet.motchallenge import read_det, read_seqinfo

    seqs = []
    for seq in sorted(p for p in data.iterdir() if (p / "det.txt").is_file()):
        info = read_seqinfo(seq / "seqinfo.ini")
        per = {f: rows.to_detections() for f, rows in read_det(seq / "det.txt").by_frame()}
        frames = [per.get(f, Detections.empty()) for f in range(1, info.seq_length + 1)]
        seqs.append((seq.name, float(info.frame_rate), frames))
    return seqs


def _clocks() -> tuple[int, int]:
    return time.thread_time_ns(), time.perf_counter_ns()


def run_edgedet(
    frames: list[Detections], fps: float, byte: bool, backend: str = "auto"
) -> tuple[float, float, int]:
    """(cpu s, wall s, boxes reported) for edgedet's tracker over `frames`."""
    tracker = SortTracker(TrackerConfig(nominal_fps=fps, second_association=byte), backend=backend)
    n_out = 0
    c0, w0 = _clocks()
    for i, d in enumerate(frames):
        n_out += len(tracker.update(d, i / fps))
    c1, w1 = _clocks()
    return (c1 - c0) / 1e9, (w1 - w0) / 1e9, n_out


def run_trackers(frames: list[Any], fps: float, byte: bool) -> tuple[float, float, int]:
    """The same for the `trackers` package's SORTTracker / ByteTrackTracker (frames: supervision Detections)."""
    from trackers import ByteTrackTracker, SORTTracker

    tracker = ByteTrackTracker(frame_rate=fps) if byte else SORTTracker(frame_rate=fps)
    n_out = 0
    c0, w0 = _clocks()
    for d in frames:
        out = tracker.update(d)
        n_out += int((out.tracker_id >= 0).sum()) if out.tracker_id is not None else 0
    c1, w1 = _clocks()
    return (c1 - c0) / 1e9, (w1 - w0) / 1e9, n_out


def run_reference(frames: list[np.ndarray]) -> tuple[float, float, int]:
    tracker = ReferenceSort()
    n_out = 0
    c0, w0 = _clocks()
    for f in frames:
        n_out += len(tracker.update(f))
    c1, w1 = _clocks()
    return (c1 - c0) / 1e9, (w1 - w0) / 1e9, n_out


def main_mot(data: Path, repeats: int) -> int:
    try:
        import supervision as sv
        import trackers  # noqa: F401
    except ImportError as exc:
        print(
            f"the MOT comparison needs the trackers package ({exc.name} is missing): pip install --no-deps "
            "trackers==2.6.1 supervision && pip install rich requests tqdm defusedxml 'pydeprecate<0.14' "
            "(--no-deps: trackers asks for opencv-python, which would shadow opencv-python-headless)"
        )
        return 1

    seqs = mot_sequences(data)
    if not seqs:
        print(f"no MOTChallenge sequences (det.txt + seqinfo.ini) under {data}")
        return 1
    inputs = []
    for name, fps, frames in seqs:
        svf = [
            sv.Detections(xyxy=d.xyxy.copy(), confidence=d.confidence.copy(), class_id=d.class_id.copy())
            if len(d)
            else sv.Detections.empty()
            for d in frames
        ]
        ref = [np.c_[d.xyxy, d.confidence].astype(np.float64) for d in frames]
        inputs.append((name, fps, frames, svf, ref))
    backend = SortTracker().backend  # numba where edgedet[fast] is installed (compiles or loads it now)
    runners = {
        "edgedet SORT": lambda fr, svf, ref, fps: run_edgedet(fr, fps, False),
        "edgedet SORT numpy": lambda fr, svf, ref, fps: run_edgedet(fr, fps, False, "numpy"),
        "trackers SORT": lambda fr, svf, ref, fps: run_trackers(svf, fps, False),
        "edgedet ByteTrack": lambda fr, svf, ref, fps: run_edgedet(fr, fps, True),
        "edgedet Byte numpy": lambda fr, svf, ref, fps: run_edgedet(fr, fps, True, "numpy"),
        "trackers ByteTrack": lambda fr, svf, ref, fps: run_trackers(svf, fps, True),
        "abewley/sort": lambda fr, svf, ref, fps: run_reference(ref),
    }
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for _ in range(repeats):  # interleaved, so machine noise hits every tracker alike
        for name, fps, frames, svf, ref in inputs:
            for label, fn in runners.items():
                cpu, wall, _ = fn(frames, svf, ref, fps)
                old = best.get((label, name), (math.inf, math.inf))
                best[(label, name)] = (min(old[0], cpu), min(old[1], wall))
    names = [s[0] for s in seqs] + ["all"]
    n_frames = {s[0]: len(s[2]) for s in seqs}
    n_frames["all"] = sum(n_frames.values())
    for label in runners:
        best[(label, "all")] = (
            sum(best[(label, s)][0] for s in n_frames if s != "all"),
            sum(best[(label, s)][1] for s in n_frames if s != "all"),
        )

    def ups(label: str, seq: str, k: int) -> float:
        return n_frames[seq] / best[(label, seq)][k]

    print(
        f"updates per second, CPU time (wall time), best of {repeats}; {n_frames['all']} frames in all; "
        f"edgedet's default path: {backend}"
    )
    ratios = {
        "SORT x": ("edgedet SORT", "trackers SORT"),
        "Byte x": ("edgedet ByteTrack", "trackers ByteTrack"),
        "SORT x np": ("edgedet SORT numpy", "trackers SORT"),
        "Byte x np": ("edgedet Byte numpy", "trackers ByteTrack"),
    }
    head = f"{'sequence':16}" + "".join(f"{label:>22}" for label in runners)
    print(head + "".join(f"{r:>10}" for r in ratios))
    for seq in names:
        cells = "".join(f"{ups(label, seq, 0):>13.0f} ({ups(label, seq, 1):>6.0f})" for label in runners)
        rs = "".join(f"{ups(a, seq, 0) / ups(b, seq, 0):>9.1f}x" for a, b in ratios.values())
        print(f"{seq:16}{cells}{rs}")
    return 0


def main_jit_cost() -> int:
    """Seconds a fresh process takes to make its first numba tracker: with an empty numba cache (compiles every
    kernel) and then with that cache filled (loads them), each in its own subprocess."""
    import os
    import subprocess
    import sys
    import tempfile

    code = (
        "import time; t = time.perf_counter(); from edgedet.tracking.sort import SortTracker; "
        "t1 = time.perf_counter(); SortTracker(backend='numba'); "
        "print(f'{t1 - t:.2f} {time.perf_counter() - t1:.2f}')"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty cache (compiles)", "filled cache (loads)"):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            imp, first = out.stdout.split()
            print(f"{label:24} import edgedet.tracking.sort {imp} s, first SortTracker (numba) {first} s")
    return 0


def main_synthetic(frames_n: int, repeats: int, sizes: list[int]) -> int:
    print(f"{'objects':>8} {'ours ms/frame':>14} {'filterpy SORT':>14} {'ratio':>7}  (median of {repeats})")
    for n in sizes:
        frames = synthetic_scene(n, frames_n, seed=n)
        time_ours(frames[:20], 30.0)  # warm-up (imports, caches)
        ours, ref = [], []
        for _ in range(repeats):  # interleaved so machine noise hits both alike
            o, n_o = time_ours(frames, 30.0)
            r, n_r = time_reference(frames)
            ours.append(o)
            ref.append(r)
        mo, mr = statistics.median(ours), statistics.median(ref)
        print(f"{n:>8} {mo:>14.3f} {mr:>14.3f} {mr / mo:>6.1f}x  (boxes reported: {n_o} vs {n_r})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of MOTChallenge sequences")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--synthetic", action="store_true", help="synthetic scenes instead of the MOT det.txt files"
    )
    ap.add_argument("--frames", type=int, default=300, help="synthetic: frames per scene")
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 50, 200], help="synthetic: objects per scene"
    )
    ap.add_argument("--jit-cost", action="store_true", help="time compiling and loading the numba kernels")
    args = ap.parse_args(argv)
    if args.jit_cost:
        return main_jit_cost()
    if args.synthetic:
        return main_synthetic(args.frames, args.repeats, args.sizes)
    return main_mot(args.data, args.repeats)


if __name__ == "__main__":
    raise SystemExit(main())
