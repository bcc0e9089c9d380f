"""`edgedet bench`: latency per stage, measured so that a comparison holds on a noisy machine.

Engine bench (`bench_engines`): each model is opened as an `edgedet.detector.Detector` through the backend
registry (`--backend`; default ONNX Runtime, TensorRT for .engine/.plan files). Every round runs the detector
(preprocess -> infer -> postprocess) once per model,
interleaved (A B, B A, A B, ... : the order rotates each round so no model always runs first after the others), so
slow drifts (thermal throttling, another process) hit every model alike. The first `warmup` rounds are discarded.
Inputs are real images (`images`) or rendered synthetic scenes (textured background, moving objects; never zeros)
through the real Preprocessor and Postprocessor.

Pipeline bench (`bench_pipeline`): the loop `edgedet run` executes (`build_pipeline(RunConfig)` then `.run()`),
with a recording sink appended to its sinks (it sees every FrameResult and its stage_ms) and the source wrapped
to stamp the moment each frame is delivered. Glass-to-glass is the time from that moment (files) or from the
capture stamp `Frame.timestamp_s` (live sources: time.monotonic() at capture) to the sinks. Process CPU% / RSS
(and Jetson power and temperatures where jetson-stats runs) come from `TelemetrySampler`.

Report layout: see `edgedet.bench_report` (common header) and the `*_report` dicts built here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.bench_report import NOT_AVAILABLE, report_header
from edgedet.config import BenchConfig, RunConfig, apply_demo_defaults, parse_imgsz
from edgedet.datasets import sample_frames
from edgedet.detector import Detector, default_backend, open_detector
from edgedet.errors import DataError
from edgedet.profiling import LatencyStats
from edgedet.protocols import Source
from edgedet.sources.base import SourceStats
from edgedet.telemetry import TelemetrySampler
from edgedet.types import Frame, FrameResult

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)

ENGINE_SCHEMA = "edgedet.bench.engine/1"
PIPELINE_SCHEMA = "edgedet.bench.pipeline/1"
PIPELINE_STAGES = ("capture", "preprocess", "infer", "postprocess", "track", "sinks")
_MAX_DISTINCT_FRAMES = 16  # enough variety for NMS load to vary; little memory at 1080p

__all__ = [
    "ENGINE_SCHEMA",
    "PIPELINE_SCHEMA",
    "RecordingSink",
    "bench_engines",
    "bench_frames",
    "bench_pipeline",
    "default_backend",
    "resolve_imgsz",
]


bench_frames = sample_frames  # the frames an engine bench times: an image folder or rendered synthetic scenes


# --------------------------------------------------------------------------------------------- engine bench


@dataclass
class _Engine:
    path: Path
    detector: Detector
    frames: list[npt.NDArray[np.uint8]]
    times: dict[str, list[float]] = field(
        default_factory=lambda: {"preprocess": [], "infer": [], "postprocess": []}
    )

    def round(self, i: int, keep: bool) -> None:
        _, t = self.detector.detect(self.frames[i % len(self.frames)])
        if keep:
            for stage, ms in t.as_stage_ms().items():
                self.times[stage].append(ms)


def bench_engines(config: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Time each model in `config.models` side by side (module docstring); return the report dict.

    Report: header + {"overall": {model name: {"infer_p50_ms", "e2e_p50_ms", "throughput_ips", "ratio_p50",
    "ratio_throughput"}}, "engines": [{"model", "backend", "input_hw", "precision", "batch", "latency_ms":
    {"preprocess", "infer", "postprocess", "e2e"}: LatencyStats dicts, "throughput_ips", "e2e_throughput_ips",
    "ratio_p50_vs_first", "ratio_throughput_vs_first"}], "samples_ms": {model: [infer ms per timed round]}}.
    Ratios compare with the first model: ratio_p50 = this p50 / first p50 (< 1 = faster).
    """
    from edgedet.backends import BackendConfig
    from edgedet.postprocess import PostprocessConfig

    config.validate()
    names = [Path(m).name for m in config.models]
    if len(set(names)) != len(names):  # the same file twice (a noise check) or same names in two folders
        names = [f"#{i + 1} {m}" for i, m in enumerate(config.models)]
    engines: list[_Engine] = []
    try:
        for m in config.models:
            bcfg = BackendConfig(
                backend=config.backend or default_backend(m),
                device=config.device,
                threads=config.threads,
                sessions_beside=len(config.models) - 1,  # they take turns: no spinning pools
            )
            post = PostprocessConfig(conf_threshold=config.conf, iou_threshold=config.iou)
            detector = open_detector(m, bcfg, post).__enter__()
            hw = config.imgsz or detector.spec.input_hw
            n_frames = min(_MAX_DISTINCT_FRAMES, config.runs)
            frames = bench_frames(n_frames, hw, config.images, config.seed)
            engines.append(_Engine(Path(m), detector, frames))
        total = config.warmup + config.runs
        for r in range(total):
            k = r % len(engines)
            for eng in engines[k:] + engines[:k]:  # rotate the order every round
                eng.round(r, keep=r >= config.warmup)
            if progress is not None:
                progress(r + 1, total)
    finally:
        for eng in engines:
            eng.detector.close()

    rows: list[dict[str, Any]] = []
    for name, eng in zip(names, engines, strict=True):
        t = {k: np.asarray(v, np.float64) for k, v in eng.times.items()}
        t["e2e"] = t["preprocess"] + t["infer"] + t["postprocess"]
        spec = eng.detector.spec
        rows.append(
            {
                "model": name,
                "path": str(eng.path),
                "backend": eng.detector.description,
                "input_hw": list(spec.input_hw),
                "frame_hw": list(eng.frames[0].shape[:2]),
                "precision": spec.precision,
                "batch": spec.batch,
                "latency_ms": {k: LatencyStats.of(v).as_dict() for k, v in t.items()},
                "throughput_ips": spec.batch * 1000.0 / float(t["infer"].mean()),
                "e2e_throughput_ips": spec.batch * 1000.0 / float(t["e2e"].mean()),
            }
        )
    first = rows[0]
    for row in rows:
        row["ratio_p50_vs_first"] = (
            row["latency_ms"]["infer"]["p50_ms"] / first["latency_ms"]["infer"]["p50_ms"]
        )
        row["ratio_throughput_vs_first"] = row["throughput_ips"] / first["throughput_ips"]
    report = report_header(ENGINE_SCHEMA, config.models, config)
    report["inputs"] = (
        f"images from {config.images}"
        if config.images
        else "synthetic rendered scenes (textured, moving objects)"
    )
    report["overall"] = {
        r["model"]: {
            "infer_p50_ms": r["latency_ms"]["infer"]["p50_ms"],
            "e2e_p50_ms": r["latency_ms"]["e2e"]["p50_ms"],
            "throughput_ips": round(r["throughput_ips"], 2),
            "ratio_p50": round(r["ratio_p50_vs_first"], 4),
            "ratio_throughput": round(r["ratio_throughput_vs_first"], 4),
        }
        for r in rows
    }
    report["engines"] = rows
    report["samples_ms"] = {
        name: [round(v, 4) for v in e.times["infer"]] for name, e in zip(names, engines, strict=True)
    }
    return report


