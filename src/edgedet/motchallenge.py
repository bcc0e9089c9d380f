"""MOTChallenge text formats: det.txt, gt.txt, tracker output, and seqinfo.ini.

Row layouts (comma separated, 1-based frame numbers, boxes as top-left x, y, width, height in pixels):

- det.txt:    ``frame,-1,x,y,w,h,score[,wx,wy,wz]``  (7 or 10 columns)
- gt.txt:     ``frame,id,x,y,w,h,flag,class,visibility`` (MOT16/17/20: 9 columns) or
              ``frame,id,x,y,w,h,flag,wx,wy,wz`` (MOT15: 10 columns; world coordinates, no class) or
              9 columns with class -1 (MOT15 files rewritten in the MOT16 layout)
- tracks:     ``frame,id,x,y,w,h,score,-1,-1,-1`` (what trackers write and TrackEval reads)

Every malformed input raises DataError naming the file, the line and what to do about it.
"""

from __future__ import annotations

import configparser
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgedet.errors import DataError, SinkError
from edgedet.types import Detections

PathLike = str | Path


@dataclass(frozen=True)
class SeqInfo:
    """The facts of one sequence from its seqinfo.ini (frame_rate in frames per second, sizes in pixels)."""

    name: str
    frame_rate: float
    seq_length: int
    im_width: int
    im_height: int

    def timestamp_s(self, frame: int) -> float:
        """Media time of a 1-based frame number: (frame - 1) / frame_rate."""
        return (frame - 1) / self.frame_rate


@dataclass(frozen=True)
class MotRows:
    """Parallel arrays, one row per box of a det.txt or a tracker output file.

    frame: (N,) int64, 1-based.  track_id: (N,) int64 (-1 in det.txt).  xywh: (N, 4) float64 top-left x, y,
    width, height in pixels.  score: (N,) float64.
    """

    frame: npt.NDArray[np.int64]
    track_id: npt.NDArray[np.int64]
    xywh: npt.NDArray[np.float64]
    score: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def at_frame(self, frame: int) -> MotRows:
        """The rows of one frame, in file order."""
        m = self.frame == frame
        return MotRows(self.frame[m], self.track_id[m], self.xywh[m], self.score[m])

    def by_frame(self) -> Iterator[tuple[int, MotRows]]:
        """(frame, rows) for each frame that has rows, ascending; file order kept within a frame."""
        order = np.argsort(self.frame, kind="stable")
        frames = self.frame[order]
        starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]]) if len(frames) else np.zeros(0, int)
        ends = np.r_[starts[1:], len(frames)].astype(int)
        for s, e in zip(starts, ends, strict=True):
            idx = order[s:e]
            yield (
                int(frames[s]),
                MotRows(self.frame[idx], self.track_id[idx], self.xywh[idx], self.score[idx]),
            )

    def to_detections(self, class_id: int = 0) -> Detections:
        """These rows as Detections (xyxy float32 frame pixels; track_id from the rows)."""
        xyxy = self.xywh.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        n = len(self)
        return Detections(
            xyxy.astype(np.float32),
            self.score.astype(np.float32),
            np.full(n, class_id, np.int32),
            self.track_id.astype(np.int32),
        )

    def to_array(self) -> npt.NDArray[np.float64]:
        """(N, 10) float64 in the tracker-output layout frame,id,x,y,w,h,score,-1,-1,-1."""
        out = np.full((len(self), 10), -1.0)
        out[:, 0] = self.frame
        out[:, 1] = self.track_id
        out[:, 2:6] = self.xywh
        out[:, 6] = self.score
        return out

    @staticmethod
    def from_tracks(per_frame: Mapping[int, Detections]) -> MotRows:
        """Tracker output rows from {1-based frame: tracked Detections} (frame pixels), frames in order."""
        frames, ids, boxes, scores = [], [], [], []
        for f in sorted(per_frame):
            out = per_frame[f]
            if len(out):
                frames.append(np.full(len(out), f, np.int64))
                ids.append(out.track_id.astype(np.int64))
                boxes.append(out.xywh.astype(np.float64))
                scores.append(out.confidence.astype(np.float64))
        if not frames:
            return MotRows.from_array(np.zeros((0, 10)))
        return MotRows(
            np.concatenate(frames), np.concatenate(ids), np.concatenate(boxes), np.concatenate(scores)
        )

    @staticmethod
    def from_array(rows: npt.ArrayLike) -> MotRows:
        """From an (N, >=7) array laid out frame,id,x,y,w,h,score,..."""
        a = np.asarray(rows, dtype=np.float64)
        if a.ndim != 2 or (a.shape[0] and a.shape[1] < 7):
            raise DataError(
                f"MOT rows have shape {a.shape}, need (N, >=7) (frame,id,x,y,w,h,score,...): pass an (N, 10) array"
            )
        if a.shape[0] == 0:
            return MotRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0))
        return MotRows(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6].copy(), a[:, 6].copy())


