"""What every video source shares: its config, its counters, and the iterator-of-Frame contract."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

from edgedet.errors import ConfigError
from edgedet.types import Frame


@dataclass(frozen=True)
class SourceConfig:
    """How to read a source. One field per CLI flag; every default is here.

    realtime: files, image folders and synthetic sources: deliver no faster than the media frame rate
        (nothing is dropped; a slow consumer simply runs behind). Live sources are always real time.
    loop: files, image folders and synthetic sources with a length: start again at the end (soak tests).
    width, height, fps: what to ask a camera for (the camera may pick the nearest mode it has); `fps` is also
        the nominal rate of image folders (default 30) when pacing or stamping media time.
    reconnect_backoff_s, reconnect_backoff_max_s: live sources wait this long before reopening after a drop,
        doubling after each failed attempt up to the maximum; the wait resets after a frame arrives.
    stall_timeout_s: live sources: no new frame for this long (a read or an open stuck inside OpenCV) counts as
        a stall: the reader thread is abandoned and a new capture is opened.
    open_timeout_s: live sources: an open (connect + stream probe; RTSP through FFmpeg takes 1-3 s) counts as
        stalled only after max(open_timeout_s, stall_timeout_s), so a slow link still connects.
    give_up_s: live sources: no frame at all for this long -> iteration raises SourceError and the run ends.
    max_frames: stop after delivering this many frames (None: until the source ends).
    """

    realtime: bool = False
    loop: bool = False
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    reconnect_backoff_s: float = 0.5
    reconnect_backoff_max_s: float = 8.0
    stall_timeout_s: float = 2.0
    open_timeout_s: float = 8.0
    give_up_s: float = 30.0
    max_frames: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "height", "max_frames"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(
                    f"source {name}={value} must be positive: pass a value > 0 or leave it unset"
                )
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"source fps={self.fps} must be positive: pass e.g. --fps 30 or leave it unset")
        if not 0 < self.reconnect_backoff_s <= self.reconnect_backoff_max_s:
            raise ConfigError(
                f"reconnect backoff {self.reconnect_backoff_s}s..{self.reconnect_backoff_max_s}s is invalid: "
                "need 0 < reconnect_backoff_s <= reconnect_backoff_max_s"
            )
        if not self.open_timeout_s > 0:
            raise ConfigError(f"open_timeout_s={self.open_timeout_s} must be positive (e.g. 8)")
        if not 0 < self.stall_timeout_s < self.give_up_s:
            raise ConfigError(
                f"stall_timeout_s={self.stall_timeout_s} and give_up_s={self.give_up_s} are invalid: "
                "need 0 < stall_timeout_s < give_up_s (e.g. 2 and 30)"
            )


@dataclass(frozen=True)
class SourceStats:
    """Counters of one source since it was opened (a snapshot; the source keeps counting).

    delivered: frames handed to the consumer.
    frames_read: frames the source decoded (live: includes the ones overwritten before use).
    dropped: live: frames overwritten by a newer one before the consumer took them (the consumer was slower
        than the camera); always 0 for files.
    reconnects: live: captures opened after the first (after a read failure, a failed open or a stall).
    stalls: live: times a read or an open was stuck for stall_timeout_s and its reader thread was abandoned.
    read_failures: live: reads or opens that returned failure (camera unplugged, server gone).
    downtime_s: live: total time between the last frame before a failure and the first frame after it
        (including an outage still in progress).
    lost_during_gaps: live: estimate of the frames the camera produced while the source was down
        (downtime x the nominal fps, else x the rate measured from recent inter-frame intervals).
    abandoned_readers: live: reader threads still stuck inside OpenCV after being abandoned.
    last_error: the most recent failure, one line ("" if none).
    """

    delivered: int = 0
    frames_read: int = 0
    dropped: int = 0
    reconnects: int = 0
    stalls: int = 0
    read_failures: int = 0
    downtime_s: float = 0.0
    lost_during_gaps: int = 0
    abandoned_readers: int = 0
    last_error: str = ""


class Source(ABC):
    """A context manager and an iterator of Frame.

    is_live: True for cameras and network streams (newest frame wins, timestamps on the monotonic clock);
        False for files, image folders and synthetic sources (every frame in order, media-time stamps).
    fps: the nominal frame rate, None when the source does not say.
    name: the source as the user wrote it (for messages and logs).

    Iterate once; `close()` is idempotent and ends an iteration in progress.
    """

    is_live: bool = False
    fps: float | None = None
    name: str = ""

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    @abstractmethod
    def stats(self) -> SourceStats: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, live={self.is_live}, fps={self.fps})"


#: opens what the user typed (`--source X`) as a Source
Opener = Callable[[str, "SourceConfig"], "Source"]


@dataclass(frozen=True)
class Scheme:
    """A source form in the source registry (`edgedet.sources.registry.SCHEMES`).

    opener(uri, SourceConfig) -> Source gets the text as the user wrote it. usage: how to write it (shown in
    messages). url: written `name://...`; else `name` or `name:options`.
    """

    opener: Opener
    usage: str
    url: bool


class Pacer:
    """Sleeps so that frame i is released no earlier than start + i / fps (files in `realtime` mode).

    A consumer that falls behind is not caught up by skipping: the next frame goes out at once.
    """

    def __init__(self, fps: float) -> None:
        self._period_s = 1.0 / fps
        self._start: float | None = None
        self._count = 0

    def wait(self) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._count * self._period_s
        self._count += 1
        if due > now:
            time.sleep(due - now)