# --------------------------------------------------------------------------------------------- pipeline bench


class _TimedSource:
    """Wraps a Source: stamps perf_counter_ns when each frame is handed over, and times the read (capture)."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self.is_live = source.is_live
        self.fps = source.fps
        self.delivered_ns: dict[int, int] = {}
        self.capture_ms: dict[int, float] = {}

    def stats(self) -> SourceStats:
        return self._source.stats()

    def close(self) -> None:
        self._source.close()

    def __iter__(self) -> Iterator[Frame]:
        it = iter(self._source)
        while True:
            t0 = time.perf_counter_ns()
            frame = next(it, None)
            t1 = time.perf_counter_ns()
            if frame is None:
                return
            self.capture_ms[frame.index] = (t1 - t0) / 1e6
            self.delivered_ns[frame.index] = t1
            yield frame


class RecordingSink:
    """A sink that keeps, per frame: index, detector_ran, the stage_ms dict and glass-to-glass latency.

    delivered_ns: frame index -> perf_counter_ns at delivery (files); live frames use Frame.timestamp_s
    (time.monotonic() at capture) instead. The pipeline adds the "sinks" time to a frame's stage_ms after all
    sinks returned, so the dicts are kept by reference and read after the run. on_frame(count) is called after
    each frame (a progress bar).
    """

    flag = "bench"
    lost_frames = 0
    stop_requested = False

    def __init__(
        self,
        delivered_ns: dict[int, int] | None = None,
        live: bool = False,
        on_frame: Callable[[int], None] | None = None,
    ) -> None:
        self._delivered = delivered_ns if delivered_ns is not None else {}
        self._live = live
        self._on_frame = on_frame
        self.index: list[int] = []
        self.detector_ran: list[bool] = []
        self.stage_ms: list[Mapping[str, float]] = []
        self.glass_to_glass_ms: list[float] = []
        self.out_ns: list[int] = []

    def write(self, result: FrameResult) -> None:
        now_ns = time.perf_counter_ns()
        frame = result.frame
        if self._live:
            g2g = (time.monotonic() - frame.timestamp_s) * 1e3
        else:
            t = self._delivered.get(frame.index)
            g2g = (now_ns - t) / 1e6 if t is not None else float("nan")
        self.index.append(frame.index)
        self.detector_ran.append(result.detector_ran)
        self.stage_ms.append(result.stage_ms)
        self.glass_to_glass_ms.append(g2g)
        self.out_ns.append(now_ns)
        if self._on_frame is not None:
            self._on_frame(len(self.index))

    def close(self) -> None:
        pass


def bench_pipeline(config: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the `edgedet run` pipeline on `config.source` and return the report dict.

    Report: header + {"overall": {"frames", "fps", "detector_runs", "track_only_frames", "dropped_frames",
    "glass_to_glass_p50_ms", "glass_to_glass_p99_ms", "infer_share", "overhead_vs_infer", "dominant_stage",
    "cpu_percent_mean", "rss_mb_max", "power_w_mean", "energy_j_per_frame"}, "stages": {stage:
    LatencyStats dict}, "shares": {stage: fraction of the summed stage time}, "run_summary": RunSummary.as_dict(),
    "telemetry": TelemetrySampler.summary(), "telemetry_timeline": {"t_s", "cpu_percent", "rss_mb", "power_w"},
    "timeline": {"frame", "detector_ran", stage..., "glass_to_glass_ms"} (per frame after warm-up, None where a
    stage did not run)}. Stages and shares leave out the first `config.warmup` frames.
    """
    from edgedet.pipeline import build_pipeline

    config.validate()
    run_cfg = RunConfig(
        source=config.source,
        model=config.model,
        backend=config.backend or (default_backend(config.model) if config.model else "onnxruntime"),
        device=config.device,
        threads=config.threads,
        conf=config.conf,
        iou=config.iou,
        track=config.track,
        detect_every=config.detect_every,
        target_fps=config.target_fps,
        realtime=config.realtime,
        max_frames=config.max_frames,
    )
    # the demo's defaults (target FPS, pacing, CMC) as `run` has them, without its video and files
    run_cfg = apply_demo_defaults(run_cfg, outputs=False)
    pipeline = build_pipeline(run_cfg)
    live = pipeline.source.is_live
    timed = _TimedSource(pipeline.source)
    pipeline.source = timed
    total = config.max_frames or 0  # 0: unknown length
    recorder = RecordingSink(
        timed.delivered_ns, live=live, on_frame=None if progress is None else (lambda n: progress(n, total))
    )
    pipeline.sinks.append(recorder)
    sampler = TelemetrySampler(interval_s=config.telemetry_interval_s)
    sampler.start()
    try:
        summary = pipeline.run()
    finally:
        samples = sampler.stop()
    model_path = str(pipeline.backend.model_path)
    report = report_header(PIPELINE_SCHEMA, [model_path], config)
    report.update(_pipeline_sections(recorder, timed, config.warmup, live))
    report["run_summary"] = summary.as_dict()
    report["backend"] = pipeline.backend.description
    tel = sampler.summary()
    report["telemetry"] = tel
    t0 = samples[0].t_s if samples else 0.0
    report["telemetry_timeline"] = {
        "t_s": [round(s.t_s - t0, 3) for s in samples],
        "cpu_percent": [None if s.cpu_percent is None else round(s.cpu_percent, 1) for s in samples],
        "rss_mb": [None if s.rss_bytes is None else round(s.rss_bytes / 2**20, 1) for s in samples],
        "power_w": [s.power_w for s in samples],
    }
    ov = report["overall"]
    ov["dropped_frames"] = summary.dropped_frames
    ov["cpu_percent_mean"] = tel["process_cpu_percent_mean"]
    ov["rss_mb_max"] = tel["process_rss_mb_max"]
    ov["power_w_mean"] = tel["power_w_mean"]
    ov["power_mode"] = tel["power_mode"]
    ov["temperature_c_max"] = tel["temperature_c_max"]
    power = tel["power_w_mean"]
    ov["energy_j_per_frame"] = (
        round(float(power) * summary.wall_s / summary.frames, 4)
        if isinstance(power, (int, float)) and summary.frames
        else NOT_AVAILABLE
    )
    return report


