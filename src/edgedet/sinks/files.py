"""Text sinks that tools already read: MOTChallenge txt, JSON lines, COCO results json."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.errors import SinkError
from edgedet.sinks.base import AppendFile, Sink, check_output_path
from edgedet.types import Detections, Frame, FrameResult

logger = logging.getLogger(__name__)


def _finite_or_none(values: npt.NDArray[np.floating[Any]], decimals: int) -> list[Any]:
    """Round for compact output; JSON has no NaN/inf, so those become null instead of invalid JSON."""
    rounded = np.round(values.astype(np.float64), decimals)
    out: list[Any] = rounded.tolist()
    return out if np.isfinite(rounded).all() else [_none_if_nan(v) for v in out]


def _none_if_nan(v: Any) -> Any:
    if isinstance(v, list):
        return [_none_if_nan(x) for x in v]
    return v if math.isfinite(v) else None


class _AppendFileSink(Sink):
    """A sink writing whole records to one AppendFile; closing and abandoning just close the file."""

    _file: AppendFile | None

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _abandon(self) -> int:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
        return 0


class MotSink(_AppendFileSink):
    """MOTChallenge txt: one line per box, `frame,id,x,y,w,h,score,-1,-1,-1`.

    frame = Frame.index + 1 (MOTChallenge counts from 1); x, y, w, h in frame pixels (top-left, size), with
    x and y in MOTChallenge's 1-based pixel convention (the ground truth's; py-motmetrics subtracts 1 on load)
    unless `one_based=False`, which writes the 0-based frame pixels of `Detections.xyxy` as they are.
    `tracking` True writes only tracked detections (track_id >= 0); False (--no-track) writes every detection
    with id -1. None decides from the data: rows carry id -1 until the first frame with a track id, and from
    then on only tracked rows are written (pass True/False when the caller knows, so the first frames of a
    tracked run are not written untracked).
    Each frame's lines reach the file in one write, so a killed run leaves whole lines.
    """

    flag = "--save-mot"

    def __init__(
        self, path: str | os.PathLike[str], tracking: bool | None = None, one_based: bool = True
    ) -> None:
        super().__init__()
        self.path = check_output_path(path, self.flag)
        self._tracking = tracking
        self._offset = np.array([1, 1, 0, 0], np.float32) if one_based else np.zeros(4, np.float32)
        self._file: AppendFile | None = AppendFile(self.path, self.flag)

    def describe(self) -> str:
        return str(self.path)

    def _rows(self, dets: Detections) -> tuple[Detections, bool]:
        tracked = dets.track_id >= 0
        if self._tracking is None and tracked.any():
            self._tracking = True
        if self._tracking:
            return dets[tracked], True
        return dets, False

    def _write(self, result: FrameResult) -> None:
        assert self._file is not None
        dets, with_ids = self._rows(result.detections)
        if len(dets) == 0:
            return
        frame = result.frame.index + 1
        xywh = (dets.xywh + self._offset).tolist()
        ids = dets.track_id.tolist() if with_ids else [-1] * len(dets)
        block = "".join(
            f"{frame},{tid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n"
            for tid, (x, y, w, h), s in zip(ids, xywh, dets.confidence.tolist(), strict=True)
        )
        self._file.append(block.encode())


def detections_to_dicts(dets: Detections, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Detections as JSON-ready dicts: xyxy (pixels, 2 decimals), confidence, class_id, class_name, track_id.

    class_name is null when `class_names` does not cover the class id. Non-finite numbers become null.
    """
    xyxy = _finite_or_none(dets.xyxy, 2)
    conf = _finite_or_none(dets.confidence, 5)
    names = list(class_names)
    return [
        {
            "xyxy": box,
            "confidence": c,
            "class_id": cls,
            "class_name": names[cls] if 0 <= cls < len(names) else None,
            "track_id": tid,
        }
        for box, c, cls, tid in zip(xyxy, conf, dets.class_id.tolist(), dets.track_id.tolist(), strict=True)
    ]


