"""Reports shared by `edgedet bench` and `edgedet eval`: environment facts, model hashes, JSON files, Rich tables
and matplotlib plots.

JSON schema (every file; `schema` names the kind and its version, bumped when a field changes meaning):

    {
      "schema": "edgedet.bench.engine/1" | "edgedet.bench.pipeline/1" | "edgedet.eval.det/1" | "edgedet.eval.mot/1",
      "created_utc": "2026-01-01T12:00:00Z",
      "versions": {"edgedet": "0.1.0", "python": "3.11.2", "numpy": ..., "onnxruntime": ..., ...; null = absent},
      "device": {"platform", "machine", "cpu", "cpu_count", "cpus_usable", "jetson_model" (or "not available"),
                 "onnxruntime_providers": [...]},
      "models": [{"path", "name", "sha256", "size_bytes"}],
      "config": {...the command's config dataclass...},
      "overall": {...the headline numbers, as printed...},
      ...kind-specific sections (see edgedet.bench and edgedet.eval.runner)
    }

Latency summaries everywhere are LatencyStats.as_dict(): {"count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"}.
Values that were not measured are the string "not available", never 0.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgedet._optional import require
from edgedet.errors import SinkError
from edgedet.spec import sha256_file
from edgedet.telemetry import NOT_AVAILABLE

__all__ = [
    "NOT_AVAILABLE",
    "environment",
    "model_info",
    "plot_engine_bench",
    "plot_pipeline_bench",
    "rich_table",
    "to_jsonable",
    "write_json",
]

_PACKAGES = (
    "edgedet",
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "opencv-python-headless",
    "opencv-python",
    "scipy",
    "tensorrt",
    "pycocotools",
    "trackeval",
    "motmetrics",
    "jetson-stats",
)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or NOT_AVAILABLE
    for key in ("model name", "Model", "Hardware"):  # x86 names the CPU; ARM boards name the board
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or NOT_AVAILABLE


def environment() -> dict[str, Any]:
    """{"versions": {...}, "device": {...}} of this process: packages (None = not installed), CPU, Jetson model."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({p: _version(p) for p in _PACKAGES})
    try:
        jetson = Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00\n ")
    except OSError:
        jetson = ""
    providers: list[str] | str
    try:
        import onnxruntime as ort

        providers = list(ort.get_available_providers())
    except ImportError:
        providers = NOT_AVAILABLE
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    device = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "jetson_model": jetson if "jetson" in jetson.lower() or "orin" in jetson.lower() else NOT_AVAILABLE,
        "onnxruntime_providers": providers,
    }
    return {"versions": versions, "device": device}


def model_info(path: str | Path) -> dict[str, Any]:
    """{"path", "name", "sha256", "size_bytes"} of a model file (TensorRT engines: also their JSON sidecar)."""
    p = Path(path)
    info: dict[str, Any] = {
        "path": str(p),
        "name": p.name,
        "sha256": sha256_file(p),
        "size_bytes": p.stat().st_size,
    }
    sidecar = p.with_suffix(p.suffix + ".json")
    if sidecar.is_file():
        info["sidecar_sha256"] = sha256_file(sidecar)
    return info


def to_jsonable(value: Any) -> Any:
    """Dataclasses, numpy scalars/arrays, Paths and non-finite floats -> plain JSON values (NaN -> null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def report_header(schema: str, models: Sequence[str | Path] = (), config: Any = None) -> dict[str, Any]:
    """The fields every report file starts with (schema, time, versions, device, model hashes, config)."""
    env = environment()
    return {
        "schema": schema,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": env["versions"],
        "device": env["device"],
        "models": [model_info(m) for m in models],
        "config": to_jsonable(config) if config is not None else {},
    }


def write_json(report: Mapping[str, Any], path: str | Path) -> Path:
    p = Path(path)
    try:
        p.write_text(json.dumps(to_jsonable(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SinkError(
            f"cannot write {p} ({exc.strerror}): check the folder exists and is writable"
        ) from None
    return p


# --------------------------------------------------------------------------------------------- tables


def rich_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    """A rich.table.Table; floats shown with 2 decimals (3 below 1), the first column left-aligned."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    return table


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        if v == round(v, 1):  # already rounded for display (percentages): keep it as given
            return f"{v:.1f}"
        return f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


# --------------------------------------------------------------------------------------------- plots


def _figure(nrows: int, height_in: float) -> tuple[Any, Any]:
    require("matplotlib", "--plot")
    # Figure + the Agg canvas directly: no pyplot, so no GUI backend is chosen and nothing global changes.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, 1, squeeze=False)[:, 0]


def _cdf(ax: Any, samples: Mapping[str, Sequence[float]], title: str) -> None:
    for name, vals in samples.items():
        v = np.sort(np.asarray(vals, np.float64))
        if v.size:
            ax.step(
                v, np.arange(1, v.size + 1) / v.size, where="post", label=f"{name} (p50 {np.median(v):.2f})"
            )
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of samples")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)


