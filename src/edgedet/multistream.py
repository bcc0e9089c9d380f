"""Several sources in one process, one model: frames that are ready together go through one inference call.

    reader thread per stream: Source --newest frame (live) / next frame (files)--> its slot
    this thread: wait for a ready slot, then up to `batch_window_s` for the other streams' slots
        -> per stream: scheduler (detect or track-only), camera-motion compensation
        -> the detect frames preprocessed into one (B, 3, H, W) tensor -> one Backend.infer (chunks of the
           model's batch: dynamic = all, fixed N = padded to N, 1 = one call per frame)
        -> per stream: postprocess, its own tracker, its own sinks

Every stream keeps its own reader, tracker, scheduler state and outputs; output paths take `{stream}` (the
stream's name). A stream that never opens, drops or dies is closed and named in the summary; the others go
on. Unlike a batcher that waits for every stream (the run then moves at the slowest stream's rate and one dead
stream ends it), the window is short and only streams with a frame already in hand join the batch.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from edgedet.config import RunConfig, apply_demo_defaults
from edgedet.detector import Detector
from edgedet.errors import ConfigError, EdgedetError
from edgedet.pipeline import resolve_model
from edgedet.preprocess import Preprocessor
from edgedet.profiling import LatencyStats, StageTimer
from edgedet.protocols import Sink, Source, Tracker
from edgedet.scheduler import Scheduler
from edgedet.sinks.base import OutputStatus
from edgedet.sources.base import SourceStats
from edgedet.tracking import inside_frame, step
from edgedet.types import Frame, FrameResult

log = logging.getLogger(__name__)

__all__ = [
    "STREAM_PLACEHOLDER",
    "MultiStreamRunner",
    "MultiSummary",
    "StreamSummary",
    "build_multistream",
    "read_streams_file",
    "stream_uris",
]

#: replaced by each stream's name in every output path and sink argument
STREAM_PLACEHOLDER = "{stream}"
#: the default batch window, as a fraction of the fastest stream's frame period
WINDOW_FRACTION = 0.25
#: window when no stream states its frame rate (unpaced files, unknown cameras)
DEFAULT_WINDOW_S = 0.005


def read_streams_file(path: str | Path) -> list[str]:
    """The sources of a `.streams` file: one per line; blank lines and lines starting with # are skipped."""
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the streams file {p}: {exc.strerror}; pass a text file, one source a line"
        ) from None
    uris = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not uris:
        raise ConfigError(f"the streams file {p} lists no source: write one source per line")
    return uris


def stream_uris(sources: Sequence[str]) -> list[str]:
    """`--source` values (repeatable) -> the stream list; a value ending in `.streams` is read as a file."""
    out: list[str] = []
    for s in sources:
        out.extend(read_streams_file(s) if s.endswith(".streams") else [s])
    return out


def is_multistream(sources: Sequence[str]) -> bool:
    """True when the sources make more than one stream, or name a `.streams` file."""
    return len(sources) > 1 or any(s.endswith(".streams") for s in sources)


# --- summary ----------------------------------------------------------------------------------------------------


@dataclass
class StreamSummary:
    """One stream's share of a run. status: "ended" (its source finished), "max frames", "stopped" (the run
    stopped), or "failed: <reason>" (never opened, or died and gave up)."""

    name: str
    uri: str
    status: str = "ended"
    frames: int = 0
    detector_runs: int = 0
    track_only_frames: int = 0
    replaced_frames: int = 0  # live frames overwritten in the slot before the batcher took them
    first_frame_s: float | None = None
    last_frame_s: float | None = None
    source_stats: SourceStats = field(default_factory=SourceStats)
    latency: dict[str, LatencyStats] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    output_status: list[OutputStatus] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status.startswith("failed")

    @property
    def fps(self) -> float:
        if self.first_frame_s is None or self.last_frame_s is None or self.frames < 2:
            return 0.0
        span = self.last_frame_s - self.first_frame_s
        return (self.frames - 1) / span if span > 0 else 0.0

    @property
    def incomplete_outputs(self) -> list[OutputStatus]:
        return [o for o in self.output_status if not o.complete]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.uri,
            "status": self.status,
            "frames": self.frames,
            "fps": round(self.fps, 2),
            "detector_runs": self.detector_runs,
            "track_only_frames": self.track_only_frames,
            "dropped_frames": self.source_stats.dropped + self.replaced_frames,
            "reconnects": self.source_stats.reconnects,
            "latency_ms": {k: v.as_dict() for k, v in self.latency.items()},
            "outputs": list(self.outputs),
            "incomplete_outputs": [o.as_dict() for o in self.incomplete_outputs],
        }

    def format(self) -> str:
        frame, queue = self.latency.get("frame"), self.latency.get("queue")
        lat = f", latency p50 {frame.p50_ms:.1f} ms p99 {frame.p99_ms:.1f} ms" if frame is not None else ""
        if queue is not None:
            lat += f" (+ waited for the batch p50 {queue.p50_ms:.1f} ms p99 {queue.p99_ms:.1f} ms)"
        dropped = self.source_stats.dropped + self.replaced_frames
        return (
            f"[{self.name}] {self.uri}: {self.status}; {self.frames} frames at {self.fps:.1f} FPS "
            f"(detector {self.detector_runs}, track-only {self.track_only_frames}, dropped {dropped}"
            + (f", reconnects {self.source_stats.reconnects}" if self.source_stats.reconnects else "")
            + f"){lat}"
        )


