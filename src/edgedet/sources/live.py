"""Live capture that never lags: a reader thread keeps only the newest frame, a watchdog reopens on drops/stalls.

Threads (all daemons, so a capture stuck inside OpenCV never keeps the process alive):

- reader (one per capture): opens the capture through the factory, then loops on `read()`, publishing each
  frame into a one-frame slot (overwriting an unconsumed one: newest wins, no queue that grows). It exits on a
  failed read, or when it finds it was abandoned.
- supervisor (one per source): starts readers, reopens with exponential backoff after a failure, and abandons a
  reader whose read has been stuck for `stall_timeout_s` or whose open for `open_timeout_s` (OpenCV's FFmpeg
  `read()` can block ~30 s on a stalled RTSP server and cannot be interrupted, so the only cure is a new thread
  with a new capture). After
  `give_up_s` without a frame it records a fatal error that the consumer raises.
- the consumer (the caller's thread) only ever waits on a condition variable, never on a reader.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgedet.errors import SourceError
from edgedet.sources.base import Source, SourceConfig, SourceStats
from edgedet.types import Frame

log = logging.getLogger(__name__)

_CAP_PROP_FPS = 5  # cv2.CAP_PROP_FPS; a literal so this module works with any capture-like object
_RATE_WINDOW = 64  # inter-frame intervals kept for the measured frame rate
_BURST_WINDOW_S = 3.0  # how long after opening a capture buffered-frame bursts are looked for
_BURST_INTERVAL_S = 0.002  # reads closer than this are buffered frames when the stream's rate is unknown
#: reads in a row at the stream's pace that end a burst (costs one live frame after a connect)
_PACED_READS = 2


class Capture(Protocol):
    """The part of cv2.VideoCapture a live source uses (tests wrap a real one to inject faults)."""

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...

    def isOpened(self) -> bool: ...


CaptureFactory = Callable[[], Capture]


class LiveSource(Source):
    """A live stream read on its own thread; iteration yields only frames newer than the last one delivered.

    factory: called (on a reader thread) to open a new capture, once at start and again after each drop or
        stall; it may block, raise, or return a capture whose isOpened() is False.
    name: the source as the user wrote it; hint: what the user should check, appended to errors.
    fps: nominal frame rate if known (else taken from the capture's CAP_PROP_FPS when it has `get`).

    Frames: `index` counts delivered frames; `source_index` counts frames read from the stream over all
    reconnects (a jump = frames dropped because the consumer was slower); `timestamp_s` is `time.monotonic()`
    right after `read()` returned.

    Construction waits for the first open, which is retried exactly like a reopen (same backoff, same
    `give_up_s`): on a drone the service often starts before the camera or the link is up. The first failed
    attempt logs one warning saying what it waits for; SourceError is raised when nothing opened within
    `give_up_s`.
    """

    is_live = True

    def __init__(
        self,
        factory: CaptureFactory,
        name: str,
        config: SourceConfig = SourceConfig(),
        *,
        fps: float | None = None,
        hint: str = "check that the stream is up and reachable",
    ) -> None:
        self.name = name
        self.fps = fps
        self._factory = factory
        self._config = config
        self._hint = hint
        self._cond = threading.Condition()
        # Everything below is guarded by self._cond.
        self._gen = 0  # generation of the current reader; bumping it abandons that reader
        self._reader: threading.Thread | None = None
        self._reader_state = "idle"  # idle | opening | reading | failed
        self._progress_t = 0.0  # when the current reader last made progress (open started, frame read)
        self._ever_opened = False
        self._slot: tuple[npt.NDArray[np.uint8], int, float] | None = None
        self._slot_fresh = False
        self._read_count = 0
        self._delivered = 0
        self._dropped = 0
        self._reconnects = 0
        self._stalls = 0
        self._read_failures = 0
        self._downtime_s = 0.0
        self._lost = 0
        self._down_since: float | None = None
        self._last_frame_t = time.monotonic()
        self._prev_read_t: float | None = None  # previous frame from the same reader (for the rate estimate)
        # Recent inter-frame intervals, for the rate when the stream declares none. The nominal rate comes
        # first: after each (re)connect FFmpeg hands over a burst of buffered frames ~0.1 ms apart.
        self._intervals: deque[float] = deque(maxlen=_RATE_WINDOW)
        self._backoff_s = config.reconnect_backoff_s
        self._last_error = ""
        self._open_attempts = 0  # failed or abandoned opens before the first success
        self._fatal: str | None = None
        self._closed = False
        self._abandoned: list[threading.Thread] = []
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"edgedet-supervisor {name}", daemon=True
        )
        self._supervisor.start()
        self._wait_first_open()

    # ------------------------------------------------------------------ consumer side

    def __iter__(self) -> Iterator[Frame]:
        limit = self._config.max_frames
        while limit is None or self._delivered < limit:
            with self._cond:
                while self._closed or not self._slot_fresh:
                    if self._closed:
                        return
                    if self._fatal is not None:
                        raise SourceError(self._fatal)
                    # The timeout only guards against a dead supervisor; frames and errors notify.
                    self._cond.wait(timeout=0.25)
                    if not self._supervisor.is_alive() and self._fatal is None and not self._closed:
                        self._fatal = f"{self.name}: the capture supervisor thread died ({self._last_error})"
                assert self._slot is not None
                image, source_index, t = self._slot
                self._slot_fresh = False
                index = self._delivered
                self._delivered += 1
            yield Frame(image=image, index=index, timestamp_s=t, source_index=source_index)

    def stats(self) -> SourceStats:
        with self._cond:
            downtime = self._downtime_s
            lost = self._lost
            if self._down_since is not None:
                gap = time.monotonic() - self._down_since
                downtime += gap
                lost += self._lost_in(gap)
            return SourceStats(
                delivered=self._delivered,
                frames_read=self._read_count,
                dropped=self._dropped,
                reconnects=self._reconnects,
                stalls=self._stalls,
                read_failures=self._read_failures,
                downtime_s=downtime,
                lost_during_gaps=lost,
                abandoned_readers=sum(t.is_alive() for t in self._abandoned),
                last_error=self._last_error,
            )

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._gen += 1  # the reader exits (and releases its capture) when its read returns
            reader = self._reader
            self._cond.notify_all()
        self._supervisor.join(timeout=1.0)
        # A healthy reader returns from read() within a frame period; a stuck one is left behind (daemon).
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=min(1.0, self._config.stall_timeout_s))

    # ------------------------------------------------------------------ internals

    def _wait_first_open(self) -> None:
        deadline = time.monotonic() + self._config.give_up_s + 1.0
        with self._cond:
            while not self._ever_opened and self._fatal is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fatal = f"{self.name}: the capture did not open within {self._config.give_up_s:g}s: {self._hint}"
                    break
                self._cond.wait(timeout=min(left, 0.25))
            fatal = self._fatal if not self._ever_opened else None
        if fatal is not None:
            self.close()
            raise SourceError(fatal)

    def _limit_s(self) -> float:
        """How long the current reader may go without progress before it counts as stalled."""
        cfg = self._config
        if self._reader_state == "opening":
            return max(cfg.open_timeout_s, cfg.stall_timeout_s)
        return cfg.stall_timeout_s

    def _lost_in(self, gap_s: float) -> int:
        rate = self.fps
        if not rate and self._intervals:
            median = float(np.median(self._intervals))
            rate = 1.0 / median if median > 0 else None
        if not rate or gap_s <= 0:
            return 0
        return max(0, round(gap_s * rate) - 1)

    def _mark_down_locked(self, reason: str) -> None:
        self._last_error = reason
        # Downtime is an interruption of frames that flowed; waiting for the very first frame is not one.
        if self._down_since is None and self._read_count > 0:
            self._down_since = self._last_frame_t

    def _start_reader_locked(self, now: float) -> None:
        if self._ever_opened or self._gen > 0:
            self._reconnects += 1
            if self._ever_opened:
                log.info("%s: reconnecting (attempt %d)", self.name, self._reconnects)
        self._gen += 1
        self._reader_state = "opening"
        self._progress_t = now
        self._prev_read_t = None
        self._reader = threading.Thread(
            target=self._read_loop,
            args=(self._gen,),
            name=f"edgedet-reader {self.name} #{self._gen}",
            daemon=True,
        )
        self._reader.start()

    def _supervise(self) -> None:
        cfg = self._config
        next_open_t = time.monotonic()
        try:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    if self._reader_state == "failed":
                        self._reader_state = "idle"
                        self._reader = None
                        next_open_t = now + self._backoff_s
                        if self._ever_opened:
                            log.warning(
                                "%s: %s; reopening in %.2gs", self.name, self._last_error, self._backoff_s
                            )
                        else:
                            self._note_first_open_failure_locked()
                        self._backoff_s = min(2.0 * self._backoff_s, cfg.reconnect_backoff_max_s)
                    elif (
                        self._reader_state in ("opening", "reading")
                        and now - self._progress_t > self._limit_s()
                    ):
                        what = "open" if self._reader_state == "opening" else "read"
                        self._stalls += 1
                        self._mark_down_locked(f"{what} stalled for {now - self._progress_t:.1f}s")
                        if self._ever_opened:
                            log.warning(
                                "%s: %s stalled for %.1fs; abandoning the reader, reopening in %.2gs",
                                self.name,
                                what,
                                now - self._progress_t,
                                self._backoff_s,
                            )
                        else:
                            self._note_first_open_failure_locked()
                        if self._reader is not None:
                            self._abandoned = [t for t in self._abandoned if t.is_alive()]
                            self._abandoned.append(self._reader)
                        self._gen += 1
                        self._reader = None
                        self._reader_state = "idle"
                        next_open_t = now + self._backoff_s
                        self._backoff_s = min(2.0 * self._backoff_s, cfg.reconnect_backoff_max_s)
                    if self._reader_state == "idle" and now >= next_open_t:
                        self._start_reader_locked(now)
                    silent_s = now - self._last_frame_t
                    if silent_s > cfg.give_up_s:
                        if self._ever_opened:
                            self._fatal = (
                                f"{self.name}: no frame for {silent_s:.1f}s (gave up after {self._reconnects} "
                                f"reconnects; last error: {self._last_error or 'none'}): {self._hint}"
                            )
                            log.error("%s", self._fatal)
                        else:
                            attempts = self._open_attempts + (self._reader_state == "opening")
                            self._fatal = (
                                f"could not open {self.name} within {cfg.give_up_s:g}s ({attempts} attempts; "
                                f"last error: {self._last_error or 'none'}): {self._hint}"
                            )
                        self._gen += 1
                        self._cond.notify_all()
                        return
                    # Sleep until the next deadline; readers notify on frames and failures.
                    deadlines = [self._last_frame_t + cfg.give_up_s]
                    if self._reader_state == "idle":
                        deadlines.append(next_open_t)
                    else:
                        deadlines.append(self._progress_t + self._limit_s())
                    self._cond.wait(timeout=max(0.001, min(deadlines) - now + 0.001))
        except Exception as exc:  # a bug here must surface in the consumer, not hang it
            with self._cond:
                self._fatal = f"{self.name}: capture supervisor failed: {exc!r}"
                self._cond.notify_all()

    def _note_first_open_failure_locked(self) -> None:
        """Say once what the source waits for; later failed attempts only go to the debug log."""
        self._open_attempts += 1
        if self._open_attempts == 1:
            log.warning(
                "%s is not available yet (%s); waiting for it, retrying with backoff for up to %gs",
                self.name,
                self._last_error,
                self._config.give_up_s,
            )
        else:
            log.debug("%s: open attempt %d failed (%s)", self.name, self._open_attempts, self._last_error)

    def _fail(self, gen: int, reason: str) -> None:
        with self._cond:
            if gen != self._gen:
                return
            self._read_failures += 1
            self._mark_down_locked(reason)
            self._reader_state = "failed"
            self._cond.notify_all()

    def _read_loop(self, gen: int) -> None:
        cap: Capture | None = None
        try:
            try:
                cap = self._factory()
                opened = bool(cap.isOpened())
            except Exception as exc:
                self._fail(gen, f"open failed: {exc}")
                return
            if not opened:
                self._fail(gen, "open failed")
                return
            if self.fps is None:
                self.fps = _nominal_fps(cap)
            with self._cond:
                if gen != self._gen:
                    return
                self._ever_opened = True
                self._reader_state = "reading"
                self._progress_t = time.monotonic()
                self._cond.notify_all()
            # Right after a (re)connect FFmpeg hands over ~1 s of buffered frames a fraction of a millisecond
            # apart, all stamped "now": the tracker would see them as huge velocities. Frames read much faster
            # than the stream's rate in the first seconds after opening are stale and are discarded.
            t_open = time.monotonic()
            prev_t: float | None = None
            in_burst = True
            paced = 0  # consecutive reads at the stream's pace
            while True:
                try:
                    ok, image = cap.read()
                except Exception as exc:
                    self._fail(gen, f"read raised {exc!r}")
                    return
                t = time.monotonic()
                if not ok or image is None:
                    self._fail(gen, "read failed (stream ended or device lost)")
                    return
                if in_burst:
                    fast = 0.25 / self.fps if self.fps else _BURST_INTERVAL_S
                    # The first frame may itself be buffered: it waits until the next read shows the pace. One
                    # slow read is not the end of a burst (a busy CPU preempts the reader in the middle of one):
                    # the burst ends after _PACED_READS reads in a row at the stream's pace, or with the window.
                    paced = paced + 1 if prev_t is not None and t - prev_t >= fast else 0
                    buffered = paced < _PACED_READS and t - t_open < _BURST_WINDOW_S
                    prev_t = t
                    if buffered:
                        with self._cond:
                            if gen != self._gen:
                                return
                            self._dropped += 1  # stale, never delivered: counted with the dropped frames
                            self._read_count += 1
                            self._progress_t = t  # reading, not stalled
                        continue
                    in_burst = False
                with self._cond:
                    if gen != self._gen:
                        return  # abandoned while blocked in read(): this frame belongs to no one
                    self._publish_locked(image, t)
        finally:
            if cap is not None:
                try:
                    cap.release()
                except Exception as exc:  # releasing a broken capture must not kill the thread noisily
                    log.debug("%s: release failed: %r", self.name, exc)

    def _publish_locked(self, image: npt.NDArray[np.uint8], t: float) -> None:
        if self._down_since is not None:
            gap = t - self._down_since
            self._downtime_s += gap
            self._lost += self._lost_in(gap)
            log.info("%s: frames resumed after %.2fs", self.name, gap)
            self._down_since = None
        if self._prev_read_t is not None:
            self._intervals.append(t - self._prev_read_t)
        self._prev_read_t = t
        if self._slot_fresh:
            self._dropped += 1
        self._slot = (image, self._read_count, t)
        self._slot_fresh = True
        self._read_count += 1
        self._last_frame_t = t
        self._progress_t = t
        self._backoff_s = self._config.reconnect_backoff_s
        self._cond.notify_all()


def _nominal_fps(cap: Capture) -> float | None:
    get = getattr(cap, "get", None)
    if get is None:
        return None
    try:
        fps = float(get(_CAP_PROP_FPS))
    except Exception:
        return None
    return fps if math.isfinite(fps) and 0 < fps < 1000 else None
