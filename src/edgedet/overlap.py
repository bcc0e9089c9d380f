"""The overlapped runtime (`--overlap on`): every stage on its own thread, joined by bounded queues.

    capture --[1]--> prepare: scheduler, CMC, preprocess --[1]--> infer: submit/collect
        --[2]--> track: postprocess, tracker, ground positions --[2]--> sinks (on the calling thread, so a window stays on the
        main thread and signals are seen)

While the engine runs frame N, capture decodes N+1, the preparer letterboxes N+1, the tracker handles N-1 and
the sinks draw and encode N-2: host work hides behind inference instead of adding to it (on a Jetson the engine
is on the GPU; on a CPU the stages share the cores, which `edgedet.backends.onnxruntime`'s core budget counts).

Contract, the same as the sequential loop's (`Pipeline._loop`):
- Frames leave in the order they were captured; each stage is one thread and each queue is FIFO.
- Files deliver every frame (capture blocks while the pipeline is full). From a live source, capture takes a
  frame only when the next stage has room for it, so the newest frame wins at the capture end: the source keeps
  only its newest frame and counts the ones it replaced (`SourceStats.dropped`); a frame the source delivered
  is never dropped later, so `Frame.index` stays the count of delivered frames. No queue holds more than its
  depth.
- The scheduler decides detect or track-only when a frame leaves the capture queue; a track-only frame skips
  preprocess and inference but passes every stage in order, so the tracker still steps once per frame with
  that frame's motion.
- Every frame carries its timestamps: `stage_ms` holds each stage's time, the timer's "frame" sample is capture
  to output (end-to-end latency, queue waits included), "age" (live) is capture clock to output.
- Stopping: end of source drains every frame in flight; Ctrl-C/SIGTERM stops capture and drains (a second
  Ctrl-C stops at once); max frames or a closed window stops at once; an error in any stage stops every stage
  and is raised from `run` after the outputs are closed. Every thread is joined before `run` returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgedet.backends import Backend as BackendBase
from edgedet.boxes import Letterbox
from edgedet.preprocess import Preprocessor
from edgedet.profiling import RateMeter
from edgedet.tracking import inside_frame, step
from edgedet.types import Detections, Frame, FrameResult, GroundPositions

if TYPE_CHECKING:
    from edgedet.pipeline import Pipeline, RunSummary

log = logging.getLogger(__name__)

#: queue depths. Before inference 1: one prepared frame waiting is all the engine needs to stay busy, and every
#: frame more would add an inference time of latency. After it 2, so a sink that is briefly slow (an encoder's
#: key frame) does not stall the engine.
CAPTURE_DEPTH = 1
PREPARED_DEPTH = 1
STAGE_DEPTH = 2
#: stage threads that may run while the model infers: capture, prepare, track and sinks (ONNX Runtime's core
#: budget leaves them cores; the sequential loop has one, the source's capture or render thread)
STAGES_BESIDE_INFERENCE = 4
#: how long the sink loop waits for a frame before it looks at stop requests again (signals are handled then)
_POLL_S = 0.1
#: how long `run` waits for each stage thread to finish after the run ends
JOIN_TIMEOUT_S = 10.0


class _Closed(Exception):
    """A queue was closed: the run is being torn down (an error or an immediate stop)."""


class _End:
    """The marker after the last frame: each stage passes it on and ends."""


END = _End()


class BoundedQueue:
    """A FIFO of at most `depth` items between two stage threads; it never grows.

    put() waits while full; get() waits while empty (None after `timeout_s`); wait_for_room() waits until a
    put would not. close() wakes every waiter, which then raises _Closed. `high_water` is the most items ever
    held (tests check it never passes depth).
    """

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"queue depth must be 1 or more, got {depth}")
        self.depth = depth
        self.high_water = 0
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: Any) -> None:
        with self._cond:
            self._wait_for_room_locked()
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()

    def wait_for_room(self) -> None:
        with self._cond:
            self._wait_for_room_locked()

    def _wait_for_room_locked(self) -> None:
        while len(self._items) >= self.depth and not self._closed:
            self._cond.wait()
        if self._closed:
            raise _Closed

    def get(self, timeout_s: float | None = None) -> Any:
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait_for(lambda: self._items or self._closed, timeout_s)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._closed:
                raise _Closed
            return None

    def get_nowait(self) -> Any:
        """The next item, or None when the queue is empty."""
        with self._cond:
            if self._closed:
                raise _Closed
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class _Job:
    """One frame on its way through the stages, with what each stage added and how long it took."""

    frame: Frame
    t_capture_ns: int  # perf_counter_ns when the source handed the frame over
    detect: bool = False
    warp: npt.NDArray[np.float64] | None = None
    tensor: npt.NDArray[np.float32] | None = None
    letterbox: Letterbox | None = None
    outputs: Sequence[npt.NDArray[Any]] = ()
    dets: Detections | None = None
    geo: GroundPositions | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)
    #: the time each stage thread spent on this frame (capture, prepare, infer, track, sinks): the largest
    #: is what the frame costs the pipeline's throughput, which the target-FPS scheduler learns from
    busy_ms: dict[str, float] = field(default_factory=dict)


def _ms_since(t_ns: int) -> float:
    return (time.perf_counter_ns() - t_ns) / 1e6


class OverlappedLoop:
    """Runs `pipeline`'s stages on threads for one run; `run(summary)` fills the summary and joins every thread.

    The pipeline owns the stages, the timer, the signal handlers and the closing of outputs; this class only
    moves frames between the stages. `queues` is exposed for tests (depths, drops, high-water marks).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.q_capture = BoundedQueue(CAPTURE_DEPTH)
        self.q_prepared = BoundedQueue(PREPARED_DEPTH)
        self.q_inferred = BoundedQueue(STAGE_DEPTH)
        self.q_tracked = BoundedQueue(STAGE_DEPTH)
        self.queues = (self.q_capture, self.q_prepared, self.q_inferred, self.q_tracked)
        self._stop_capture = threading.Event()
        self._scheduler_lock = threading.Lock()  # prepare asks should_detect, the sink stage records costs
        self._errors: list[tuple[str, BaseException]] = []
        self._errors_lock = threading.Lock()
        backend = pipeline.detector.backend
        self._async = isinstance(backend, BackendBase)  # plugins without submit/collect run infer()
        self._in_flight = max(1, backend.max_in_flight) if isinstance(backend, BackendBase) else 1
        self._copy_outputs = backend.reuses_outputs if isinstance(backend, BackendBase) else True
        self.threads: list[threading.Thread] = []

    # --- control ------------------------------------------------------------------------------------------

    def _fail(self, stage: str, exc: BaseException) -> None:
        """A stage raised: remember the first error and stop every stage now."""
        with self._errors_lock:
            self._errors.append((stage, exc))
        log.debug("stage %s failed: %r", stage, exc)
        self._abort()

    def _abort(self) -> None:
        self._stop_capture.set()
        for q in self.queues:
            q.close()
        if self.p.source.is_live:
            self.p.source.close()  # a live source's close() ends an iteration blocked on a stalled stream

    def _stage(self, name: str, body: Any) -> threading.Thread:
        def target() -> None:
            try:
                body()
            except _Closed:
                pass  # torn down by another stage's error or an immediate stop
            except BaseException as exc:
                self._fail(name, exc)

        t = threading.Thread(target=target, name=f"edgedet-{name}", daemon=True)
        self.threads.append(t)
        return t

    # --- the run ------------------------------------------------------------------------------------------

    def run(self, summary: RunSummary) -> None:
        for name, body in (
            ("capture", self._capture),
            ("prepare", self._prepare),
            ("infer", self._infer),
            ("track", self._track),
        ):
            self._stage(name, body).start()
        try:
            self._sinks(summary)
        except _Closed:
            pass
        finally:
            self._abort()
            for t in self.threads:
                t.join(JOIN_TIMEOUT_S)
                if t.is_alive():
                    log.warning("stage thread %s did not finish within %.0f s", t.name, JOIN_TIMEOUT_S)
        if self._errors:
            stage, exc = self._errors[0]
            log.info("the run stopped: the %s stage raised %s", stage, type(exc).__name__)
            raise exc

    def _capture(self) -> None:
        p = self.p
        live = p.source.is_live
        it = iter(p.source)
        try:
            n = 0
            t_wait = time.perf_counter_ns()
            while not self._stop_capture.is_set():
                if live:
                    # Take a frame only when it can move on at once: until then the source keeps replacing
                    # its newest frame, so the one taken is as fresh as the pipeline can use.
                    self.q_capture.wait_for_room()
                    t_wait = time.perf_counter_ns()
                frame = next(it, None)
                if frame is None:
                    break
                t = time.perf_counter_ns()
                job = _Job(frame, t)
                job.stage_ms["capture"] = job.busy_ms["capture"] = (t - t_wait) / 1e6
                self.q_capture.put(job)
                n += 1
                if p.max_frames is not None and n >= p.max_frames:
                    break
                t_wait = time.perf_counter_ns()
        finally:
            if isinstance(it, Generator):
                it.close()  # the source's own cleanup (a render thread, a reader) runs now, on this thread
        self.q_capture.put(END)

    def _prepare(self) -> None:
        p = self.p
        detector = p.detector
        # Each preprocessor owns one tensor buffer; a tensor is in use until inference has taken it, so there
        # are as many as can be between here and a finished inference.
        ring = [detector.preprocess] + [
            Preprocessor(detector.spec) for _ in range(PREPARED_DEPTH + self._in_flight + 1)
        ]
        turn = 0
        while True:
            job = self.q_capture.get()
            if job is END:
                self.q_prepared.put(END)
                return
            t0 = time.perf_counter_ns()
            with self._scheduler_lock:
                job.detect = p.scheduler.should_detect(job.frame.timestamp_s)
            if p.cmc is not None:
                # every frame, detector or not: the tracker steps once per frame and each step needs the motion
                job.warp = p.cmc(
                    job.frame.image, job.frame.timestamp_s
                )  # the pose-based estimator needs the time
                job.stage_ms["cmc"] = _ms_since(t0)
            if job.detect:
                t = time.perf_counter_ns()
                job.tensor, job.letterbox = ring[turn % len(ring)](job.frame.image)
                turn += 1
                job.stage_ms["preprocess"] = _ms_since(t)
            job.busy_ms["prepare"] = _ms_since(t0)
            self.q_prepared.put(job)

    def _infer(self) -> None:
        backend = self.p.detector.backend
        pending: deque[tuple[_Job, Any, int]] = deque()  # submitted, not yet collected, oldest first

        def collect_oldest() -> None:
            job, handle, t0 = pending.popleft()
            outputs = backend.collect(handle) if isinstance(backend, BackendBase) else handle
            job.outputs = [np.array(o) for o in outputs] if self._copy_outputs else list(outputs)
            job.stage_ms["infer"] = job.busy_ms["infer"] = _ms_since(t0)
            job.tensor = None
            self.q_inferred.put(job)

        while True:
            # With work in flight, take the next frame only if it is already waiting: otherwise collect, so a
            # result never waits for the next capture.
            job = self.q_prepared.get_nowait() if pending else self.q_prepared.get()
            if job is None:
                collect_oldest()
                continue
            if job is END or not job.detect:
                while pending:  # keep the order: earlier detector frames leave first
                    collect_oldest()
                self.q_inferred.put(job)
                if job is END:
                    return
                continue
            t0 = time.perf_counter_ns()
            assert job.tensor is not None
            handle = (
                backend.submit(job.tensor) if isinstance(backend, BackendBase) else backend.infer(job.tensor)
            )
            pending.append((job, handle, t0))
            if len(pending) >= self._in_flight:
                collect_oldest()

    def _track(self) -> None:
        p = self.p
        while True:
            job = self.q_inferred.get()
            if job is END:
                self.q_tracked.put(END)
                return
            t0 = time.perf_counter_ns()
            ts = job.frame.timestamp_s
            if job.detect:
                assert job.letterbox is not None
                dets = p.detector.decode(job.outputs, job.letterbox)
                job.outputs = ()
                job.stage_ms["postprocess"] = _ms_since(t0)
                if p.tracker is not None:
                    t = time.perf_counter_ns()
                    dets = inside_frame(step(p.tracker, ts, dets, job.warp), job.frame.hw)
                    job.stage_ms["track"] = _ms_since(t)
            else:
                assert p.tracker is not None  # guaranteed by Pipeline.__init__
                dets = inside_frame(step(p.tracker, ts, warp=job.warp), job.frame.hw)
                job.stage_ms["track"] = _ms_since(t0)
            if p.geo is not None:
                t = time.perf_counter_ns()
                job.geo = p.geo(job.frame, dets)
                job.stage_ms["geo"] = _ms_since(t)
            job.dets = dets
            job.busy_ms["track"] = _ms_since(t0)
            self.q_tracked.put(job)

    def _sinks(self, summary: RunSummary) -> None:
        """The last stage, on the calling thread: sinks, timings, summary, stop requests."""
        p = self.p
        timer = p.timer
        is_live = p.source.is_live
        capture_is_work = not (is_live or p.paced)
        rate = RateMeter()
        while True:
            job = self.q_tracked.get(_POLL_S)
            if job is None:
                if p.stop_reason is not None:
                    self._stop_capture.set()  # Ctrl-C / SIGTERM: take no new frames, finish those in flight
                    if is_live:
                        p.source.close()
                continue
            if job is END:
                return
            t = time.perf_counter_ns()
            assert job.dets is not None
            result = FrameResult(
                job.frame, job.dets, detector_ran=job.detect, fps=rate.fps, stage_ms=job.stage_ms, geo=job.geo
            )
            for sink in p.sinks:
                sink.write(result)
            t_done = time.perf_counter_ns()
            job.stage_ms["sinks"] = job.busy_ms["sinks"] = (t_done - t) / 1e6
            for name, ms in job.stage_ms.items():
                timer.add(name, ms)
            timer.add("frame", (t_done - job.t_capture_ns) / 1e6)  # end to end: capture to output
            if is_live:
                timer.add("age", (time.monotonic() - job.frame.timestamp_s) * 1e3)
            # The stages run side by side, so a frame costs the pipeline its slowest stage, not the sum.
            busy = [ms for k, ms in job.busy_ms.items() if k != "capture" or capture_is_work]
            with self._scheduler_lock:
                p.scheduler.record(job.detect, max(busy))
            rate.tick(t_done)
            summary.frames += 1
            if job.detect:
                summary.detector_runs += 1
            else:
                summary.track_only_frames += 1
            if p.max_frames is not None and summary.frames >= p.max_frames:
                p.request_stop("max frames", keep_first=True)
                return
            if any(s.stop_requested for s in p.sinks):
                p.request_stop("window closed", keep_first=True)
                return
            if p.stop_reason is not None:
                self._stop_capture.set()
                if is_live:
                    p.source.close()