@dataclass(frozen=True)
class MotGroundTruth:
    """Parallel arrays of a gt.txt.

    frame, track_id: (N,) int64.  xywh: (N, 4) float64 pixels.  flag: (N,) int64, the "consider" flag
    (0 = ignore).  class_id: (N,) int64 (MOT16/17/20 classes, 1 = pedestrian; -1 where the file has none).
    visibility: (N,) float64 in [0, 1] (-1 where the file has none).
    has_classes: False for MOT15-style files (10 columns of world coordinates, or a class column of -1).
    """

    frame: npt.NDArray[np.int64]
    track_id: npt.NDArray[np.int64]
    xywh: npt.NDArray[np.float64]
    flag: npt.NDArray[np.int64]
    class_id: npt.NDArray[np.int64]
    visibility: npt.NDArray[np.float64]
    has_classes: bool

    def __len__(self) -> int:
        return int(self.frame.shape[0])


def _read_table(path: PathLike, what: str, min_cols: int, max_cols: int) -> npt.NDArray[np.float64]:
    """Rows of a comma-separated numeric file as float64 (N, C); C is the (common) column count."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{what} file {p} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} file {p} ({exc}): pass a readable UTF-8 text file") from None
    rows: list[list[float]] = []
    ncols = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        # Tolerate trailing commas and whitespace (several public det.txt files end rows with ",").
        line = raw.strip().rstrip(",").strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if not min_cols <= len(fields) <= max_cols:
            want = str(min_cols) if min_cols == max_cols else f"{min_cols} to {max_cols}"
            raise DataError(
                f"{p}:{lineno}: {what} row has {len(fields)} columns, expected {want}: "
                f"fix the row (MOTChallenge layout, comma separated)"
            )
        if ncols and len(fields) != ncols:
            raise DataError(
                f"{p}:{lineno}: {what} row has {len(fields)} columns but earlier rows have {ncols}: "
                f"make every row the same layout"
            )
        ncols = len(fields)
        try:
            vals = [float(f) for f in fields]
        except ValueError:
            raise DataError(
                f"{p}:{lineno}: {what} row {line!r} has a non-numeric field: fix the row"
            ) from None
        if not all(np.isfinite(vals)):
            raise DataError(f"{p}:{lineno}: {what} row {line!r} has a NaN or infinite value: fix the row")
        if max(abs(v) for v in vals) >= 2.0**53:  # frame, id, flag and class become int64: keep them exact
            raise DataError(f"{p}:{lineno}: {what} row {line[:80]!r} has a value out of range: fix the row")
        if vals[0] < 1 or vals[0] != int(vals[0]):
            raise DataError(
                f"{p}:{lineno}: frame number {fields[0]!r} is not a positive integer: frames are 1-based"
            )
        if vals[4] < 0 or vals[5] < 0:
            raise DataError(
                f"{p}:{lineno}: box has negative width or height ({fields[4]}, {fields[5]}): fix the row"
            )
        rows.append(vals)
    if not rows:
        return np.zeros((0, max(ncols, min_cols)), np.float64)
    return np.asarray(rows, dtype=np.float64)


def read_det(path: PathLike) -> MotRows:
    """Read a det.txt (7 or 10 columns; tolerates 8 and 9). Raises DataError on any malformed row."""
    a = _read_table(path, "det.txt", 7, 10)
    return MotRows.from_array(a) if len(a) else MotRows.from_array(np.zeros((0, 7)))


def read_tracks(path: PathLike) -> MotRows:
    """Read a tracker output file (frame,id,x,y,w,h,score,...; 7 to 10 columns)."""
    a = _read_table(path, "tracks", 7, 10)
    out = MotRows.from_array(a) if len(a) else MotRows.from_array(np.zeros((0, 7)))
    if len(out) and np.any(out.track_id < 0):
        bad = int(np.flatnonzero(out.track_id < 0)[0])
        raise DataError(
            f"{path}: row {bad + 1} has track id {out.track_id[bad]}: tracker output needs ids >= 0 "
            "(is this a det.txt?)"
        )
    return out


def read_gt(path: PathLike) -> MotGroundTruth:
    """Read a gt.txt in the MOT16/17/20 (9 columns) or MOT15 (10 columns, or class -1) layout."""
    a = _read_table(path, "gt.txt", 7, 10)
    n = len(a)
    if n == 0:
        z = np.zeros(0, np.int64)
        return MotGroundTruth(z, z, np.zeros((0, 4)), z, z, np.zeros(0), has_classes=False)
    ncols = a.shape[1]
    # MOT15 gt keeps world coordinates in columns 8-10 (class is not a column there).
    has_classes = ncols in (8, 9) and not np.all(a[:, 7] == -1)
    if has_classes:
        cls = a[:, 7]
        if np.any(cls != np.round(cls)):
            line = int(np.flatnonzero(cls != np.round(cls))[0]) + 1
            raise DataError(f"{path}: row {line} has a non-integer class {cls[line - 1]}: fix the gt file")
        class_id = cls.astype(np.int64)
    else:
        class_id = np.full(n, -1, np.int64)
    visibility = a[:, 8].copy() if (has_classes and ncols == 9) else np.full(n, -1.0)
    return MotGroundTruth(
        frame=a[:, 0].astype(np.int64),
        track_id=a[:, 1].astype(np.int64),
        xywh=a[:, 2:6].copy(),
        flag=a[:, 6].astype(np.int64),
        class_id=class_id,
        visibility=visibility,
        has_classes=bool(has_classes),
    )


def read_seqinfo(path: PathLike) -> SeqInfo:
    """Read a seqinfo.ini ([Sequence] name, frameRate, seqLength, imWidth, imHeight)."""
    p = Path(path)
    # No interpolation: a '%' in a value is text, not a reference to another key.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with p.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        raise DataError(f"seqinfo file {p} does not exist: check the path") from None
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise DataError(
            f"cannot parse seqinfo file {p} ({first}): it must be an INI file with [Sequence]"
        ) from None
    if not parser.has_section("Sequence"):
        raise DataError(f"seqinfo file {p} has no [Sequence] section: add one with frameRate, seqLength, ...")
    sec = parser["Sequence"]

    def get(key: str, kind: type) -> float | int:
        if key not in sec:
            raise DataError(f"seqinfo file {p} lacks {key} in [Sequence]: add it (e.g. {key}=30)")
        try:
            val = kind(sec[key].strip())
        except ValueError:
            raise DataError(f"seqinfo file {p}: {key}={sec[key]!r} is not a number: fix it") from None
        if not (val > 0 and math.isfinite(val)):
            raise DataError(f"seqinfo file {p}: {key}={sec[key]!r} must be positive and finite: fix it")
        return val

    return SeqInfo(
        name=sec.get("name", p.parent.name).strip(),
        frame_rate=float(get("frameRate", float)),
        seq_length=int(get("seqLength", int)),
        im_width=int(get("imWidth", int)),
        im_height=int(get("imHeight", int)),
    )


def write_mot(rows: MotRows | npt.ArrayLike, path: PathLike) -> None:
    """Write tracker output rows as ``frame,id,x,y,w,h,score,-1,-1,-1`` (2-decimal boxes, as SORT writes)."""
    r = rows if isinstance(rows, MotRows) else MotRows.from_array(rows)
    p = Path(path)
    lines = [
        f"{f},{i},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{s:.4g},-1,-1,-1\n"
        for f, i, b, s in zip(
            r.frame.tolist(), r.track_id.tolist(), r.xywh.tolist(), r.score.tolist(), strict=True
        )
    ]
    try:
        p.write_text("".join(lines), encoding="utf-8")
    except OSError as exc:
        raise SinkError(
            f"cannot write tracks to {p} ({exc.strerror}): check the folder exists and is writable"
        ) from None
