"""Run the tracker over a MOTChallenge det.txt, as `edgedet track --dets det.txt --seqinfo seqinfo.ini` does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgedet.errors import ConfigError, DataError
from edgedet.motchallenge import MotRows, SeqInfo, read_det, read_seqinfo, write_mot
from edgedet.tracking import TrackerConfig, make_tracker, step
from edgedet.types import Detections

__all__ = ["track_sequence", "write_mot"]


def track_sequence(
    dets_path: str | Path,
    seqinfo_path: str | Path | SeqInfo,
    config: TrackerConfig | None = None,
    detect_every: int = 1,
    tracker: str = "sort",
) -> MotRows:
    """Track a det.txt and return one row per reported track per frame (MOTChallenge tracker output).

    Frame f (1-based) has timestamp (f - 1) / frameRate. The detector "runs" on frames where
    (f - 1) % detect_every == 0: those frames call `update` with that frame's rows of det.txt (none is an
    empty update); the others call `predict`. A config whose nominal_fps is None steps at the sequence's
    frameRate. tracker: a name in the tracker registry (`sort`, `bytetrack`, a plugin's). Rows: frame, track id, x, y, w, h (pixels), score (last matched detection's), then -1 x3.
    """
    if not isinstance(detect_every, int) or detect_every < 1:
        raise ConfigError(
            f"detect_every must be an integer >= 1, got {detect_every!r}: pass 1 to use every frame"
        )
    info = seqinfo_path if isinstance(seqinfo_path, SeqInfo) else read_seqinfo(seqinfo_path)
    dets = read_det(dets_path)
    if len(dets) and int(dets.frame.max()) > info.seq_length:
        raise DataError(
            f"{dets_path} has detections on frame {int(dets.frame.max())} but seqLength is {info.seq_length}: "
            "check that det.txt and seqinfo.ini belong to the same sequence"
        )
    cfg = config if config is not None else TrackerConfig()
    if cfg.nominal_fps is None:
        cfg = dataclasses.replace(cfg, nominal_fps=info.frame_rate)
    trk = make_tracker(tracker, cfg)

    per_frame: dict[int, Detections] = {f: rows.to_detections() for f, rows in dets.by_frame()}
    empty = Detections.empty()
    outputs: dict[int, Detections] = {}
    for f in range(1, info.seq_length + 1):
        t = info.timestamp_s(f)
        detect = (f - 1) % detect_every == 0
        outputs[f] = step(trk, t, per_frame.get(f, empty) if detect else None)
    return MotRows.from_tracks(outputs)
