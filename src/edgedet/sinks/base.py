"""The Sink contract, its config, and the output-path checks every file sink shares."""

from __future__ import annotations

import errno
import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from edgedet.errors import ConfigError, SinkError
from edgedet.types import FrameResult

logger = logging.getLogger(__name__)

_SinkT = TypeVar("_SinkT", bound="Sink")

DEFAULT_VIDEO_FPS = 30.0


@dataclass(frozen=True)
class SinkConfig:
    """Which outputs `edgedet run` writes. Each field maps to one flag.

    show: --show, an OpenCV window (needs a GUI build of OpenCV and a display).
    save_video: --save-video PATH, annotated mp4.
    save_mot: --save-mot PATH, MOTChallenge txt (frame,id,x,y,w,h,score,-1,-1,-1).
    save_json: --save-json PATH, one JSON object per frame.
    save_coco: --save-coco PATH, COCO results json (a list of detections).
    save_geojson, save_kml: --save-geojson / --save-kml PATH, the tracks' ground positions (needs --telemetry).
    class_names: names for drawing and for the JSON lines' class_name; index = class id.
    video_fps: frame rate written into the mp4; None = the source's, else 30.
    sinks: --sink NAME[:ARG] (repeatable): any sink in the registry (`edgedet.sinks.SINKS`), opened after the above.
    options: the other options declared with stage="sink" (name -> value), handed to every sink in SinkContext.
    tracking: what the MOT file holds. True: tracked rows only (track_id >= 0). False (--no-track): every
        detection with id -1. None: decided from the data (see MotSink).
    """

    show: bool = False
    save_video: str | None = None
    save_mot: str | None = None
    save_json: str | None = None
    save_coco: str | None = None
    save_geojson: str | None = None
    save_kml: str | None = None
    class_names: tuple[str, ...] = ()
    video_fps: float | None = None
    tracking: bool | None = None
    sinks: tuple[str, ...] = ()  # more sinks from the sink registry, each "NAME" or "NAME:ARG" (--sink)
    options: Mapping[str, Any] = field(
        default_factory=dict
    )  # sink options declared in config.py (SinkContext)


@dataclass(frozen=True)
class OutputStatus:
    """How one output ended, for the run summary.

    flag: the option that made it ("--save-video"); target: what it wrote to, for messages (a path, a window);
    path: the output file, None for outputs that are not files; lost_frames: frames it could not record (write
    errors, or frames after it was disabled); exists: whether the file exists after close (None: not a file).
    An output is complete when it lost no frame; only complete outputs are reported as written.
    """

    flag: str
    target: str
    path: str | None
    lost_frames: int
    exists: bool | None

    @property
    def complete(self) -> bool:
        return self.lost_frames == 0

    def format(self) -> str:
        """One line: `wrote PATH`, or `INCOMPLETE --flag TARGET: lost N frames (...)`."""
        if self.complete:
            return f"wrote {self.target}"
        if self.path is None:
            state = "write errors"
        elif self.exists:
            state = "write errors; the file holds what was written before them"
        else:
            state = "write errors; the file was not created"
        return f"INCOMPLETE {self.flag} {self.target}: lost {self.lost_frames} frames ({state})"

    def as_dict(self) -> dict[str, object]:
        return {
            "flag": self.flag,
            "path": self.path,
            "lost_frames": self.lost_frames,
            "exists": self.exists,
            "complete": self.complete,
        }


