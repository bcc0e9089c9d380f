"""SORT (Bewley et al. 2016) with the Kalman step vectorised over all tracks, lifetimes in seconds,
track-only (predict) frames, optional ByteTrack-style second association and camera-motion compensation.

Configured as SORT (``TrackerConfig.sort(fps)``) it reproduces abewley/sort: the same filter, the same IoU
association, the same confirmation rule (reported once matched ``min_hits`` times after the detection that
started the track, or during the first ``min_hits`` detector frames), tracks reported only on frames they are
matched, with their corrected (posterior) boxes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet import _optional
from edgedet.boxes import clip_xyxy
from edgedet.errors import ConfigError
from edgedet.tracking.assignment import NEGATE, associate, iou_neg, match_gated, neg_areas
from edgedet.tracking.kalman import BoxKalmanFilter, boxes_of, neg_boxes_of, z_of
from edgedet.types import Detections

# Float noise in timestamps must not decide whether a track one frame old survives a one-frame max_age.
_TIME_EPS_S = 1e-6

#: How a `SortTracker` made without `backend=` runs its per-frame work: "auto" (numba when it is installed,
#: tracking.kernels, else numpy), "numba" (the same, but numba must be installed) or "numpy" (vectorised
#: numpy, no extra package). Configs the kernels do not cover (gate_first=False, IoU thresholds of 0) use
#: numpy under either. Both paths give the same tracks; tests set this to run everything on one path.
DEFAULT_BACKEND = "auto"
BACKENDS = ("auto", "numba", "numpy")

# Kernels compiled (or loaded from numba's cache) in this process: the first numba tracker runs a few
# frames through every kernel at construction, so no live frame waits on the compiler.
_warmed = False
_kernels: Any = None  # tracking.kernels, imported by the first numba tracker (numba's import takes ~0.2 s)


def _load_kernels() -> Any:
    """tracking.kernels, imported and warmed once per process (at a numba tracker's construction, or on first
    use by a tracker unpickled in a fresh process)."""
    global _kernels
    if _kernels is None:
        from edgedet.tracking import kernels

        _kernels = kernels
        _warm_kernels()
    return _kernels


@dataclass(frozen=True)
class TrackerConfig:
    """How the tracker associates, confirms, keeps and reports tracks. Times are seconds.

    iou_threshold: a detection matches a track only with IoU >= this.
    min_hits: matches after the starting detection before a track is reported.
    max_age_s: a track unmatched for longer than this is deleted.
    report_lost_s: confirmed tracks unmatched for up to this long are still reported, with predicted boxes
        (0 = SORT: only tracks matched on the latest detector frame are reported).
    keep_confirmed: once confirmed, a track stays confirmed after a miss (False = SORT, which needs min_hits
        new consecutive matches before it reports the track again).
    nominal_fps: the frame rate that defines one Kalman step, dt = elapsed_s * nominal_fps. None = 30 in
        SortTracker; `track_sequence` and the pipeline set it to the source's frame rate, which makes a
        constant-rate stream step exactly like SORT.
    score_threshold: detections scoring below this are not used in the first association (and, with
        second_association off, not at all). new_track_score: the score a detection needs to start a track
        (None = score_threshold).
    second_association: ByteTrack's second pass: detections with low_score_threshold <= score <
        score_threshold are matched, at second_iou_threshold, to tracks the first pass left unmatched that
        were matched on the previous detector frame; they never start tracks.
    class_aware: only match detections and tracks of the same class_id.
    gate_first: drop pairs under the IoU threshold before solving the assignment (False = abewley/sort,
        which solves on raw IoU and drops them after, occasionally losing a valid match).
    """

    # Defaults tuned on the five shared MOT sequences (benchmarks/eval_mot_shared.py); SORT's in comments.
    iou_threshold: float = 0.2  # SORT 0.3
    min_hits: int = 2  # SORT 3
    max_age_s: float = 2.0  # SORT 1 frame
    report_lost_s: float = 0.1  # SORT 0
    keep_confirmed: bool = True  # SORT False
    nominal_fps: float | None = None
    score_threshold: float = 0.6  # SORT 0 (uses every detection)
    new_track_score: float | None = None
    second_association: bool = False
    low_score_threshold: float = 0.1
    second_iou_threshold: float = 0.5
    class_aware: bool = False
    gate_first: bool = True

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.iou_threshold <= 1.0, "iou_threshold must be in [0, 1]"),
            (0.0 <= self.second_iou_threshold <= 1.0, "second_iou_threshold must be in [0, 1]"),
            (self.min_hits >= 0, "min_hits must be >= 0"),
            (self.max_age_s >= 0 and math.isfinite(self.max_age_s), "max_age_s must be a finite number >= 0"),
            (self.report_lost_s >= 0, "report_lost_s must be >= 0"),
            (self.nominal_fps is None or self.nominal_fps > 0, "nominal_fps must be > 0 (or None)"),
            (
                not self.second_association or self.low_score_threshold <= self.score_threshold,
                "low_score_threshold must be <= score_threshold when second_association is on",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"TrackerConfig: {msg}: fix the value passed")

    def with_overrides(self, **changes: Any) -> TrackerConfig:
        """A copy with the given fields changed; None means "keep this config's value" (unset CLI flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def sort(
        cls, fps: float, max_age_frames: int = 1, min_hits: int = 3, iou_threshold: float = 0.3
    ) -> TrackerConfig:
        """abewley/sort's behaviour at a stream of `fps` frames per second (its defaults: 1, 3, 0.3)."""
        return cls(
            iou_threshold=iou_threshold,
            min_hits=min_hits,
            max_age_s=max_age_frames / fps,
            report_lost_s=0.0,
            keep_confirmed=False,
            nominal_fps=fps,
            score_threshold=0.0,
            second_association=False,
            gate_first=False,
        )


def tracker_config_from_flags(flags: Any, **extra: Any) -> TrackerConfig:
    """The default TrackerConfig with a command config's tracker flags applied (`track_max_age_s`,
    `track_min_hits`, `track_iou`, `track_score`, `second_association`; None = default) and `extra` fields."""
    return TrackerConfig().with_overrides(
        max_age_s=getattr(flags, "track_max_age_s", None),
        min_hits=getattr(flags, "track_min_hits", None),
        iou_threshold=getattr(flags, "track_iou", None),
        score_threshold=getattr(flags, "track_score", None),
        second_association=getattr(flags, "second_association", None),
        **extra,
    )


class SortTracker:
    """Multi-object tracker. Call `update` on frames the detector ran on, `predict` on the others.

    Track ids come from this instance (1, 2, 3, ...). Tracks unmatched for more than `max_age_s` are deleted
    on the next call, so the state stays bounded on long runs.

    Per-track bookkeeping lives in arrays beside the filter's (one row per track, same order), each in the
    dtype it is reported in, so a frame costs a fixed few numpy calls whatever the number of tracks: `_count`
    columns hit streak and consecutive misses (detector frames), `_ids`, `_cls`, `_conf` (last matched),
    `_last_match_s`, `_confirmed`.
    """

    def __init__(self, config: TrackerConfig | None = None, backend: str | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self._fps = float(self.config.nominal_fps) if self.config.nominal_fps is not None else 30.0
        self.backend = self._choose_backend(
            DEFAULT_BACKEND if backend is None else backend, backend is not None
        )
        self._fast = (
            self.backend == "numba"
        )  # the kernels module is held globally (_kernels): trackers pickle
        if self.backend == "numba":
            _load_kernels()
            self._score32 = np.float32(self.config.score_threshold)
            self._low32 = np.float32(
                self.config.low_score_threshold if self.config.second_association else np.inf
            )
            nts = self.config.new_track_score
            self._new32 = np.float32(
                nts if nts is not None and nts > self.config.score_threshold else -np.inf
            )
        self.reset()

    def _choose_backend(self, backend: str, strict: bool) -> str:
        """ "numba" or "numpy" for the asked backend and this config (see `_optional.choose_backend`)."""
        cfg = self.config
        # The kernels cover the gated association (the default); SORT's solve-then-filter and thresholds of 0
        # keep the numpy path.
        covered = (
            cfg.gate_first
            and cfg.iou_threshold > 0
            and (not cfg.second_association or cfg.second_iou_threshold > 0)
        )
        return _optional.choose_backend(
            backend,
            BACKENDS,
            strict=strict,
            covered=covered,
            what="tracker",
            not_covered="needs gate_first=True and IoU thresholds > 0: use backend 'numpy' or 'auto' for this config",
        )

    def reset(self) -> None:
        """Forget every track and restart ids at 1."""
        self._kf = BoxKalmanFilter()
        self._prm = _kernel_params(self._kf)
        self._count = np.zeros((0, 2), np.int64)
        self._ids = np.zeros(0, np.int32)
        self._cls = np.zeros(0, np.int32)
        self._conf = np.zeros(0, np.float32)
        self._last_match_s = np.zeros(0, np.float64)
        self._confirmed = np.zeros(0, bool)
        self._next_id = 1
        self._last_step_s: float | None = None
        self._updates = 0

    @property
    def num_tracks(self) -> int:
        """Tracks held (confirmed or not)."""
        return len(self._confirmed)

    # --- internals -------------------------------------------------------------------------------------

    def _keep(self, mask: npt.NDArray[np.bool_]) -> None:
        self._kf.keep(mask)
        self._count = self._count[mask]
        self._ids = self._ids[mask]
        self._cls = self._cls[mask]
        self._conf = self._conf[mask]
        self._last_match_s = self._last_match_s[mask]
        self._confirmed = self._confirmed[mask]

    def _step(self, timestamp_s: float, warp: npt.ArrayLike | None) -> npt.NDArray[np.float64]:
        """Warp, then one predict with the real time since the previous step; drop tracks gone invalid.

        Returns the predicted boxes (T, 4) of the tracks kept, negated (x1, y1, -x2, -y2: see
        assignment.NEGATE). Runs under the caller's np.errstate.
        """
        dt = self._advance(timestamp_s)
        kf = self._kf
        if warp is not None:
            kf.warp(warp)
        if not len(kf):
            return np.zeros((0, 4))
        kf.predict(dt)
        boxes = neg_boxes_of(kf.state)
        # SORT drops tracks whose predicted box is NaN (area times aspect went negative). One sum tells
        # whether any coordinate is not finite; the per-row test runs only then.
        if not math.isfinite(float(boxes.sum())):
            finite = np.all(np.isfinite(boxes), axis=1)
            self._keep(finite)
            boxes = boxes[finite]
        return boxes

    def _advance(self, timestamp_s: float) -> float:
        """Check `timestamp_s` and move the clock to it; the Kalman step dt in nominal frames."""
        if not math.isfinite(timestamp_s):
            raise ValueError(f"timestamp_s must be finite, got {timestamp_s}: pass the frame's capture time")
        if self._last_step_s is not None and timestamp_s < self._last_step_s:
            raise ValueError(
                f"timestamp_s went backwards ({timestamp_s} < {self._last_step_s}): pass monotonic timestamps "
                "or call reset() when the stream restarts"
            )
        dt = 0.0 if self._last_step_s is None else (timestamp_s - self._last_step_s) * self._fps
        self._last_step_s = timestamp_s
        return float(dt)

    def _expire(self, timestamp_s: float) -> None:
        if not self.num_tracks:
            return
        limit = self.config.max_age_s + _TIME_EPS_S
        last = self._last_match_s
        if timestamp_s - float(last.min()) > limit:
            self._keep(timestamp_s - last <= limit)

    def _report(self, timestamp_s: float, after_update: bool = False) -> Detections:
        cfg = self.config
        warmup = self._updates <= cfg.min_hits  # SORT reports every track matched during the first frames
        if after_update and cfg.report_lost_s > 0 and not warmup:
            # Right after an update every current track was matched (or started) now, so "current or lost
            # for at most report_lost_s" is the time test alone.
            show = (timestamp_s - self._last_match_s <= cfg.report_lost_s + _TIME_EPS_S) & self._confirmed
        else:
            current = self._count[:, 1] == 0
            if cfg.report_lost_s > 0:
                # confirmed tracks matched now or lost for at most report_lost_s (+ anything current in warm-up)
                shown = current | (timestamp_s - self._last_match_s <= cfg.report_lost_s + _TIME_EPS_S)
                show = (current | (shown & self._confirmed)) if warmup else (shown & self._confirmed)
            else:
                show = current if warmup else current & self._confirmed
        idx = show.nonzero()[0]
        return Detections.unchecked(
            boxes_of(self._kf.state[idx]).astype(np.float32),
            self._conf[idx],
            self._cls[idx],
            self._ids[idx],
        )

    # --- public ----------------------------------------------------------------------------------------

    def update(self, dets: Detections, timestamp_s: float, warp: npt.ArrayLike | None = None) -> Detections:
        """Advance to `timestamp_s`, associate `dets` (frame pixels), and return the reported tracks.

        warp: optional 2x3 affine from previous-frame to current-frame pixels, applied before predicting.
        Returns Detections with track_id set: tracks matched now (corrected boxes, the matched detection's
        confidence and class) that are confirmed, plus, with report_lost_s > 0, confirmed tracks lost for up
        to report_lost_s (predicted boxes, last matched confidence).
        """
        if self._fast:
            return self._update_fast(dets, float(timestamp_s), warp)
        # One error-state guard for the whole call: NaN boxes are SORT's sign of a lost filter, not a fault.
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._update(dets, timestamp_s, warp)

    def _associate(
        self,
        det_neg: npt.NDArray[np.float64],
        det_area: npt.NDArray[np.float64],
        trk_neg: npt.NDArray[np.float64],
        trk_area: npt.NDArray[np.float64],
        iou_threshold: float,
        det_cls: npt.NDArray[np.int32] | None,
        trk_cls: npt.NDArray[np.int32] | None,
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(det rows, track rows) matched for negated boxes; the gated path is `assignment.assign` without
        its checks, the others (SORT's solve-then-filter, a threshold of 0) go through it."""
        if not self.config.gate_first or iou_threshold <= 0:
            got = associate(
                det_neg * NEGATE, trk_neg * NEGATE, iou_threshold, det_cls, trk_cls, self.config.gate_first
            )
            return got.matches[:, 0], got.matches[:, 1]
        iou = iou_neg(det_neg, trk_neg, det_area, trk_area)
        if det_cls is not None and trk_cls is not None:
            iou[det_cls[:, None] != trk_cls[None, :]] = 0.0
        return match_gated(iou, iou_threshold)

    def _update(self, dets: Detections, timestamp_s: float, warp: npt.ArrayLike | None) -> Detections:
        cfg = self.config
        trk_boxes = self._step(timestamp_s, warp)
        self._updates += 1
        n_trk = len(trk_boxes)

        conf = dets.confidence
        det_all = dets.xyxy.astype(np.float64)
        det_neg = det_all * NEGATE
        high = (conf >= cfg.score_threshold).nonzero()[0]
        cls_d = dets.class_id if cfg.class_aware else None
        cls_t = self._cls if cfg.class_aware else None
        trk_area = neg_areas(trk_boxes)
        det_high = det_neg[high]

        rows, t = self._associate(
            det_high,
            neg_areas(det_high),
            trk_boxes,
            trk_area,
            cfg.iou_threshold,
            None if cls_d is None else cls_d[high],
            cls_t,
        )
        d = high[rows]

        if cfg.second_association and len(t) < n_trk:
            free = self._count[:, 1] == 0  # ByteTrack only rescues tracks that were being tracked
            free[t] = False
            pool = np.flatnonzero(free)
            low = np.flatnonzero((conf >= cfg.low_score_threshold) & (conf < cfg.score_threshold))
            if low.size and pool.size:
                det_low = det_neg[low]
                r2, c2 = self._associate(
                    det_low,
                    neg_areas(det_low),
                    trk_boxes[pool],
                    trk_area[pool],
                    cfg.second_iou_threshold,
                    None if cls_d is None else cls_d[low],
                    None if cls_t is None else cls_t[pool],
                )
                if r2.size:
                    d = np.concatenate([d, low[r2]])
                    t = np.concatenate([t, pool[c2]])

        if t.size:
            self._kf.update_rows(t, z_of(det_all[d]))
        if n_trk:
            count = self._count
            matched = np.zeros(n_trk, bool)
            matched[t] = True
            count += 1  # hit streak and misses, then reset where (un)matched
            count[:, 0] *= matched
            count[t, 1] = 0
            self._cls[t] = dets.class_id[d]
            self._conf[t] = conf[d]
            self._last_match_s[t] = timestamp_s
            now_confirmed = count[:, 0] >= cfg.min_hits
            self._confirmed = (self._confirmed | now_confirmed) if cfg.keep_confirmed else now_confirmed

        # New tracks from unmatched confident detections (SORT: a new track has zero hits so far).
        if len(rows) < len(high):
            taken = np.zeros(len(high), bool)
            taken[rows] = True
            starts = high[~taken]
            if cfg.new_track_score is not None and cfg.new_track_score > cfg.score_threshold:
                starts = starts[conf[starts] >= cfg.new_track_score]
            n = starts.size
            if n:
                self._kf.initiate(z_of(det_all[starts]))
                self._count = np.concatenate([self._count, np.zeros((n, 2), np.int64)])
                self._ids = np.concatenate(
                    [self._ids, np.arange(self._next_id, self._next_id + n, dtype=np.int32)]
                )
                self._next_id += n
                self._cls = np.concatenate([self._cls, dets.class_id[starts]])
                self._conf = np.concatenate([self._conf, conf[starts]])
                self._last_match_s = np.concatenate([self._last_match_s, np.full(n, timestamp_s)])
                self._confirmed = np.concatenate([self._confirmed, np.full(n, cfg.min_hits == 0)])

        self._expire(timestamp_s)
        return self._report(timestamp_s, after_update=True)

    def predict(self, timestamp_s: float, warp: npt.ArrayLike | None = None) -> Detections:
        """A frame without detections: one predict step with the real time since the last step.

        Returns the confirmed tracks matched on the latest detector frame (plus, with report_lost_s > 0,
        confirmed tracks lost for up to report_lost_s), with predicted boxes and their last confidence.
        """
        if self._fast:
            return self._predict_fast(float(timestamp_s), warp)
        with np.errstate(invalid="ignore", divide="ignore"):
            self._step(timestamp_s, warp)
            self._expire(timestamp_s)
            return self._report(timestamp_s)

    # --- the numba path (tracking.kernels): the same steps as `_update` / `predict`, a few calls a frame --------

    def _step_fast(self, timestamp_s: float, warp: npt.ArrayLike | None) -> float:
        dt = self._advance(timestamp_s)
        if warp is not None:
            with np.errstate(invalid="ignore"):  # a lost filter's inf/NaN state: dropped after the predict
                self._kf.warp(warp)
        return dt

    def _drop_nonfinite(self, trk_neg: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """SORT drops tracks whose predicted box is not finite (rare: the kernels only count them)."""
        with np.errstate(invalid="ignore"):
            finite = np.all(np.isfinite(trk_neg), axis=1)
        self._keep(finite)
        return finite

    def _update_fast(self, dets: Detections, timestamp_s: float, warp: npt.ArrayLike | None) -> Detections:
        cfg = self.config
        k = _kernels if _kernels is not None else _load_kernels()
        dt = self._step_fast(timestamp_s, warp)
        self._updates += 1
        xyxy, conf, dcls = _writable(dets.xyxy), _writable(dets.confidence), _writable(dets.class_id)
        ca = bool(cfg.class_aware)
        thr = float(cfg.iou_threshold)
        trk, bad, det_neg, det_area, trk_area, high, low, g, rows, cols, trivial = k.first_pass(
            self._kf.state, dt, self._prm, xyxy, conf, self._score32, self._low32, thr, dcls, self._cls, ca
        )
        if bad:
            finite = self._drop_nonfinite(trk)
            trk, trk_area = trk[finite], trk_area[finite]
            tidx = np.arange(len(trk))
            g, rows, cols, trivial = k.gate(
                det_neg, det_area, high, trk, trk_area, tidx, thr, dcls, self._cls, ca
            )
        if not trivial:  # contested: the exact solver, as the numpy path
            rows, cols = match_gated(g, thr)
        d, t = high[rows], cols
        if cfg.second_association and len(t) < len(trk) and low.size:
            thr2 = float(cfg.second_iou_threshold)
            pool, g2, r2, c2, trivial2 = k.second_pass(
                trk, trk_area, self._count, t, det_neg, det_area, low, thr2, dcls, self._cls, ca
            )
            if not trivial2:
                r2, c2 = match_gated(g2, thr2)
            if r2.size:
                d = np.concatenate([d, low[r2]])
                t = np.concatenate([t, pool[c2]])
        out = k.finish(
            self._kf.state, self._count, self._ids, self._cls, self._conf, self._last_match_s, self._confirmed,
            xyxy, conf, dcls, d, t, high, rows, self._new32, timestamp_s, int(cfg.min_hits),
            bool(cfg.keep_confirmed), self._next_id, cfg.max_age_s + _TIME_EPS_S, float(cfg.report_lost_s),
            cfg.report_lost_s + _TIME_EPS_S, self._updates <= cfg.min_hits, self._prm,
        )  # fmt: skip
        (
            self._kf.state,
            self._count,
            self._ids,
            self._cls,
            self._conf,
            self._last_match_s,
            self._confirmed,
        ) = out[:7]
        self._next_id += int(out[11])
        return Detections.unchecked(out[7], out[8], out[9], out[10])

    def _predict_fast(self, timestamp_s: float, warp: npt.ArrayLike | None) -> Detections:
        cfg = self.config
        k = _kernels if _kernels is not None else _load_kernels()
        dt = self._step_fast(timestamp_s, warp)
        trk, bad = k.predict(self._kf.state, dt, self._prm)
        if bad:
            self._drop_nonfinite(trk)
        keep = k.expire(self._last_match_s, timestamp_s, cfg.max_age_s + _TIME_EPS_S)
        if keep.size:
            self._keep(keep)
        return Detections.unchecked(
            *k.report(
                self._kf.state, self._count, self._ids, self._cls, self._conf, self._last_match_s,
                self._confirmed, timestamp_s, float(cfg.report_lost_s), cfg.report_lost_s + _TIME_EPS_S,
                self._updates <= cfg.min_hits, False,
            )
        )  # fmt: skip


def inside_frame(dets: Detections, hw: tuple[int, int]) -> Detections:
    """Clip the tracker's boxes to the frame of height/width `hw` and drop those left with no area: a predicted
    box can coast past the edge after its object has left. One compiled call where the numba tracker runs."""
    if not len(dets):
        return dets
    k = _kernels
    if k is not None:
        return Detections.unchecked(
            *k.inside_frame(dets.xyxy, dets.confidence, dets.class_id, dets.track_id, int(hw[0]), int(hw[1]))
        )
    xyxy = clip_xyxy(dets.xyxy, hw)
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    return Detections(xyxy[keep], dets.confidence[keep], dets.class_id[keep], dets.track_id[keep])


def _writable(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """`a` if C-contiguous and writable, else a copy that is: numba compiles a kernel anew for each array
    layout and read-only flag, so only these reach the kernels (the ones compiled at construction)."""
    f = a.flags
    return a if f.c_contiguous and f.writeable else np.array(a)


def _kernel_params(kf: BoxKalmanFilter) -> npt.NDArray[np.float64]:
    """The filter constants packed for tracking.kernels: new-track row, qa, qc, R."""
    return np.concatenate([kf._row0, kf._qa, kf._qc, kf._r]).astype(np.float64)


def _warm_kernels() -> None:
    """Run every kernel once on a made-up scene (compiles them, or loads numba's cache) so the first real
    frames do not pay for it. Once per process."""
    global _warmed
    if _warmed:
        return
    _warmed = True
    f32 = np.float32
    box = np.array([[10, 10, 50, 90], [200, 200, 240, 300]], f32)
    two = np.zeros(2, np.int32)
    trk = SortTracker(TrackerConfig(second_association=True, min_hits=1, nominal_fps=10.0), backend="numba")
    trk.update(Detections(box, np.full(2, 0.9, f32), two), 0.0)  # first_pass, finish (new tracks)
    trk.predict(0.05)  # predict, expire, report
    trk.update(Detections(box + f32(2), np.array([0.9, 0.3], f32), two), 0.1)  # second_pass
    trk.update(Detections(box[[0, 0]], np.full(2, 0.9, f32), two), 0.2)  # contested: the solver
    # a zero height starts a track with an infinite aspect ratio; its next box is not finite: dropped, gate again
    trk.update(Detections(np.array([[0, 0, 10, 0]], f32), np.ones(1, f32), two[:1]), 0.3)
    trk.update(Detections.empty(), 0.4)
    _kernels.inside_frame(box, np.ones(2, f32), two, two, 100, 100)  # tracking.inside_frame, after each step
