"""What the commands print, built from their report dicts: titled tables (title, columns, rows) and lines.

The CLI renders each `Table` with `bench_report.rich_table` and prints the lines; everything here is plain data,
so the same reports can be rendered elsewhere (a notebook, a web page) from Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Table", "bench_engines_text", "bench_pipeline_text", "eval_det_text", "eval_mot_text"]

MOT_COLUMNS = ("HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN", "DetA", "AssA", "MT", "ML")


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


Text = list["Table | str"]


def bench_engines_text(report: Mapping[str, Any], runs: int, warmup: int) -> Text:
    rows = []
    for e in report["engines"]:
        lat = e["latency_ms"]
        rows.append(
            [e["model"], "x".join(map(str, e["input_hw"])), e["precision"],
             lat["infer"]["p50_ms"], lat["infer"]["p90_ms"], lat["infer"]["p99_ms"], lat["infer"]["max_ms"],
             lat["e2e"]["p50_ms"], e["throughput_ips"], e["ratio_p50_vs_first"], e["ratio_throughput_vs_first"]]
        )  # fmt: skip
    return [
        Table(
            f"engine latency (ms), {runs} interleaved rounds after {warmup} warm-up; {report['inputs']}",
            [
                "model",
                "input",
                "precision",
                "p50",
                "p90",
                "p99",
                "max",
                "e2e p50",
                "infer/s",
                "x p50",
                "x infer/s",
            ],
            rows,
        ),
        "x = ratio to the first model (p50 < 1 and infer/s > 1: faster); e2e = preprocess + infer + NMS",
    ]


def bench_pipeline_text(report: Mapping[str, Any], source: str) -> Text:
    ov = report["overall"]
    shares = report["shares"]
    rows = [
        [name, s["count"], s["mean_ms"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"],
         f"{100 * shares[name]:.1f}%" if name in shares else ""]
        for name, s in report["stages"].items()
    ]  # fmt: skip
    return [
        Table(
            f"pipeline latency (ms): {report['backend']} on {source}, {ov['frames']} frames after "
            f"{ov['warmup_frames']} warm-up",
            ["stage", "count", "mean", "p50", "p90", "p99", "max", "share"],
            rows,
        ),
        f"{ov['fps']} FPS; detector runs {ov['detector_runs']}, track-only {ov['track_only_frames']}, "
        f"dropped {ov['dropped_frames']}; glass to glass (from {ov['glass_to_glass_from']}) "
        f"p50 {ov['glass_to_glass_p50_ms']:.1f} ms, p99 {ov['glass_to_glass_p99_ms']:.1f} ms",
        f"dominant stage: {ov['dominant_stage']} ({100 * ov['infer_share']:.0f}% of stage time is infer); "
        f"everything but infer = {100 * ov['overhead_vs_infer']:.0f}% of infer",
        f"process CPU {ov['cpu_percent_mean']}% mean, RSS max {ov['rss_mb_max']} MB; power "
        f"{ov['power_w_mean']}, energy/frame {ov['energy_j_per_frame']}, temperatures "
        f"{ov['temperature_c_max']}, power mode {ov['power_mode']}",
    ]


def eval_det_text(report: Mapping[str, Any], model_name: str, data: str, per_class: bool) -> Text:
    ov = report["overall"]
    out: Text = [
        Table(
            f"detection accuracy: {model_name} on {data} (pycocotools)",
            ["images", "objects", "detections", "mAP50-95", "mAP50", "model ms p50", "e2e ms p50"],
            [[ov["images"], ov["objects"], ov["detections"], f"{ov['mAP50_95']:.3f}", f"{ov['mAP50']:.3f}",
              ov["model_ms_p50"], ov["e2e_ms_p50"]]],
        )
    ]  # fmt: skip
    if per_class and report["per_class"]:
        out.append(
            Table(
                "per class",
                ["class", "mAP50-95", "mAP50"],
                [[n, f"{v['mAP50_95']:.3f}", f"{v['mAP50']:.3f}"] for n, v in report["per_class"].items()],
            )
        )
    return out


def eval_mot_text(report: Mapping[str, Any], detect_every: int) -> Text:
    rt = report["realtime"]
    extra = ["det frames", "FPS", "age p50"] if rt else []
    rows = []
    for name, s in [*report["sequences"].items(), ("OVERALL", report["overall"])]:
        row = [name, *(s[k] for k in MOT_COLUMNS)]
        if rt:
            r = s.get("realtime")
            row += (
                [f"{r['detector_frames']}/{r['frames']}", r["achieved_fps"], r["age_ms_p50"]]
                if r
                else [f"{s['detector_frames']}/{s['frames']}", "", ""]
            )
        rows.append(row)
    if rt:
        how = f"--target-fps {rt['target_fps']}" if rt["target_fps"] else f"detect every {rt['detect_every']}"
        title = (
            f"tracking, live replay: detector {rt['latency_ms']} ms ({rt['latency_source']}), {how}, "
            f"missed frames: {rt['missed']}"
        )
    else:
        title = f"tracking, offline replay: detect every {detect_every}"
    out: Text = [Table(title + " (TrackEval; % except counts)", ["sequence", *MOT_COLUMNS, *extra], rows)]
    cc = report.get("crosscheck")
    if cc:
        d = cc["motmetrics"]["max_abs_diff"]
        out.append(
            f"py-motmetrics cross-check: max |diff| MOTA {d['MOTA']:.3f}, IDF1 {d['IDF1']:.3f}, IDSW {d['IDSW']:.0f}"
        )
    return out