class Sink(ABC):
    """Somewhere FrameResults go. A context manager; `close()` is idempotent.

    A sink never stops the run: a write error (disk full, device gone) logs one warning, disables the sink and
    counts every frame it could not record in `lost_frames`. `stop_requested` turns True when the user asked to
    stop through this sink (the display window's 'q' key or close button); the pipeline polls it.
    """

    #: the flag that created this sink, used to name it in messages ("--save-mot")
    flag: str = "sink"

    def __init__(self) -> None:
        self.lost_frames: int = 0
        self.stop_requested: bool = False
        self._closed = False
        self._failed = False

    @property
    def failed(self) -> bool:
        """True once a write error disabled this sink."""
        return self._failed

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, result: FrameResult) -> None:
        """Record one frame. Never raises for I/O failures; see the class docstring."""
        if self._closed or self._failed:
            # Frames after a failure, or after close() (a signal can close sinks while the loop finishes its
            # frame), are not recorded: count them instead of raising into the pipeline.
            self.lost_frames += 1
            return
        try:
            self._write(result)
        except OSError as exc:
            self.lost_frames += 1 + self._disable(exc, result.frame.index)
        except ValueError:
            # "I/O operation on closed file": close() ran (from a signal handler) while this frame was being
            # written. The output is complete up to the previous frame; anything else is a real bug.
            if not self._closed:
                raise
            self.lost_frames += 1

    def close(self) -> None:
        """Finish the output so it is complete and valid. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._failed:
            return  # _abandon() already released everything; the output holds what was written before
        try:
            self._close()
        except OSError as exc:
            self.lost_frames += self._disable(exc, None)

    def _disable(self, exc: OSError, frame_index: int | None) -> int:
        """Mark the sink failed after `exc`, log it once, release what it holds.

        Returns the number of frames already accepted that the failure lost (e.g. since the last checkpoint).
        """
        self._failed = True
        where = "while closing" if frame_index is None else f"at frame {frame_index}"
        hint = (
            "free some space or write elsewhere" if exc.errno == errno.ENOSPC else "check the path and device"
        )
        logger.warning(
            "%s: writing %s failed %s (%s); this output is disabled and the run continues (%s)",
            self.flag,
            self.describe(),
            where,
            exc.strerror or exc,
            hint,
        )
        try:
            return self._abandon()
        except OSError:
            return 0

    def describe(self) -> str:
        """What this sink writes to, for messages."""
        return type(self).__name__

    def status(self) -> OutputStatus:
        """How this output ended (call after close()): its file, whether it exists, the frames it lost."""
        path = getattr(self, "path", None)
        return OutputStatus(
            flag=self.flag,
            target=self.describe(),
            path=None if path is None else str(path),
            lost_frames=self.lost_frames,
            exists=None if path is None else Path(path).exists(),
        )

    @abstractmethod
    def _write(self, result: FrameResult) -> None:
        """Record one frame; raise OSError on I/O failure."""

    @abstractmethod
    def _close(self) -> None:
        """Finish the output; raise OSError on I/O failure."""

    def _abandon(self) -> int:
        """Release resources after a failure. Returns frames lost that were accepted before the failure."""
        return 0

    def __enter__(self: _SinkT) -> _SinkT:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_output_path(path: str | os.PathLike[str], flag: str) -> Path:
    """Check that `path` can be written as an output file, creating its parent directories.

    Raises SinkError naming the path and the fix when the path is a directory, its parent cannot be created,
    or the file cannot be created/opened for writing. An existing file is left untouched (opened for append,
    never truncated); a new file is created and removed again, so a check that passes leaves nothing behind
    but the parent directories.
    """
    p = Path(path).expanduser()
    if str(path) == "":
        raise SinkError(f"{flag} got an empty path: pass a file name such as out/result.txt")
    if p.is_dir():
        raise SinkError(
            f"{flag} {p} is a directory: pass a file path inside it, e.g. {p / ('out' + _ext(flag))}"
        )
    parent = p.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise SinkError(
            f"{flag} {p}: cannot create directory {parent} because a file is in the way: choose another path"
        ) from exc
    except OSError as exc:
        raise SinkError(
            f"{flag} {p}: cannot create directory {parent} ({exc.strerror or exc}): choose a writable location"
        ) from exc
    try:
        if p.exists():
            # Append mode opens for writing without truncating an existing output.
            with open(p, "ab"):
                pass
        else:
            with open(p, "xb"):
                pass
            p.unlink()
    except OSError as exc:
        raise SinkError(
            f"{flag} {p} is not writable ({exc.strerror or exc}): fix the permissions or choose another path"
        ) from exc
    return p


def _ext(flag: str) -> str:
    return {
        "--save-video": ".mp4",
        "--save-mot": ".txt",
        "--save-json": ".jsonl",
        "--save-coco": ".json",
    }.get(flag, ".out")


def resolve_fps(video_fps: float | None, source_fps: float | None) -> float:
    """The frame rate to write: the configured one, else the source's when it is usable, else 30.

    A configured rate that is not a positive number is an error (never replaced silently); a source that
    reports 0 or NaN (many live cameras and streams do) falls back to 30.
    """
    if video_fps is not None:
        if not (math.isfinite(video_fps) and video_fps > 0):
            raise ConfigError(
                f"--video-fps {video_fps} is not a positive frame rate: pass e.g. --video-fps 30"
            )
        return float(video_fps)
    if source_fps is not None and math.isfinite(source_fps) and source_fps > 0:
        return float(source_fps)
    return DEFAULT_VIDEO_FPS


class AppendFile:
    """An output file written in whole blocks, so that a killed process leaves only complete lines.

    Each `append()` hands the kernel one block with as few write(2) calls as it takes (normally one; no user
    buffer in between), so a SIGKILL or power cut after `append()` returns cannot split the block. When a write
    fails part-way (ENOSPC), the file is truncated back to the end of the last whole block before the error is
    re-raised, so a full disk also leaves whole lines.
    """

    def __init__(self, path: Path, flag: str) -> None:
        self.path = path
        try:
            # Unbuffered: each append() goes straight to the kernel. Closed in close().
            self._file = open(path, "wb", buffering=0)
        except OSError as exc:
            raise SinkError(
                f"{flag} {path} cannot be opened for writing ({exc.strerror or exc}): choose another path"
            ) from exc
        self._good_size = 0

    def append(self, block: bytes) -> None:
        view = memoryview(block)
        try:
            while view:
                n = self._file.write(view)
                if n is None:  # non-blocking file with nothing written; not expected for regular files
                    continue
                view = view[n:]
        except OSError:
            self._truncate_to_good()
            raise
        self._good_size += len(block)

    def _truncate_to_good(self) -> None:
        try:
            self._file.truncate(self._good_size)
        except OSError:
            # Character devices (/dev/full) and some FUSE mounts cannot be truncated; nothing to repair there.
            pass

    def close(self) -> None:
        self._file.close()