@dataclass
class MultiSummary:
    """A multi-stream run: each stream's summary, and how the inference calls were batched."""

    streams: list[StreamSummary]
    wall_s: float = 0.0
    stopped_by: str = "end of sources"
    infer_calls: int = 0
    inferred_frames: int = 0
    batch_note: str = ""
    latency: dict[str, LatencyStats] = field(default_factory=dict)  # per inference call

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def mean_batch(self) -> float:
        return self.inferred_frames / self.infer_calls if self.infer_calls else 0.0

    @property
    def failed_streams(self) -> list[StreamSummary]:
        return [s for s in self.streams if s.failed]

    @property
    def incomplete_outputs(self) -> list[OutputStatus]:
        return [o for s in self.streams for o in s.incomplete_outputs]

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.fps, 2),
            "stopped_by": self.stopped_by,
            "infer_calls": self.infer_calls,
            "inferred_frames": self.inferred_frames,
            "mean_batch": round(self.mean_batch, 3),
            "batch_note": self.batch_note,
            "latency_ms": {k: v.as_dict() for k, v in self.latency.items()},
            "streams": [s.as_dict() for s in self.streams],
        }

    def format(self) -> str:
        lines = [
            f"{len(self.streams)} streams: {self.frames} frames in {self.wall_s:.1f} s = {self.fps:.1f} FPS in all; "
            f"{self.infer_calls} inference calls, {self.mean_batch:.2f} frames per call; stopped by {self.stopped_by}"
        ]
        if self.batch_note:
            lines.append(self.batch_note)
        lines.extend(s.format() for s in self.streams)
        for s in self.streams:
            lines.extend(f"[{s.name}] " + o.format() for o in s.incomplete_outputs)
            lines.extend(f"[{s.name}] wrote {out}" for out in s.outputs)
        return "\n".join(lines)


# --- one stream -------------------------------------------------------------------------------------------------


@dataclass
class StreamParts:
    """What a stream needs once its source is open: made by `setup(source)` on the stream's reader thread."""

    tracker: Tracker | None
    sinks: list[Sink]
    cmc: Callable[[np.ndarray], np.ndarray | None] | None
    outputs: list[str]


class _Stream:
    """A stream's state. The reader thread fills `slot`; the batcher takes it. Guarded by the runner's lock."""

    def __init__(
        self,
        name: str,
        uri: str,
        opener: Callable[[], Source],
        setup: Callable[[Source], StreamParts],
        scheduler: Scheduler,
        detector: Detector,
    ) -> None:
        self.name = name
        self.uri = uri
        self.opener = opener
        self.setup = setup
        self.scheduler = scheduler
        self.preprocess = Preprocessor(detector.spec)  # its own: keeps this stream's letterbox geometry
        self.summary = StreamSummary(name, uri)
        self.timer = StageTimer()
        self.source: Source | None = None
        self.parts: StreamParts | None = None
        self.is_live = False
        self.slot: tuple[Frame, float] | None = (
            None  # the frame, and time.monotonic() when it was handed over
        )
        self.reader_done = False
        self.finished = False
        self.error: str | None = None
        self.stop = False
        self.max_frames_reached = False
        self.fps: float | None = None

    @property
    def active(self) -> bool:
        return not self.finished and not self.reader_done


