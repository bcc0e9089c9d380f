"""`edgedet eval det` and `edgedet eval mot` as library calls: config in, report dict out (the CLI prints it).

Report layout: the common header of `edgedet.bench_report`, then

- det ("edgedet.eval.det/1"): {"overall": {"mAP50_95", "mAP50" (fractions, as pycocotools gives them), "images",
  "objects", "detections", "model_ms_p50", "e2e_ms_p50"}, "per_class": {name: {"mAP50_95", "mAP50"}} (on request),
  "dataset": path}
- mot ("edgedet.eval.mot/1"): {"overall": {"HOTA", "MOTA", "IDF1", ... (percent, 1 decimal, as printed), "IDSW",
  "FP", "FN", ... (counts)}, "sequences": {name: same keys (+ "realtime": simulation summary)},
  "crosscheck": {"motmetrics": {"overall": {...}, "sequences": {...}, "max_abs_diff": {"MOTA", "IDF1", "IDSW"}}},
  "realtime": null or {"latency_ms", "latency_source", "missed", "track_ms", "target_fps"}}
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgedet._optional import require_all
from edgedet.bench_report import report_header
from edgedet.config import EvalDetConfig, EvalMotConfig
from edgedet.errors import DataError
from edgedet.motchallenge import MotRows, read_gt, read_seqinfo
from edgedet.report import MOT_COLUMNS

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

DET_SCHEMA = "edgedet.eval.det/1"
MOT_SCHEMA = "edgedet.eval.mot/1"

__all__ = ["DET_SCHEMA", "MOT_COLUMNS", "MOT_SCHEMA", "MotSequence", "eval_det", "eval_mot", "find_sequences"]


# --------------------------------------------------------------------------------------------- det


def eval_det(config: EvalDetConfig, progress: Progress | None = None) -> dict[str, Any]:
    """COCO mAP of `config.model` on `config.data` through the runtime's own preprocess/postprocess."""
    from edgedet.datasets import load_dataset
    from edgedet.eval.det import evaluate_detections

    config.validate()
    require_all("eval det")  # every optional package, before any work
    if config.model is None:
        raise DataError("eval det needs --model: the .onnx file to score")
    dataset = load_dataset(config.data)
    if config.max_images is not None:
        dataset = dataset[: config.max_images]
    m = evaluate_detections(
        config.model,
        dataset,
        conf_threshold=config.conf,
        iou_threshold=config.iou,
        multi_label=config.multi_label,
        max_det=config.max_det,
        threads=config.threads,
        per_class=config.per_class,
        backend=config.backend,
        device=config.device,
        progress=progress,
    )
    report = report_header(DET_SCHEMA, [config.model], config)
    report["dataset"] = str(config.data)
    report["overall"] = {
        "mAP50_95": round(m.map50_95, 4),
        "mAP50": round(m.map50, 4),
        "images": m.num_images,
        "objects": m.num_gt,
        "detections": m.num_detections,
        "model_ms_p50": round(m.latency_ms_p50, 3),
        "e2e_ms_p50": round(m.e2e_ms_p50, 3),
    }
    names = dataset.class_names
    report["per_class"] = {
        (names[k] if k < len(names) else str(k)): {"mAP50_95": round(v[0], 4), "mAP50": round(v[1], 4)}
        for k, v in sorted(m.per_class.items())
    }
    return report


# --------------------------------------------------------------------------------------------- mot


@dataclasses.dataclass(frozen=True)
class MotSequence:
    """One MOTChallenge sequence folder: det.txt, gt.txt and seqinfo.ini (flat, or in det/ and gt/ subfolders)."""

    name: str
    det: Path
    gt: Path
    seqinfo: Path


def _first(folder: Path, *names: str) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def find_sequences(data: str | Path, names: tuple[str, ...] | None = None) -> list[MotSequence]:
    """Sequence folders under `data` (or `data` itself when it is one), sorted by name, optionally only `names`."""
    root = Path(data)
    if not root.is_dir():
        raise DataError(
            f"MOT data {root} is not a folder: pass a folder of sequences (det.txt, gt.txt, seqinfo.ini)"
        )
    candidates = (
        [root] if (root / "seqinfo.ini").is_file() else sorted(p for p in root.iterdir() if p.is_dir())
    )
    found: list[MotSequence] = []
    for folder in candidates:
        det = _first(folder, "det.txt", "det/det.txt")
        gt = _first(folder, "gt.txt", "gt/gt.txt")
        info = _first(folder, "seqinfo.ini")
        if det is None or gt is None or info is None:
            if folder is not root:
                log.info("skipping %s: no det.txt + gt.txt + seqinfo.ini", folder)
            continue
        found.append(MotSequence(folder.name, det, gt, info))
    if names is not None:
        have = {s.name for s in found}
        missing = [n for n in names if n not in have]
        if missing:
            raise DataError(
                f"sequence(s) {missing} not found under {root}: choose from {', '.join(sorted(have)) or 'none'}"
            )
        found = [s for s in found if s.name in names]
    if not found:
        raise DataError(
            f"no MOTChallenge sequences under {root}: each needs det.txt (or det/det.txt), gt.txt (or gt/gt.txt) "
            "and seqinfo.ini"
        )
    return found


