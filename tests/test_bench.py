"""`edgedet bench`: engine bench and pipeline bench on tiny real ONNX models, reports, and the CLI."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.bench import (
    RecordingSink,
    bench_engines,
    bench_frames,
    bench_pipeline,
    default_backend,
    resolve_imgsz,
)
from edgedet.cli import main
from edgedet.config import BenchConfig
from edgedet.errors import ConfigError
from edgedet.types import Detections, Frame, FrameResult

NAMES = "{0: 'car', 1: 'person'}"


def tiny(path: Path, hw: tuple[int, int] = (64, 64)) -> Path:
    raw = yolov5_raw(np.array([[32, 32, 16, 8]]), np.array([0.9]), np.array([[1.0, 0.0]]))
    return constant_model(path, [raw], input_hw=hw, metadata={"names": NAMES})


def run_cli(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


def test_synthetic_frames_are_real_looking_and_distinct() -> None:
    frames = bench_frames(4, (96, 128))
    assert [f.shape for f in frames] == [(96, 128, 3)] * 4 and frames[0].dtype == np.uint8
    for f in frames:
        assert f.std() > 10 and f.min() < 100 < f.max()  # texture, never a constant (zero) frame
    assert not np.array_equal(frames[0], frames[1])  # objects move


def test_frames_from_an_image_folder(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((20, 30, 3), 50 * i, np.uint8))
    frames = bench_frames(2, (64, 64), images=tmp_path)
    assert len(frames) == 2 and frames[1].shape == (20, 30, 3) and int(frames[1][0, 0, 0]) == 50


@pytest.mark.parametrize(
    ("text", "hw"), [(None, None), ("640", (640, 640)), ("384,640", (384, 640)), ("384x640", (384, 640))]
)
def test_resolve_imgsz(text: str | None, hw: tuple[int, int] | None) -> None:
    assert resolve_imgsz(text) == hw


@pytest.mark.parametrize(
    ("path", "backend"), [("a.onnx", "onnxruntime"), ("a.engine", "tensorrt"), ("b.plan", "tensorrt")]
)
def test_default_backend(path: str, backend: str) -> None:
    assert default_backend(path) == backend


def test_engine_bench_two_models(tmp_path: Path) -> None:
    a, b = tiny(tmp_path / "a.onnx"), tiny(tmp_path / "b.onnx", (96, 128))
    calls: list[tuple[int, int]] = []
    report = bench_engines(
        BenchConfig(models=(str(a), str(b)), runs=7, warmup=3, threads=1),
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (10, 10) and len(calls) == 10
    assert report["schema"] == "edgedet.bench.engine/1"
    assert [m["sha256"] for m in report["models"]] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)
    ]
    rows = report["engines"]
    assert [r["model"] for r in rows] == ["a.onnx", "b.onnx"]
    assert rows[1]["input_hw"] == [96, 128] and rows[1]["frame_hw"] == [96, 128]
    for r in rows:
        lat = r["latency_ms"]
        assert {k: v["count"] for k, v in lat.items()} == {
            "preprocess": 7,
            "infer": 7,
            "postprocess": 7,
            "e2e": 7,
        }
        assert lat["infer"]["p50_ms"] <= lat["infer"]["p99_ms"] <= lat["infer"]["max_ms"]
        assert lat["e2e"]["mean_ms"] == pytest.approx(
            lat["preprocess"]["mean_ms"] + lat["infer"]["mean_ms"] + lat["postprocess"]["mean_ms"], abs=1e-3
        )
        # the report rounds means to 0.1 us; a tiny model's infer takes ~20 us
        assert r["throughput_ips"] == pytest.approx(1000 / lat["infer"]["mean_ms"], rel=0.01)
    assert rows[0]["ratio_p50_vs_first"] == 1.0
    assert rows[1]["ratio_p50_vs_first"] == pytest.approx(
        rows[1]["latency_ms"]["infer"]["p50_ms"] / rows[0]["latency_ms"]["infer"]["p50_ms"], rel=1e-3
    )
    assert len(report["samples_ms"]["a.onnx"]) == 7
    json.dumps(report)  # plain JSON values only


def test_same_model_twice_gets_two_names(tmp_path: Path) -> None:
    a = tiny(tmp_path / "a.onnx")
    report = bench_engines(BenchConfig(models=(str(a), str(a)), runs=2, warmup=0))
    assert len(report["overall"]) == 2


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (BenchConfig(), "one or more models"),
        (BenchConfig(models=("a.onnx",), pipeline=True), "--model"),
        (BenchConfig(models=("a.onnx",), runs=0), "--runs"),
        (BenchConfig(models=("a.onnx",), imgsz=(8, 8)), "--imgsz"),
    ],
)
def test_bench_config_checks(cfg: BenchConfig, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cfg.validate()


@pytest.mark.parametrize(("detect_every", "track_only"), [(1, 0), (3, 12)])
def test_pipeline_bench_on_a_synthetic_source(tmp_path: Path, detect_every: int, track_only: int) -> None:
    model = tiny(tmp_path / "m.onnx")
    report = bench_pipeline(
        BenchConfig(
            pipeline=True,
            model=str(model),
            source="synthetic:160x120@30,frames=24",
            warmup=6,
            detect_every=detect_every,
            telemetry_interval_s=0.05,
        )
    )
    ov = report["overall"]
    assert report["schema"] == "edgedet.bench.pipeline/1"
    assert ov["frames"] == 18 and ov["warmup_frames"] == 6
    assert ov["detector_runs"] + ov["track_only_frames"] == 18 and ov["track_only_frames"] == track_only
    assert report["run_summary"]["frames"] == 24 and ov["dropped_frames"] == 0
    assert report["stages"]["infer"]["count"] == 18 - track_only
    assert report["stages"]["track"]["count"] == 18 and report["stages"]["capture"]["count"] == 18
    assert sum(report["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    tl = report["timeline"]
    assert tl["frame"] == list(range(6, 24))
    # glass to glass (frame delivered -> sinks) covers the stages that ran in between
    for k in range(18):
        inner = sum(tl[s][k] or 0.0 for s in ("preprocess", "infer", "postprocess", "track"))
        assert tl["glass_to_glass_ms"][k] >= inner - 1e-3
    infer = sum(v for v in tl["infer"] if v is not None)
    others = sum(
        v for s in ("capture", "preprocess", "postprocess", "track", "sinks") for v in tl[s] if v is not None
    )
    # the timeline holds rounded ms; with sub-0.1 ms stages that rounding alone moves the ratio by ~1%
    assert ov["overhead_vs_infer"] == pytest.approx(others / infer, rel=2e-2, abs=1e-3)
    # telemetry: process figures measured, Jetson ones reported as not available (never zeros) off a Jetson
    assert isinstance(ov["rss_mb_max"], float) and ov["rss_mb_max"] > 10
    assert report["telemetry"]["samples"] >= 2
    assert ov["power_w_mean"] == "not available" and ov["energy_j_per_frame"] == "not available"
    json.dumps(report)


def test_recording_sink_live_uses_the_capture_stamp() -> None:
    sink = RecordingSink(live=True)
    frame = Frame(np.zeros((4, 4, 3), np.uint8), index=0, timestamp_s=time.monotonic() - 0.05)
    sink.write(FrameResult(frame, Detections.empty(), stage_ms={"infer": 1.0}))
    assert 50.0 <= sink.glass_to_glass_ms[0] < 5000.0 and sink.detector_ran == [True]


def test_cli_engine_bench_json_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    a, b = tiny(tmp_path / "a.onnx"), tiny(tmp_path / "b.onnx")
    out, png = tmp_path / "e.json", tmp_path / "e.png"
    code, text = run_cli(
        ["bench", str(a), str(b), "--runs", "4", "--warmup", "1", "--json", str(out), "--plot", str(png)]
    )
    assert code == 0, text
    assert "a.onnx" in text and "b.onnx" in text and "x p50" in text
    report = json.loads(out.read_text())
    assert set(report["overall"]) == {"a.onnx", "b.onnx"} and report["config"]["runs"] == 4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_pipeline_bench_json_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    model = tiny(tmp_path / "m.onnx")
    out, png = tmp_path / "p.json", tmp_path / "p.png"
    code, text = run_cli(
        ["bench", "--pipeline", "--model", str(model), "--source", "synthetic:96x64@30,frames=12", "--warmup", "2",
         "--json", str(out), "--plot", str(png)]
    )  # fmt: skip
    assert code == 0, text
    assert "dominant stage" in text and "glass to glass" in text
    assert json.loads(out.read_text())["overall"]["frames"] == 10
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "args", [["bench"], ["bench", "a.onnx", "--pipeline"], ["bench", "a.onnx", "--imgsz", "big"]]
)
def test_cli_bench_bad_options(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(args)[0] == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize(
    ("t_s", "cpu", "kept_t"),
    [
        # the last sample 4 ms after the previous one (stop()): CPU-time ticks make it 0 %: dropped
        ([0.0, 0.5, 1.0, 1.5, 1.504], [None, 40.0, 42.0, 41.0, 0.0], [0.5, 1.0, 1.5]),
        # a last sample at 0.3 of the interval is also partial; 0.6 is kept
        ([0.0, 0.5, 1.0, 1.15], [None, 40.0, 42.0, 250.0], [0.5, 1.0]),
        ([0.0, 0.5, 1.0, 1.3], [None, 40.0, 42.0, 39.0], [0.5, 1.0, 1.3]),
        ([0.0], [None], []),
    ],
)
def test_partial_cpu_samples_are_not_plotted(t_s: list[float], cpu: list[float | None], kept_t: list[float]) -> None:
    from edgedet.bench_report import full_interval_samples

    t, v = full_interval_samples(t_s, cpu)
    assert t.tolist() == kept_t
    assert v.tolist() == [c for c, tt in zip(cpu, t_s, strict=True) if tt in kept_t]


def _overlap(a: Any, b: Any) -> bool:
    return bool(a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1)


def test_pipeline_plot_legends_sit_outside_the_data(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from edgedet.bench_report import pipeline_figure

    model = tiny(tmp_path / "m.onnx")
    out = tmp_path / "p.json"
    code, text = run_cli(
        ["bench", "--pipeline", "--model", str(model), "--source", "synthetic:96x64@30,frames=40", "--warmup", "2",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 0, text
    fig = pipeline_figure(json.loads(out.read_text()))
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    data_axes = list(fig.axes)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 3  # CDF, timeline, telemetry
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in data_axes:
            assert not _overlap(box, ax.get_window_extent(renderer)), (legend.get_texts()[0].get_text(), ax)