class JsonLinesSink(_AppendFileSink):
    """One JSON object per frame and line, for streaming consumers (`tail -f | jq`).

    Keys: index (Frame.index, 0-based), source_index, timestamp_s, name, detector_ran, fps, stage_ms
    (milliseconds per stage), detections (list of {xyxy, confidence, class_id, class_name, track_id}, xyxy in
    frame pixels; with a pose source also lat, lon, east_m, north_m, sigma_m: `GroundPositions`). Each line
    reaches the file in one write, so a killed run leaves whole lines.
    """

    flag = "--save-json"

    def __init__(self, path: str | os.PathLike[str], class_names: Sequence[str] = ()) -> None:
        super().__init__()
        self.path = check_output_path(path, self.flag)
        self.class_names = tuple(class_names)
        self._file: AppendFile | None = AppendFile(self.path, self.flag)

    def describe(self) -> str:
        return str(self.path)

    def _write(self, result: FrameResult) -> None:
        assert self._file is not None
        f = result.frame
        record = {
            "index": f.index,
            "source_index": f.source_index,
            "timestamp_s": _none_if_nan(round(float(f.timestamp_s), 6)),
            "name": f.name,
            "detector_ran": bool(result.detector_ran),
            "fps": _none_if_nan(round(float(result.fps), 3)),
            "stage_ms": {k: _none_if_nan(round(float(v), 4)) for k, v in result.stage_ms.items()},
            "detections": detections_to_dicts(result.detections, self.class_names),
        }
        if result.geo is not None:  # ground positions: lat, lon, east_m, north_m, sigma_m (null: none)
            for i, d in enumerate(record["detections"]):
                d.update(result.geo.row(i))
        self._file.append((json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode())


def coco_image_id(frame: Frame) -> int:
    """COCO image id of a frame: the file name's stem when it is a number ('000000000009.jpg' -> 9, as COCO
    names its images), else Frame.index."""
    stem = Path(frame.name).stem
    return int(stem) if stem.isascii() and stem.isdigit() else frame.index


class CocoSink(Sink):
    """COCO results json: a list of {image_id, category_id, bbox [x, y, w, h] pixels, score}.

    category_id is the model's class index (0-based); map it to a dataset's category ids when evaluating.
    A JSON array cannot be appended to and stay valid, so the whole file is rewritten atomically (temporary
    file in the same directory, fsync, os.replace): at open (an empty list), every `checkpoint_s` seconds or
    `checkpoint_frames` frames (whichever comes first) that brought new detections, and at close. A run that
    ends abruptly leaves the last checkpoint, which always parses. Each checkpoint rewrites everything so far,
    so on long runs checkpoints are spaced at least 20x their own duration apart (under ~5% of the run).
    `clock` (seconds, monotonic) times both the interval and that spacing.
    """

    flag = "--save-coco"

    def __init__(
        self,
        path: str | os.PathLike[str],
        checkpoint_s: float = 2.0,
        checkpoint_frames: int = 100,
        fsync: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.path = check_output_path(path, self.flag)
        self.checkpoint_s = float(checkpoint_s)
        self.checkpoint_frames = int(checkpoint_frames)
        self.fsync = fsync
        self._clock = clock
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # Serialised items joined by commas; kept as bytes so a checkpoint is I/O only, not re-serialisation.
        self._body = bytearray()
        self._frames_total = 0
        self._frames_saved = 0  # frames covered by the file on disk
        self._pending = False  # new detections since the last checkpoint
        self._min_gap_s = 0.0
        self.checkpoints = 0
        try:
            self._checkpoint()  # an empty list, so the file parses from the start
        except OSError as exc:
            raise SinkError(
                f"{self.flag} {self.path} could not be written ({exc.strerror or exc}): free some space or "
                "choose another path"
            ) from exc
        self._last_checkpoint = self._clock()

    def describe(self) -> str:
        return str(self.path)

    def _write(self, result: FrameResult) -> None:
        dets = result.detections
        self._frames_total += 1
        if len(dets):
            image_id = coco_image_id(result.frame)
            bbox = _finite_or_none(dets.xywh, 2)
            score = _finite_or_none(dets.confidence, 5)
            items = ",".join(
                json.dumps(
                    {"image_id": image_id, "category_id": c, "bbox": b, "score": s}, separators=(",", ":")
                )
                for c, b, s in zip(dets.class_id.tolist(), bbox, score, strict=True)
            )
            if self._body:
                self._body += b","
            self._body += items.encode()
            self._pending = True
        if not self._pending:
            self._frames_saved = self._frames_total  # nothing new to save: the file already covers this frame
            return
        now = self._clock()
        since = now - self._last_checkpoint
        due = self._frames_total - self._frames_saved >= self.checkpoint_frames or since >= self.checkpoint_s
        if due and since >= self._min_gap_s:
            try:
                self._checkpoint()
            except OSError:
                # This frame is counted as lost by Sink.write; _abandon counts the earlier unsaved ones.
                self._frames_total -= 1
                raise

    def _checkpoint(self) -> None:
        t0 = self._clock()
        try:
            with open(self._tmp, "wb") as f:
                f.write(b"[")
                f.write(self._body)
                f.write(b"]\n")
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(self._tmp, self.path)
        except OSError:
            self._remove_tmp()
            raise
        self._last_checkpoint = self._clock()
        self._frames_saved = self._frames_total
        self._pending = False
        self.checkpoints += 1
        # A checkpoint costs time proportional to everything written so far: space them out as the file
        # grows so they stay under ~5% of the run (at least 20x the last checkpoint's duration apart).
        self._min_gap_s = 20.0 * (self._last_checkpoint - t0)

    def _remove_tmp(self) -> None:
        try:
            self._tmp.unlink(missing_ok=True)
        except OSError:
            pass

    def _close(self) -> None:
        if self._pending:
            self._checkpoint()
        self._body = bytearray()

    def _abandon(self) -> int:
        self._remove_tmp()
        lost = self._frames_total - self._frames_saved
        self._body = bytearray()
        self._pending = False
        self._frames_total = self._frames_saved
        return lost