class MultiStreamRunner:
    """Runs several streams through one Detector. Build it with `build_multistream(RunConfig, uris)`.

    streams: (name, uri, opener, setup, scheduler) per stream; opener() opens the Source (on the stream's own
    reader thread, so a source that takes long to open or never opens holds up no other stream); setup(source)
    makes its tracker, sinks and camera-motion estimator. batch_window_s: after the first frame is ready, how
    long to wait for the other streams' frames (None: a quarter of the fastest stream's frame period).
    max_batch: the most frames per inference call (None: all ready frames). max_frames: per stream.
    paced: the sources wait for their frame times (the scheduler must not count that as work).
    """

    def __init__(
        self,
        detector: Detector,
        streams: Sequence[tuple[str, str, Callable[[], Source], Callable[[Source], StreamParts], Scheduler]],
        *,
        batch_window_s: float | None = None,
        max_batch: int | None = None,
        max_frames: int | None = None,
    ) -> None:
        if not streams:
            raise ConfigError("no stream to run: pass --source at least once")
        names = [s[0] for s in streams]
        if len(set(names)) != len(names):
            raise ConfigError(f"stream names must differ, got {names}")
        self.detector = detector
        self.streams = [_Stream(n, u, o, st, sch, detector) for n, u, o, st, sch in streams]
        self.batch_window_s = batch_window_s
        self.max_batch = max_batch
        self.max_frames = max_frames
        self._cond = threading.Condition()
        self._stop_reason: str | None = None
        self._threads: list[threading.Thread] = []
        self.timer = StageTimer()
        self.infer_calls = 0
        self.inferred_frames = 0
        spec_batch = detector.spec.batch
        self.model_batch = spec_batch  # 0 dynamic, 1 one frame, N fixed
        self.batch_note = ""
        if spec_batch == 1 and len(self.streams) > 1:
            self.batch_note = (
                f"note: {detector.model_path.name} takes batch 1: one inference call per frame; export it with "
                "`edgedet convert --dynamic` (or --batch N) to batch frames across streams"
            )

    def request_stop(self, reason: str = "request") -> None:
        """Ask every stream to finish (thread-safe)."""
        with self._cond:
            self._stop_reason = self._stop_reason or reason
            for s in self.streams:
                s.stop = True
            self._cond.notify_all()
        for s in self.streams:
            src = s.source
            if src is not None:
                src.close()  # ends a read in progress

    # --- readers --------------------------------------------------------------------------------------------

    def _read(self, s: _Stream) -> None:
        try:
            source = s.opener()
            with self._cond:
                s.source = source
                s.is_live = source.is_live
                s.fps = source.fps if source.fps and source.fps > 0 else None
                stop = s.stop
            if stop:
                return
            s.parts = s.setup(source)
            for frame in source:
                with self._cond:
                    if s.is_live:
                        if s.slot is not None:
                            s.summary.replaced_frames += 1  # newest frame wins, as inside a live source
                    else:
                        while s.slot is not None and not s.stop:
                            self._cond.wait(0.5)  # files: every frame, in order
                    if s.stop:
                        break
                    s.slot = (frame, time.monotonic())
                    self._cond.notify_all()
        except EdgedetError as exc:
            s.error = str(exc)
        except Exception as exc:  # a reader must never take the run down: name it in the summary instead
            log.warning("stream %s failed", s.name, exc_info=True)
            s.error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._cond:
                s.reader_done = True
                self._cond.notify_all()

    # --- the batcher ----------------------------------------------------------------------------------------

    def _window_s(self) -> float:
        if self.batch_window_s is not None:
            return self.batch_window_s
        rates = [s.fps for s in self.streams if s.fps and not s.finished]
        return WINDOW_FRACTION / max(rates) if rates else DEFAULT_WINDOW_S

    def _take_batch(self) -> list[tuple[_Stream, Frame, float]] | None:
        """Wait for a ready frame, then up to the window for the other active streams; None when all ended."""
        with self._cond:
            while True:
                if self._stop_reason is not None:
                    return None
                self._finish_ended()
                if any(s.slot is not None for s in self.streams):
                    break
                if all(s.finished for s in self.streams):
                    return None
                self._cond.wait(0.1)
            deadline = time.monotonic() + self._window_s()
            while True:
                waiting = [s for s in self.streams if s.slot is None and s.active and s.parts is not None]
                left = deadline - time.monotonic()
                if not waiting or left <= 0:
                    break
                self._cond.wait(left)
            batch = []
            for s in self.streams:
                if s.slot is not None and not s.stop:  # a stopped stream's last frame is not processed
                    batch.append((s, *s.slot))
                s.slot = None
            self._cond.notify_all()  # file readers may hand over their next frame
            return batch

    def _finish_ended(self) -> None:
        """Close the streams whose reader ended and whose last frame was processed (lock held)."""
        for s in self.streams:
            # a stopped stream (max frames) ends now, even if its source is still inside a read
            if (s.reader_done or s.stop) and s.slot is None and not s.finished:
                self._finish(s)

    def _finish(self, s: _Stream) -> None:
        s.finished = True
        if s.error is not None:
            s.summary.status = f"failed: {s.error}"
        elif s.max_frames_reached:
            s.summary.status = "max frames"
        elif s.stop:
            s.summary.status = "stopped"
        if s.source is not None:
            s.summary.source_stats = s.source.stats()
            s.source.close()
        if s.parts is not None:
            for sink in s.parts.sinks:
                try:
                    sink.close()
                except Exception as exc:  # one bad sink must not keep the others from finishing their files
                    log.warning("[%s] closing %s failed: %s", s.name, type(sink).__name__, exc)
                status = sink.status() if callable(getattr(sink, "status", None)) else None  # type: ignore[attr-defined]
                if isinstance(status, OutputStatus):
                    s.summary.output_status.append(status)
            incomplete = {o.path for o in s.summary.incomplete_outputs if o.path is not None}
            s.summary.outputs = [p for p in s.parts.outputs if p not in incomplete]
        s.summary.latency = s.timer.stats()

    def _infer(self, tensors: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Each preprocessed (1, 3, H, W) tensor's outputs (batch 1 each), in as few backend calls as the model
        allows."""
        n = len(tensors)
        if self.model_batch == 0:
            chunk = self.max_batch or n
        else:
            chunk = self.model_batch if self.max_batch is None else min(self.model_batch, self.max_batch)
        results: list[list[np.ndarray]] = []
        backend = self.detector.backend
        for start in range(0, n, chunk):
            part = tensors[start : start + chunk]
            size = self.model_batch if self.model_batch > 1 else len(part)
            batch = np.zeros((size, *part[0].shape[1:]), np.float32)  # a fixed batch is padded with blanks
            for i, t in enumerate(part):
                batch[i] = t[0]
            t0 = time.perf_counter_ns()
            outputs = backend.infer(batch)
            self.timer.add("infer_call", (time.perf_counter_ns() - t0) / 1e6)
            self.infer_calls += 1
            self.inferred_frames += len(part)
            results.extend([np.array(o[i : i + 1]) for o in outputs] for i in range(len(part)))
        return results

    def _process(self, batch: list[tuple[_Stream, Frame, float]]) -> None:
        t_start = time.perf_counter_ns()
        t_batch = time.monotonic()
        plan: list[tuple[_Stream, Frame, float, bool, np.ndarray | None, dict[str, float]]] = []
        for s, frame, t_ready in batch:
            assert s.parts is not None  # a reader hands over frames only after setup
            stage_ms: dict[str, float] = {}
            warp = None
            if s.parts.cmc is not None:
                t = time.perf_counter_ns()
                warp = s.parts.cmc(frame.image)
                stage_ms["cmc"] = (time.perf_counter_ns() - t) / 1e6
            detect = s.scheduler.should_detect(frame.timestamp_s)
            plan.append((s, frame, t_ready, detect, warp, stage_ms))
        detect_items = [p for p in plan if p[3]]
        tensors: list[np.ndarray] = []
        letterboxes = []
        for s, frame, _t, _d, _w, stage_ms in detect_items:
            t = time.perf_counter_ns()
            tensor, lb = s.preprocess(frame.image)
            tensors.append(tensor.copy())
            letterboxes.append(lb)
            stage_ms["preprocess"] = (time.perf_counter_ns() - t) / 1e6
        outputs: list[list[np.ndarray]] = []
        if tensors:
            t = time.perf_counter_ns()
            outputs = self._infer(tensors)
            infer_ms = (time.perf_counter_ns() - t) / 1e6
            for item in detect_items:
                item[5]["infer"] = infer_ms  # every frame of the call waited for all of it
        post = self.detector.postprocess
        classes = self.detector.classes
        k = 0
        for s, frame, t_ready, detect, warp, stage_ms in plan:
            parts = s.parts
            assert parts is not None
            t = time.perf_counter_ns()
            if detect:
                dets = post(outputs[k], letterboxes[k])
                if classes is not None:
                    dets = dets[np.isin(dets.class_id, classes)]
                k += 1
                stage_ms["postprocess"] = (time.perf_counter_ns() - t) / 1e6
                t = time.perf_counter_ns()
                if parts.tracker is not None:
                    dets = inside_frame(step(parts.tracker, frame.timestamp_s, dets, warp), frame.hw)
                s.summary.detector_runs += 1
            else:
                assert parts.tracker is not None  # skipping needs tracking (check_stage_combination)
                dets = inside_frame(step(parts.tracker, frame.timestamp_s, warp=warp), frame.hw)
                s.summary.track_only_frames += 1
            stage_ms["track"] = (time.perf_counter_ns() - t) / 1e6
            t = time.perf_counter_ns()
            result = FrameResult(frame, dets, detector_ran=detect, fps=s.summary.fps, stage_ms=stage_ms)
            for sink in parts.sinks:
                sink.write(result)
            stage_ms["sinks"] = (time.perf_counter_ns() - t) / 1e6
            now = time.monotonic()
            for name, ms in stage_ms.items():
                s.timer.add(name, ms)
            # frame: from the batch's start to this stream's outputs done (what the single-stream loop calls
            # frame latency); queue: how long the frame waited in its slot before the batch took it
            s.timer.add("frame", (now - t_batch) * 1e3)
            s.timer.add("queue", (t_batch - t_ready) * 1e3)
            if s.is_live:
                s.timer.add("age", (now - frame.timestamp_s) * 1e3)
            s.summary.frames += 1
            s.summary.first_frame_s = s.summary.first_frame_s or now
            s.summary.last_frame_s = now
            if self.max_frames is not None and s.summary.frames >= self.max_frames:
                s.max_frames_reached = True
                self._stop_stream(s)
            if any(sink.stop_requested for sink in parts.sinks):
                self.request_stop("window closed")
        # the scheduler of each stream counts the whole batch's time as its frame cost: they share the compute
        batch_ms = (time.perf_counter_ns() - t_start) / 1e6
        for s, _f, _t, detect, _w, _m in plan:
            s.scheduler.record(detect, batch_ms)

    def _stop_stream(self, s: _Stream) -> None:
        with self._cond:
            s.stop = True
            self._cond.notify_all()
        if s.source is not None:
            s.source.close()

    # --- run ------------------------------------------------------------------------------------------------

    def run(self) -> MultiSummary:
        """Run every stream until each has ended (or the run is stopped); close everything; return the summary."""
        restore = self._install_signal_handlers()
        t0 = time.perf_counter()
        summary = MultiSummary([s.summary for s in self.streams], batch_note=self.batch_note)
        try:
            with self.detector:
                for s in self.streams:
                    t = threading.Thread(
                        target=self._read, args=(s,), name=f"edgedet-stream-{s.name}", daemon=True
                    )
                    self._threads.append(t)
                    t.start()
                while (batch := self._take_batch()) is not None:
                    self._process(batch)
        finally:
            summary.wall_s = time.perf_counter() - t0
            self.request_stop(self._stop_reason or "end of sources")
            summary.stopped_by = self._stop_reason or "end of sources"
            for t in self._threads:
                t.join(timeout=5.0)
            with self._cond:
                for s in self.streams:
                    s.slot = None
                    if not s.finished:
                        self._finish(s)
            restore()
        summary.infer_calls = self.infer_calls
        summary.inferred_frames = self.inferred_frames
        summary.latency = self.timer.stats()
        return summary

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self._stop_reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now (outputs are still closed in `finally`)
            self._stop_reason = (
                name  # the batcher sees it within 0.1 s; readers are closed in run()'s finally
            )

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, h in previous.items():
                signal.signal(sig, h)

        return restore


# --- building from options ----------------------------------------------------------------------------------


def stream_names(uris: Sequence[str]) -> list[str]:
    """s0, s1, ... in the order given (what `{stream}` becomes in output paths)."""
    return [f"s{i}" for i in range(len(uris))]


def _for_stream(text: str, name: str) -> str:
    return text.replace(STREAM_PLACEHOLDER, name)


def stream_sink_config(sink_config: Any, name: str) -> Any:
    """The SinkConfig of one stream: `{stream}` replaced by its name in every path and sink argument."""
    return dataclasses.replace(
        sink_config,
        save_video=_for_stream(sink_config.save_video, name) if sink_config.save_video else None,
        save_mot=_for_stream(sink_config.save_mot, name) if sink_config.save_mot else None,
        save_json=_for_stream(sink_config.save_json, name) if sink_config.save_json else None,
        save_coco=_for_stream(sink_config.save_coco, name) if sink_config.save_coco else None,
        sinks=tuple(_for_stream(x, name) for x in sink_config.sinks),
    )


def _check_placeholders(sink_config: Any) -> None:
    from edgedet.sinks.factory import sink_requests

    for r in sink_requests(sink_config):
        if r.arg is not None and STREAM_PLACEHOLDER not in r.arg:
            raise ConfigError(
                f"{r.flag} {r.arg}: every stream would write the same output; put {STREAM_PLACEHOLDER} in it "
                f"(e.g. out/{STREAM_PLACEHOLDER}.txt)"
            )
        if r.name == "show":
            raise ConfigError("--show opens one window: it cannot show several streams; drop it")


def _demo_outputs_per_stream(config: RunConfig) -> RunConfig:
    """The demo's run-folder outputs (runs/demo-<time>/video.mp4 ...) go to runs/demo-<time>/{stream}/ instead."""
    if not config.run_dir:
        return config
    run_dir = Path(config.run_dir)
    changes: dict[str, Any] = {}
    for key in ("save_video", "save_mot", "save_json"):
        value = getattr(config, key)
        if value and Path(value).parent == run_dir:
            changes[key] = str(run_dir / STREAM_PLACEHOLDER / Path(value).name)
    return dataclasses.replace(config, **changes) if changes else config


def build_multistream(
    config: RunConfig,
    uris: Sequence[str],
    *,
    batch_window_s: float | None = None,
    max_batch: int | None = None,
) -> MultiStreamRunner:
    """One Detector for every stream of `uris`, and per stream its source, tracker, scheduler and sinks (output
    paths with `{stream}` replaced by the stream's name, s0, s1, ...). Options, output paths and the model are
    checked before any source opens; sources open on their streams' own threads when the run starts."""
    from edgedet.detector import open_detector
    from edgedet.sinks import check_sink_config, open_sinks, output_files
    from edgedet.sources import open_source
    from edgedet.spec import read_names_file
    from edgedet.tracking import TRACKERS
    from edgedet.tracking.cmc import make_cmc

    uris = list(uris)
    if not uris:
        raise ConfigError("no stream to run: pass --source at least once")
    # the demo's defaults (target FPS, pacing, CMC, a run folder with one subfolder per stream) when the first
    # source is the demo
    config = apply_demo_defaults(dataclasses.replace(config, source=uris[0])).validate()
    config = _demo_outputs_per_stream(config)
    tracker_factory = TRACKERS.get(config.tracker) if config.track else None
    names = read_names_file(config.names) if config.names else None
    detector = open_detector(
        resolve_model(config), config.backend_config(names), config.postprocess_config, classes=config.classes
    )
    base_sinks = config.sink_config(detector.spec.class_names)
    try:
        _check_placeholders(base_sinks)
        sink_configs = {n: stream_sink_config(base_sinks, n) for n in stream_names(uris)}
        for sc in sink_configs.values():
            check_sink_config(sc, source_fps=None)
        # two streams must not share a file either (a placeholder inside a folder name still differs per stream)
        seen: dict[str, str] = {}
        for n, sc in sink_configs.items():
            for out in output_files(sc):
                if out in seen:
                    raise ConfigError(f"streams {seen[out]} and {n} both write {out}: give each its own file")
                seen[out] = n
    except BaseException:
        detector.close()
        raise

    def make_stream(name: str, uri: str) -> Any:
        sink_config = sink_configs[name]

        def opener() -> Source:
            return open_source(uri, config.source_config)

        def setup(source: Source) -> StreamParts:
            tracker = None
            if tracker_factory is not None:
                fps = source.fps if source.fps and source.fps > 0 else None
                tracker = tracker_factory(dataclasses.replace(config.tracker_config, nominal_fps=fps))
            sinks = open_sinks(sink_config, source_fps=source.fps)
            cmc = make_cmc(config.cmc, live=source.is_live) if config.track else None
            return StreamParts(tracker, sinks, cmc, output_files(sink_config))

        return (name, uri, opener, setup, config.scheduler)

    return MultiStreamRunner(
        detector,
        [make_stream(n, u) for n, u in zip(stream_names(uris), uris, strict=True)],
        batch_window_s=batch_window_s,
        max_batch=max_batch,
        max_frames=config.max_frames,
    )
