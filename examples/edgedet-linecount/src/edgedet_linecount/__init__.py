"""A line-crossing counter for edgedet, registered as the sink `linecount` (entry point group `edgedet.sinks`).

Uses only edgedet's public plugin API: `edgedet.sinks.Sink` (the base class that turns write errors into
`lost_frames` instead of stopping the run), `edgedet.sinks.SinkKind` / `SinkContext` (the registry entry), and
`edgedet.types.FrameResult`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgedet.errors import ConfigError
from edgedet.sinks import Sink, SinkContext, SinkKind, check_output_path
from edgedet.types import FrameResult

__all__ = ["SINK", "LineCounter", "parse_arg"]


def parse_arg(arg: str) -> tuple[str, str, float]:
    """`PATH[,axis=y|x][,at=FRACTION]` -> (path, axis, at). ConfigError says what to write instead."""
    path, *parts = arg.split(",")
    axis, at = "y", 0.5
    for part in parts:
        key, _, value = part.partition("=")
        if key == "axis" and value in ("x", "y"):
            axis = value
        elif key == "at":
            try:
                at = float(value)
            except ValueError:
                at = -1.0
            if not 0.0 < at < 1.0:
                raise ConfigError(
                    f"--sink linecount: at={value!r} must be a fraction between 0 and 1, e.g. at=0.5"
                )
        else:
            raise ConfigError(f"--sink linecount: unknown option {part!r}; write PATH[,axis=y|x][,at=0.5]")
    if not path:
        raise ConfigError("--sink linecount needs an output file: --sink linecount:counts.json")
    return path, axis, at


class LineCounter(Sink):
    """Counts track centres crossing a horizontal (axis "y") or vertical (axis "x") line at `at` of the frame."""

    flag = "--sink linecount"

    def __init__(
        self, path: str, axis: str = "y", at: float = 0.5, class_names: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.axis, self.at = axis, at
        self.class_names = class_names
        self._side: dict[int, int] = {}  # track id -> -1 (before the line) or +1 (after it)
        self.frames = 0
        self.forward = 0  # down (axis y) or right (axis x)
        self.backward = 0
        self.by_class: dict[str, int] = {}

    def _write(self, result: FrameResult) -> None:
        self.frames += 1
        dets = result.detections
        if not len(dets):
            return
        h, w = result.frame.image.shape[:2]
        k = 1 if self.axis == "y" else 0
        centre = (dets.xyxy[:, k] + dets.xyxy[:, k + 2]) / 2
        side = np.where(centre >= self.at * (h if self.axis == "y" else w), 1, -1)
        for tid, s, cls in zip(dets.track_id.tolist(), side.tolist(), dets.class_id.tolist(), strict=True):
            if tid < 0:
                continue
            before = self._side.get(tid)
            self._side[tid] = s
            if before is None or before == s:
                continue
            if s > 0:
                self.forward += 1
            else:
                self.backward += 1
            name = self.class_names[cls] if 0 <= cls < len(self.class_names) else str(cls)
            self.by_class[name] = self.by_class.get(name, 0) + 1

    def counts(self) -> dict[str, object]:
        fwd, back = ("down", "up") if self.axis == "y" else ("right", "left")
        return {
            "line": {"axis": self.axis, "at": self.at},
            "frames": self.frames,
            "crossings": self.forward + self.backward,
            fwd: self.forward,
            back: self.backward,
            "by_class": dict(sorted(self.by_class.items())),
            "tracks_seen": len(self._side),
        }

    def _close(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.counts(), indent=2) + "\n")


def _open(arg: str | None, ctx: SinkContext) -> LineCounter:
    path, axis, at = parse_arg(arg or "")
    return LineCounter(path, axis, at, ctx.class_names)


def _check(arg: str | None, ctx: SinkContext) -> None:
    path, _axis, _at = parse_arg(arg or "")  # a bad argument or path fails before the camera opens
    check_output_path(path, "--sink linecount")


#: the registry entry: the argument is checked up front; the output file is not the whole argument, so the
#: sink checks its own path (writes_file would treat ",axis=..." as part of the file name)
SINK = SinkKind(_open, needs_arg=True, check=_check)