def _pipeline_sections(rec: RecordingSink, timed: _TimedSource, warmup: int, live: bool) -> dict[str, Any]:
    n = len(rec.index)
    if n == 0:
        raise DataError("the pipeline produced no frames: check the source (an empty file or folder?)")
    skip = min(warmup, n - 1)  # keep at least one frame
    if warmup >= n:
        log.warning(
            "warm-up of %d frames is the whole run (%d frames): statistics use the last frame", warmup, n
        )
    idx = rec.index[skip:]
    per_stage: dict[str, list[float | None]] = {s: [] for s in PIPELINE_STAGES}
    for i, st in zip(rec.index[skip:], rec.stage_ms[skip:], strict=True):
        per_stage["capture"].append(timed.capture_ms.get(i))
        for s in PIPELINE_STAGES[1:]:
            v = st.get(s)
            per_stage[s].append(None if v is None else float(v))
    frame_ms = [
        sum(v for v in (per_stage[s][k] for s in PIPELINE_STAGES) if v is not None) for k in range(len(idx))
    ]
    g2g = [None if not np.isfinite(v) else round(v, 4) for v in rec.glass_to_glass_ms[skip:]]
    stages: dict[str, Any] = {}
    totals: dict[str, float] = {}
    for s, vals in per_stage.items():
        arr = np.asarray([v for v in vals if v is not None], np.float64)
        if arr.size:
            stages[s] = LatencyStats.of(arr).as_dict()
            totals[s] = float(arr.sum())
    stages["frame"] = LatencyStats.of(np.asarray(frame_ms)).as_dict()
    g2g_arr = np.asarray([v for v in g2g if v is not None], np.float64)
    stages["glass_to_glass"] = LatencyStats.of(g2g_arr).as_dict()
    grand = sum(totals.values())
    shares = {s: round(v / grand, 4) for s, v in totals.items()} if grand > 0 else {}
    infer_total = totals.get("infer", 0.0)
    overhead = (grand - infer_total) / infer_total if infer_total > 0 else float("nan")
    out_s = (rec.out_ns[-1] - rec.out_ns[skip]) / 1e9 if n - skip > 1 else float("nan")
    ran = rec.detector_ran[skip:]
    overall = {
        "frames": len(idx),
        "warmup_frames": skip,
        "fps": round((len(idx) - 1) / out_s, 2)
        if out_s and np.isfinite(out_s) and out_s > 0
        else float("nan"),
        "detector_runs": int(sum(ran)),
        "track_only_frames": int(len(ran) - sum(ran)),
        "glass_to_glass_p50_ms": stages["glass_to_glass"]["p50_ms"],
        "glass_to_glass_p99_ms": stages["glass_to_glass"]["p99_ms"],
        "glass_to_glass_from": "capture (Frame.timestamp_s)" if live else "frame delivered by the source",
        "dominant_stage": max(totals, key=lambda k: totals[k]) if totals else NOT_AVAILABLE,
        "infer_share": shares.get("infer", float("nan")),
        "overhead_vs_infer": round(overhead, 4),
    }
    timeline: dict[str, Any] = {"frame": idx, "detector_ran": ran}
    timeline.update({s: [None if v is None else round(v, 4) for v in vals] for s, vals in per_stage.items()})
    timeline["glass_to_glass_ms"] = g2g
    return {"overall": overall, "stages": stages, "shares": shares, "timeline": timeline}


resolve_imgsz = parse_imgsz  # the one imgsz parser lives in edgedet.config
