"""The runtime loop, and the only module that wires stages together.

    Source --Frame--> Detector (preprocess -> Backend -> postprocess) --Detections-->
        tracker.update (detect frames) | tracker.predict (skipped frames) --Detections + track ids--> sinks

The Scheduler decides, per frame, whether the detector runs, from measured frame times. Every stage is typed
against its protocol (`edgedet.protocols`); `build_pipeline(RunConfig)` opens them through the registries.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from edgedet.config import RunConfig, apply_demo_defaults, check_stage_combination
from edgedet.detector import Detector
from edgedet.errors import ConfigError
from edgedet.overlap import STAGES_BESIDE_INFERENCE, OverlappedLoop
from edgedet.profiling import LatencyStats, RateMeter, StageTimer
from edgedet.protocols import Backend, Sink, Source, Tracker
from edgedet.scheduler import Scheduler, make_scheduler
from edgedet.sinks.base import OutputStatus
from edgedet.sources.base import SourceStats
from edgedet.tracking import inside_frame, step
from edgedet.types import Detections, Frame, FrameResult, GroundPositions

log = logging.getLogger(__name__)


class _Stop(Exception):
    """Raised by the signal handler while the loop waits for a frame, so a stalled source cannot block exit."""


@dataclass
class RunSummary:
    """What happened in a run; the CLI prints it, `as_dict()` feeds --json."""

    frames: int = 0
    wall_s: float = 0.0
    detector_runs: int = 0
    track_only_frames: int = 0
    source_stats: SourceStats = field(default_factory=SourceStats)  # the source's counters at the end
    overlap: bool = False  # the run used the overlapped runtime (--overlap on)
    stopped_by: str = "end of source"
    latency: dict[str, LatencyStats] = field(default_factory=dict)
    lost_outputs: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # complete outputs only
    output_status: list[OutputStatus] = field(default_factory=list)

    @property
    def incomplete_outputs(self) -> list[OutputStatus]:
        """Outputs that lost frames (write errors): never listed as written."""
        return [o for o in self.output_status if not o.complete]

    # the source's counters, under the names the summary has always used
    @property
    def dropped_frames(self) -> int:
        return self.source_stats.dropped

    @property
    def reconnects(self) -> int:
        return self.source_stats.reconnects

    @property
    def stalls(self) -> int:
        return self.source_stats.stalls

    @property
    def downtime_s(self) -> float:
        return self.source_stats.downtime_s

    @property
    def lost_during_gaps(self) -> int:
        return self.source_stats.lost_during_gaps

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.fps, 2),
            "detector_runs": self.detector_runs,
            "track_only_frames": self.track_only_frames,
            "dropped_frames": self.dropped_frames,
            "overlap": self.overlap,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "downtime_s": round(self.downtime_s, 3),
            "lost_during_gaps": self.lost_during_gaps,
            "stopped_by": self.stopped_by,
            "latency_ms": {k: v.as_dict() for k, v in self.latency.items()},
            "lost_outputs": dict(self.lost_outputs),
            "outputs": list(self.outputs),
            "incomplete_outputs": [o.as_dict() for o in self.incomplete_outputs],
            "live_outputs": [o.as_dict() for o in self.output_status if o.complete and o.note],
        }

    def format(self) -> str:
        frame = self.latency.get("frame")
        lines = [
            f"frames {self.frames} in {self.wall_s:.1f} s = {self.fps:.1f} FPS  "
            f"(detector runs {self.detector_runs}, track-only {self.track_only_frames}, dropped {self.dropped_frames}"
            + (
                f", reconnects {self.reconnects}, {self.downtime_s:.1f} s without frames"
                f" (~{self.lost_during_gaps} frames lost)"
                if self.reconnects
                else ""
            )
            + f"; stopped by {self.stopped_by})",
        ]
        if frame is not None:
            lines.append(f"frame latency p50 {frame.p50_ms:.1f} ms, p99 {frame.p99_ms:.1f} ms")
        stages = [
            f"{k} {v.p50_ms:.2f}/{v.p99_ms:.2f}"
            for k, v in self.latency.items()
            if k in ("capture", "cmc", "preprocess", "infer", "postprocess", "track", "sinks", "age")
        ]
        if stages:
            lines.append("stages p50/p99 ms: " + ", ".join(stages))
        lines.extend(o.format() for o in self.incomplete_outputs)
        lines.extend(o.format() for o in self.output_status if o.complete and o.note)  # live outputs: what they did
        lines.extend(f"wrote {out}" for out in self.outputs)
        return "\n".join(lines)


class Pipeline:
    """Runs the loop over already-built stages. Use `build_pipeline(RunConfig)` to build one from options.

    detector: runs on the frames the scheduler picks (the pipeline enters and closes it). tracker: None runs
    without tracking (then every frame must be a detector frame and there is no camera-motion compensation).
    cmc: image -> 2x3 warp (previous frame -> this one) or None, called on every frame. paced: the source
    waits for its frame times (--realtime), which the scheduler must not count as work. outputs: the files the
    sinks write, listed in the summary. overlap: run the stages on their own threads (`edgedet.overlap`);
    False runs today's sequential loop, one frame at a time on the calling thread.
    """

    def __init__(
        self,
        source: Source,
        detector: Detector,
        sinks: Sequence[Sink],
        tracker: Tracker | None = None,
        scheduler: Scheduler | None = None,
        max_frames: int | None = None,
        cmc: Callable[[np.ndarray, float], np.ndarray | None] | None = None,
        paced: bool = False,
        outputs: Sequence[str] = (),
        overlap: bool = False,
        geo: Callable[[Frame, Detections], GroundPositions] | None = None,
    ) -> None:
        self.source = source
        self.detector = detector
        self.sinks = list(sinks)
        self.tracker = tracker
        self.scheduler = scheduler or make_scheduler()
        check_stage_combination(
            tracking=tracker is not None,
            skipping=self.scheduler.interval != 1,
            motion_compensation=cmc is not None,
        )
        self.max_frames = max_frames
        self.cmc = cmc
        self.geo = geo
        # A paced file (--realtime) waits for its frame times inside the source: that wait is idle time, as for a
        # live source, and must not count as frame cost for the target-FPS scheduler.
        self.paced = paced
        self.outputs = list(outputs)
        self.overlap = overlap
        #: the overlapped loop of the last run (its queues show depths, drops, high-water marks), or None
        self.overlapped: OverlappedLoop | None = None
        self.timer = StageTimer()
        self._stop_reason: str | None = None
        self._waiting_for_frame = False

    @property
    def backend(self) -> Backend:
        return self.detector.backend

    def request_stop(self, reason: str = "request", keep_first: bool = False) -> None:
        """Ask the loop to finish after the current frame (thread-safe: it only sets a value). keep_first:
        leave an earlier reason in place."""
        if not (keep_first and self._stop_reason is not None):
            self._stop_reason = reason

    @property
    def stop_reason(self) -> str | None:
        """Why the run is stopping (a signal name, "max frames", ...), or None while it runs."""
        return self._stop_reason

    # --- the loop -------------------------------------------------------------------------------------------

    def run(self) -> RunSummary:
        summary = RunSummary()
        restore = self._install_signal_handlers()
        t_start = time.perf_counter()
        try:
            with self.detector:
                if self.overlap:
                    summary.overlap = True
                    self.overlapped = OverlappedLoop(self)
                    self.overlapped.run(summary)
                else:
                    self._loop(summary)
        except _Stop:
            pass
        finally:
            summary.wall_s = time.perf_counter() - t_start
            if self._stop_reason is not None:
                summary.stopped_by = self._stop_reason
            self._close_all(summary)
            restore()
        summary.latency = self.timer.stats()
        return summary

    def _frames(self) -> Iterator[Frame]:
        it = iter(self.source)
        while True:
            self._waiting_for_frame = True
            try:
                if self._stop_reason is not None:
                    return
                frame = next(it, None)
            finally:
                self._waiting_for_frame = False
            if frame is None:
                return
            yield frame

    def _loop(self, summary: RunSummary) -> None:
        timer = self.timer
        is_live = self.source.is_live
        capture_is_work = not (is_live or self.paced)
        rate = RateMeter()
        t_wait = time.perf_counter_ns()
        for frame in self._frames():
            t0 = time.perf_counter_ns()
            timer.add("capture", (t0 - t_wait) / 1e6)
            detect = self.scheduler.should_detect(frame.timestamp_s)
            stage_ms: dict[str, float] = {}
            warp = None
            if self.cmc is not None:
                # every frame, detector or not: the tracker steps once per frame and each step needs the motion
                warp = self.cmc(frame.image, frame.timestamp_s)  # the pose-based estimator needs the time
                stage_ms["cmc"] = (time.perf_counter_ns() - t0) / 1e6
            if detect:
                dets = self._detect(frame, stage_ms, warp)
                summary.detector_runs += 1
            else:
                t = time.perf_counter_ns()
                assert self.tracker is not None  # guaranteed by __init__
                dets = inside_frame(step(self.tracker, frame.timestamp_s, warp=warp), frame.hw)
                stage_ms["track"] = (time.perf_counter_ns() - t) / 1e6
                summary.track_only_frames += 1
            geo = None
            if self.geo is not None:
                t = time.perf_counter_ns()
                geo = self.geo(frame, dets)
                stage_ms["geo"] = (time.perf_counter_ns() - t) / 1e6
            t = time.perf_counter_ns()
            result = FrameResult(frame, dets, detector_ran=detect, fps=rate.fps, stage_ms=stage_ms, geo=geo)
            for sink in self.sinks:
                sink.write(result)
            t_done = time.perf_counter_ns()
            stage_ms["sinks"] = (t_done - t) / 1e6
            for name, ms in stage_ms.items():
                timer.add(name, ms)
            frame_ms = (t_done - t0) / 1e6
            timer.add("frame", frame_ms)
            if is_live:
                timer.add("age", (time.monotonic() - frame.timestamp_s) * 1e3)
            # Files: decoding is work the frame rate pays for; live or paced: waiting for a frame is idle time.
            self.scheduler.record(detect, frame_ms + (t0 - t_wait) / 1e6 if capture_is_work else frame_ms)
            rate.tick(t_done)
            summary.frames += 1
            if self.max_frames is not None and summary.frames >= self.max_frames:
                self._stop_reason = self._stop_reason or "max frames"
            if any(s.stop_requested for s in self.sinks):
                self._stop_reason = self._stop_reason or "window closed"
            t_wait = time.perf_counter_ns()

    def _detect(self, frame: Frame, stage_ms: dict[str, float], warp: np.ndarray | None = None) -> Detections:
        dets, times = self.detector.detect(frame.image)
        stage_ms.update(times.as_stage_ms())
        if self.tracker is not None:
            t = time.perf_counter_ns()
            dets = inside_frame(step(self.tracker, frame.timestamp_s, dets, warp), frame.hw)
            stage_ms["track"] = (time.perf_counter_ns() - t) / 1e6
        return dets

    # --- shutdown -------------------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self._stop_reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now (outputs are still closed in `finally`)
            self._stop_reason = name
            if self._waiting_for_frame:
                raise _Stop()

        for s in previous:
            signal.signal(s, handler)

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore

    def _close_all(self, summary: RunSummary) -> None:
        summary.source_stats = self.source.stats()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # one bad sink must not stop the others from finishing their files
                log.warning("closing %s failed: %s", type(sink).__name__, exc)
            name = type(sink).__name__  # two sinks of a kind (two --stream) add up
            summary.lost_outputs[name] = summary.lost_outputs.get(name, 0) + sink.lost_frames
            # Sinks built on sinks.base.Sink say how their output ended (plugin sinks may not).
            status = sink.status() if callable(getattr(sink, "status", None)) else None  # type: ignore[attr-defined]
            if isinstance(status, OutputStatus):
                summary.output_status.append(status)
        # Only complete files are listed as written; the incomplete ones are named by format() instead.
        incomplete = {o.path for o in summary.incomplete_outputs if o.path is not None}
        summary.outputs.extend(p for p in self.outputs if p not in incomplete)
        self.source.close()


# --- building from options ----------------------------------------------------------------------------------


def resolve_model(config: RunConfig) -> Path:
    if config.model is not None:
        return Path(config.model).expanduser()
    from edgedet import demo  # the bundled demo model

    return demo.model_path()


def build_pipeline(config: RunConfig) -> Pipeline:
    """Open every stage named by `config` (model, source, tracker, sinks) and return the loop, not yet started.

    The demo's defaults are applied first (`apply_demo_defaults(config)`; a no-op for other sources or a config
    built by `build_config`). Cheap checks run first (options, output paths, model file, registry names), so a
    bad flag fails before a camera opens.
    """
    from edgedet.detector import open_detector
    from edgedet.sinks import check_sink_config, open_sinks, output_files
    from edgedet.sources import open_source
    from edgedet.spec import read_names_file
    from edgedet.tracking import TRACKERS
    from edgedet.tracking.cmc import make_cmc

    config = apply_demo_defaults(config).validate()
    scheduler = config.scheduler
    tracker_factory = TRACKERS.get(config.tracker) if config.track else None  # an unknown name fails here
    names = read_names_file(config.names) if config.names else None
    # Stage threads busy while the model infers, for ONNX Runtime's thread budget: the overlapped loop's
    # capture, prepare, track and sink threads; the sequential loop's one (the source's capture/render thread).
    overlap = config.overlap_on
    beside = STAGES_BESIDE_INFERENCE if overlap else 1
    backend_config = dataclasses.replace(config.backend_config(names), stages_beside=beside)
    detector = open_detector(
        resolve_model(config), backend_config, config.postprocess_config, classes=config.classes
    )
    sink_config = config.sink_config(detector.spec.class_names)
    check_sink_config(sink_config, source_fps=None)  # output paths and --show, before a camera is opened
    source = open_source(config.source, config.source_config)
    try:
        tracker = None
        if tracker_factory is not None:
            fps = source.fps if source.fps and source.fps > 0 else None  # one Kalman step per nominal frame
            tracker = tracker_factory(dataclasses.replace(config.tracker_config, nominal_fps=fps))
        geo = build_geo_stages(config, source)
        sinks = open_sinks(sink_config, source_fps=source.fps)
        link_outputs: list[str] = []
        if config.link_config.enabled:
            with_geo = geo is not None
            sinks = [
                *sinks,
                *_open_link(config, detector.spec.class_names, source.fps, sinks, link_outputs, with_geo),
            ]
    except BaseException:
        source.close()
        raise
    motion = geo.motion if geo is not None else None
    return Pipeline(
        source,
        detector,
        sinks,
        tracker=tracker,
        scheduler=scheduler,
        max_frames=config.max_frames,
        cmc=make_cmc(config.cmc, live=source.is_live, pose=motion) if config.track else None,
        paced=bool(config.realtime),
        outputs=[*output_files(sink_config), *link_outputs],
        geo=geo.locator if geo is not None else None,
        overlap=overlap,
    )


def build_geo_stages(config: RunConfig, source: Source) -> Any:
    """edgedet.geo's stages (ground positions, pose-based CMC) for --telemetry, or None without it. The demo's
    own telemetry (--telemetry demo | demo-noisy) comes from its scene."""
    from edgedet.geo.build import DEMO_TELEMETRY, build_geo
    from edgedet.sources.demo import DemoSource

    geo_config = config.geo_config
    if geo_config.telemetry in DEMO_TELEMETRY:
        if not isinstance(source, DemoSource):
            raise ConfigError(
                f"--telemetry {geo_config.telemetry} is the demo flight's own: use it with --source demo, or pass "
                "a telemetry.jsonl"
            )
        from edgedet.scenes.telemetry import demo_geo

        return demo_geo(geo_config, source.scene)
    return build_geo(geo_config)


def _open_link(
    config: RunConfig,
    class_names: tuple[str, ...],
    source_fps: float | None,
    opened: list[Any],
    outputs: list[str],
    geo: bool = False,
) -> list[Any]:
    """The drone link's sinks (edgedet.link); rtp:// streams write their .sdp into the run folder (the demo's),
    else beside the first output file, else the current directory. Closes `opened` if the link fails to open.
    geo: the run computes ground positions (the MAVLink camera then announces geo tracking status)."""
    from edgedet.link.factory import open_link_sinks, sdp_files

    first_file = next(
        (p for p in (config.save_video, config.save_mot, config.save_json, config.save_coco) if p), None
    )
    sdp_dir = config.run_dir or (str(Path(first_file).parent) if first_file else ".")
    try:
        sinks = open_link_sinks(
            config.link_config, class_names, source_fps=source_fps, sdp_dir=sdp_dir, geo=geo
        )
    except BaseException:
        for sink in opened:
            sink.close()
        raise
    outputs.extend(str(p) for p in sdp_files(config.link_config, sdp_dir))
    return sinks