def _round(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in summary.items()}


def track_mot_sequences(
    config: EvalMotConfig, progress: Progress | None = None
) -> tuple[list[MotSequence], dict[str, MotRows], dict[str, Any], dict[str, Any] | None]:
    """Track every sequence as `config` says: (sequences, rows per name, realtime summaries, realtime settings)."""
    from edgedet.eval.realtime import simulate_realtime
    from edgedet.tracking.replay import track_sequence

    config.validate()
    seqs = find_sequences(config.data, config.sequences)
    tcfg = config.tracker_config
    rows: dict[str, MotRows] = {}
    rt: dict[str, Any] = {}
    settings: dict[str, Any] | None = None
    measured: dict[tuple[int, int], float] = {}
    for i, s in enumerate(seqs):
        info = read_seqinfo(s.seqinfo)
        if not config.realtime:
            rows[s.name] = track_sequence(
                s.det, info, tcfg, detect_every=config.detect_every, tracker=config.tracker
            )
        else:
            latency = config.latency_ms
            source = "given (--latency-ms)"
            if latency is None:
                assert config.model is not None  # validate() guarantees one of the two
                hw = (info.im_height, info.im_width)
                if hw not in measured:
                    from edgedet.detector import measure_latency_ms

                    measured[hw] = float(measure_latency_ms(config.model, hw)["e2e"].p50_ms)
                latency = measured[hw]
                source = (
                    f"measured: {Path(config.model).name} p50 preprocess+infer+postprocess on this machine"
                )
            res = simulate_realtime(
                s.det,
                info,
                tcfg,
                latency_ms=latency,
                detect_every=config.detect_every,
                target_fps=config.target_fps,
                max_interval=config.max_interval,
                track_ms=config.track_ms,
                missed=config.missed,
                tracker=config.tracker,
            )
            rows[s.name] = res.rows
            rt[s.name] = res.summary()
            settings = {
                "latency_ms": latency
                if config.model is None
                else {f"{k[0]}x{k[1]}": v for k, v in measured.items()},
                "latency_source": source,
                "missed": config.missed,
                "track_ms": config.track_ms,
                "target_fps": config.target_fps,
                "detect_every": config.detect_every,
            }
        if progress is not None:
            progress(i + 1, len(seqs))
    return seqs, rows, rt, settings


def eval_mot(config: EvalMotConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Track each sequence (offline replay, or the --realtime simulation) and score it with TrackEval."""
    from edgedet.eval.mot import evaluate, motmetrics_evaluate

    require_all("eval mot" if config.crosscheck else "eval mot --no-crosscheck")  # before any work
    seqs, rows, rt, settings = track_mot_sequences(config, progress)
    inputs = {s.name: (read_gt(s.gt), rows[s.name], read_seqinfo(s.seqinfo)) for s in seqs}
    scores = evaluate(inputs, benchmark=config.benchmark)
    report = report_header(MOT_SCHEMA, [config.model] if config.model else [], config)
    report["data"] = str(config.data)
    report["tracker"] = {"name": config.tracker, **dataclasses.asdict(config.tracker_config)}
    report["overall"] = _round(scores["combined"])
    report["sequences"] = {n: _round(v) for n, v in scores["per_sequence"].items()}
    for n, summary in rt.items():
        report["sequences"][n]["realtime"] = summary
    if rt:
        det_frames = sum(v["detector_frames"] for v in rt.values())
        frames = sum(v["frames"] for v in rt.values())
        report["overall"]["detector_frames"] = det_frames
        report["overall"]["frames"] = frames
    report["realtime"] = settings
    if config.crosscheck:
        mm = motmetrics_evaluate(inputs, benchmark=config.benchmark)
        keys = ("MOTA", "IDF1", "IDSW")
        diffs = {
            k: max(
                abs(float(mm["combined"][k]) - float(scores["combined"][k])),
                *(abs(float(mm["per_sequence"][n][k]) - float(scores["per_sequence"][n][k])) for n in inputs),
            )
            for k in keys
        }
        report["crosscheck"] = {
            "motmetrics": {
                "overall": _round(mm["combined"]),
                "sequences": {n: _round(v) for n, v in mm["per_sequence"].items()},
                "max_abs_diff": {k: round(v, 4) for k, v in diffs.items()},
            }
        }
    return report