def _legend_outside(ax: Any, handles: Sequence[Any] | None = None) -> Any:
    """A legend to the right of the axes, never over the curves (the constrained layout makes room for it)."""
    kwargs: dict[str, Any] = {"fontsize": 8, "loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0}
    if handles is not None:
        kwargs["handles"] = list(handles)
    return ax.legend(**kwargs)


def full_interval_samples(t_s: Sequence[float], values: Sequence[float | None]) -> tuple[Any, Any]:
    """(t, values) without the samples that are not rates over a whole interval.

    A rate sample (CPU % since the previous sample) is dropped when it is missing (the first sample has no
    previous one) or when it covers less than half the median interval: the sampler takes one last sample at
    stop(), often milliseconds after the previous one, where the CPU-time clock's ticks make it read 0 % or far
    too much. Returns float64 arrays.
    """
    t = np.asarray(t_s, np.float64)
    v = np.asarray([np.nan if x is None else x for x in values], np.float64)
    if t.size < 2:
        keep = np.isfinite(v)
        return t[keep], v[keep]
    dt = np.diff(t, prepend=np.nan)
    nominal = float(np.nanmedian(dt[1:]))
    keep = np.isfinite(v) & (dt >= 0.5 * nominal)
    return t[keep], v[keep]


def plot_engine_bench(samples_ms: Mapping[str, Sequence[float]], path: str | Path, title: str) -> Path:
    """PNG: the CDF of each model's inference latency (post warm-up), and each run in order (drift, throttling)."""
    fig, (ax_cdf, ax_runs) = _figure(2, 8)
    _cdf(ax_cdf, samples_ms, title)
    for name, vals in samples_ms.items():
        ax_runs.plot(np.arange(len(vals)), vals, lw=0.8, label=name)
    ax_runs.set_xlabel("run (interleaved, post warm-up)")
    ax_runs.set_ylabel("infer (ms)")
    ax_runs.grid(True, alpha=0.3)
    _legend_outside(ax_runs)
    return _save(fig, path)


def plot_pipeline_bench(report: Mapping[str, Any], path: str | Path) -> Path:
    """PNG: per-stage latency CDF; per-frame timeline of stage times and glass-to-glass; CPU% and RSS over time."""
    return _save(pipeline_figure(report), path)


def pipeline_figure(report: Mapping[str, Any]) -> Any:
    """The matplotlib Figure that plot_pipeline_bench saves (legends beside the data, partial samples dropped)."""
    timeline = report["timeline"]
    fig, (ax_cdf, ax_tl, ax_tel) = _figure(3, 12)
    stages = [s for s in ("capture", "preprocess", "infer", "postprocess", "track", "sinks") if s in timeline]
    cdf = {s: [v for v in timeline[s] if v is not None] for s in stages}
    cdf["glass_to_glass"] = [v for v in timeline["glass_to_glass_ms"] if v is not None]
    _cdf(ax_cdf, cdf, f"stage latency CDF ({report['overall']['frames']} frames after warm-up)")
    x = np.asarray(timeline["frame"])
    bottom = np.zeros(x.size)
    for s in stages:
        vals = np.asarray([0.0 if v is None else v for v in timeline[s]])
        ax_tl.bar(x, vals, bottom=bottom, width=1.0, label=s, linewidth=0)
        bottom += vals
    ax_tl.plot(x, [np.nan if v is None else v for v in timeline["glass_to_glass_ms"]], "k-", lw=0.8,
               label="glass to glass")  # fmt: skip
    track_only = np.asarray([not d for d in timeline["detector_ran"]])
    if track_only.any():
        ax_tl.plot(
            x[track_only], np.zeros(int(track_only.sum())), "|", color="grey", label="track-only frame"
        )
    ax_tl.set_xlabel("frame")
    ax_tl.set_ylabel("ms (stacked stages)")
    ax_tl.set_title("per-frame timeline (stacked stage times; line: glass to glass)", pad=24)
    ax_tl.grid(True, alpha=0.3)
    ax_tl.legend(fontsize=8, ncol=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    tel = report.get("telemetry_timeline", {})
    t = np.asarray(tel.get("t_s", []), np.float64)
    if t.size:
        cpu_t, cpu = full_interval_samples(tel["t_s"], tel["cpu_percent"])
        (cpu_line,) = ax_tel.plot(cpu_t, cpu, "b.-", label="process CPU %")
        ax_tel.set_ylabel("CPU % (100 = one core)")
        ax_tel.set_ylim(bottom=0)
        ax_rss = ax_tel.twinx()
        rss = np.asarray([np.nan if v is None else v for v in tel["rss_mb"]], np.float64)
        (rss_line,) = ax_rss.plot(t, rss, "r.-", label="RSS MB")
        ax_rss.set_ylabel("RSS (MB)")
        # one legend for both axes, outside both (the RSS axis labels sit on the right edge: go past them)
        ax_rss.legend(
            handles=[cpu_line, rss_line], fontsize=8, loc="upper left", bbox_to_anchor=(1.08, 1.0), borderaxespad=0
        )
    ax_tel.set_xlabel("time since start (s)")
    jetson = str(report["telemetry"]["jetson"]).split(" (")[0]  # the install hint is in the JSON
    ax_tel.set_title(f"process telemetry; Jetson power/temperature: {jetson}")
    ax_tel.grid(True, alpha=0.3)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    p = Path(path)
    try:
        fig.savefig(str(p), dpi=100)
    except OSError as exc:
        raise SinkError(
            f"cannot write plot {p} ({exc.strerror}): check the folder exists and is writable"
        ) from None
    return p
