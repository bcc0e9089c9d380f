"""MOT metrics (HOTA, CLEAR/MOTA, Identity/IDF1) through TrackEval, on in-memory data.

The data is prepared exactly as TrackEval's MotChallenge2DBox dataset prepares it (its own
`get_preprocessed_seq_data` runs on it): IoU similarity of xywh boxes; for MOT16/17/20 ground truth, tracker
boxes matched (IoU >= 0.5, Hungarian) to gt of a distractor class (2, 7, 8, 12; MOT20 also 6) are removed,
then only class-1 gt with consider-flag 1 is scored; MOT15 ground truth (no class column) scores every row
with a non-zero flag. `motmetrics_evaluate` scores the same prepared data with py-motmetrics as a cross-check.

Ratios (MOTA, IDF1, HOTA, ...) are returned in percent; counts (IDSW, FP, FN, ...) as ints.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet._optional import require
from edgedet.errors import DataError
from edgedet.motchallenge import MotGroundTruth, MotRows, SeqInfo, read_gt, read_seqinfo, read_tracks

PathLike = str | Path
PredInput = MotRows | npt.ArrayLike | PathLike
SeqInput = tuple[Any, Any, Any]  # (gt path | MotGroundTruth, pred rows | path, seqinfo path | SeqInfo)

_BENCHMARKS = ("auto", "MOT15", "MOT16", "MOT17", "MOT20")
_RATIO_KEYS = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "Recall", "Precision")


def _load(gt: Any, pred: Any, seqinfo: Any) -> tuple[MotGroundTruth, MotRows, SeqInfo]:
    g = gt if isinstance(gt, MotGroundTruth) else read_gt(gt)
    if isinstance(pred, MotRows):
        p = pred
    elif isinstance(pred, (str, Path)):
        p = read_tracks(pred)
    else:
        a = np.asarray(pred, np.float64)
        p = MotRows.from_array(a if a.size else np.zeros((0, 10)))
    info = seqinfo if isinstance(seqinfo, SeqInfo) else read_seqinfo(seqinfo)
    for what, frames in (("gt", g.frame), ("tracker output", p.frame)):
        if len(frames) and int(frames.max()) > info.seq_length:
            raise DataError(
                f"{info.name}: {what} has rows on frame {int(frames.max())} beyond seqLength {info.seq_length}: "
                "check the files belong to this sequence"
            )
    return g, p, info


def _dataset(benchmark: str) -> Any:
    """A MotChallenge2DBox that skips the file-system setup and keeps TrackEval's own preprocessing."""
    te = require("trackeval", "MOT scoring")
    base = te.datasets.MotChallenge2DBox

    class _InMemory(base):  # type: ignore[misc, valid-type]
        def __init__(self, bench: str) -> None:  # no super().__init__: it reads folders we do not have
            self.benchmark = bench
            self.do_preproc = True
            self.class_name_to_class_id = {
                "pedestrian": 1, "person_on_vehicle": 2, "car": 3, "bicycle": 4, "motorbike": 5,
                "non_mot_vehicle": 6, "static_person": 7, "distractor": 8, "occluder": 9,
                "occluder_on_ground": 10, "occluder_full": 11, "reflection": 12, "crowd": 13,
            }  # fmt: skip
            self.valid_class_numbers = list(self.class_name_to_class_id.values())

    return _InMemory(benchmark)


def prepare_sequence(gt: Any, pred: Any, seqinfo: Any, benchmark: str = "auto") -> dict[str, Any]:
    """TrackEval's preprocessed data dict for one sequence (what its metrics' eval_sequence take)."""
    if benchmark not in _BENCHMARKS:
        raise DataError(f"unknown MOT benchmark {benchmark!r}: use one of {', '.join(_BENCHMARKS)}")
    g, p, info = _load(gt, pred, seqinfo)
    if benchmark == "auto":
        benchmark = "MOT17" if g.has_classes else "MOT15"
    if benchmark != "MOT15" and not g.has_classes:
        raise DataError(
            f"{info.name}: {benchmark} scoring needs a gt class column, this gt has none: use MOT15"
        )
    ds = _dataset(benchmark)
    te = require("trackeval", "MOT scoring")
    n = info.seq_length
    raw: dict[str, Any] = {k: [None] * n for k in (
        "gt_ids", "gt_classes", "gt_dets", "gt_crowd_ignore_regions", "gt_extras",
        "tracker_ids", "tracker_classes", "tracker_dets", "tracker_confidences", "similarity_scores",
    )}  # fmt: skip
    g_order = np.argsort(g.frame, kind="stable")
    p_order = np.argsort(p.frame, kind="stable")
    g_bounds = np.searchsorted(g.frame[g_order], np.arange(1, n + 2))
    p_bounds = np.searchsorted(p.frame[p_order], np.arange(1, n + 2))
    for t in range(n):
        gi = g_order[g_bounds[t] : g_bounds[t + 1]]
        pi = p_order[p_bounds[t] : p_bounds[t + 1]]
        raw["gt_ids"][t] = g.track_id[gi].astype(int)
        raw["gt_classes"][t] = g.class_id[gi].astype(int)
        raw["gt_dets"][t] = g.xywh[gi].reshape(-1, 4)
        raw["gt_crowd_ignore_regions"][t] = np.empty((0, 4))
        raw["gt_extras"][t] = {"zero_marked": g.flag[gi].astype(int)}
        raw["tracker_ids"][t] = p.track_id[pi].astype(int)
        raw["tracker_classes"][t] = np.ones(len(pi), int)
        raw["tracker_dets"][t] = p.xywh[pi].reshape(-1, 4)
        raw["tracker_confidences"][t] = p.score[pi]
        raw["similarity_scores"][t] = ds._calculate_similarities(raw["gt_dets"][t], raw["tracker_dets"][t])
    raw["num_timesteps"] = n
    raw["seq"] = info.name
    try:
        return dict(ds.get_preprocessed_seq_data(raw, "pedestrian"))
    except te.utils.TrackEvalException as exc:
        raise DataError(
            f"{info.name}: TrackEval refused the data ({exc}): fix the gt or tracker file"
        ) from None


def _metrics() -> list[Any]:
    te = require("trackeval", "MOT scoring")
    cfg = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
    return [te.metrics.HOTA(), te.metrics.CLEAR(dict(cfg)), te.metrics.Identity(dict(cfg))]


def _summary(res: Mapping[str, Mapping[str, Any]]) -> dict[str, float | int]:
    h, c, i = res["HOTA"], res["CLEAR"], res["Identity"]
    out: dict[str, float | int] = {
        "HOTA": float(np.mean(h["HOTA"])) * 100,
        "DetA": float(np.mean(h["DetA"])) * 100,
        "AssA": float(np.mean(h["AssA"])) * 100,
        "LocA": float(np.mean(h["LocA"])) * 100,
        "MOTA": float(c["MOTA"]) * 100,
        "MOTP": float(c["MOTP"]) * 100,
        "IDF1": float(i["IDF1"]) * 100,
        "IDP": float(i["IDP"]) * 100,
        "IDR": float(i["IDR"]) * 100,
        "Recall": float(c["CLR_Re"]) * 100,
        "Precision": float(c["CLR_Pr"]) * 100,
        "IDSW": int(c["IDSW"]),
        "FP": int(c["CLR_FP"]),
        "FN": int(c["CLR_FN"]),
        "TP": int(c["CLR_TP"]),
        "Frag": int(c["Frag"]),
        "MT": int(c["MT"]),
        "ML": int(c["ML"]),
        "num_gt_dets": int(c["CLR_TP"] + c["CLR_FN"]),
    }
    return out


def _score(data: Mapping[str, Any]) -> dict[str, Any]:
    return {m.get_name(): m.eval_sequence(data) for m in _metrics()}


def evaluate_sequence(
    gt_path: PathLike | MotGroundTruth, pred: PredInput, seqinfo: PathLike | SeqInfo, benchmark: str = "auto"
) -> dict[str, float | int]:
    """Score one sequence: tracker rows (MotRows, (N, >=7) array, or a tracks file) against its gt.txt.

    Returns {HOTA, DetA, AssA, LocA, MOTA, MOTP, IDF1, IDP, IDR, Recall, Precision (percent), IDSW, FP,
    FN, TP, Frag, MT, ML, num_gt_dets (counts)}. benchmark "auto" = MOT17 rules when the gt has a class
    column, MOT15 rules otherwise.
    """
    return _summary(_score(prepare_sequence(gt_path, pred, seqinfo, benchmark)))


def evaluate(results: Mapping[str, SeqInput], benchmark: str = "auto") -> dict[str, Any]:
    """Score several sequences: {name: (gt, pred, seqinfo)} -> {"per_sequence": {name: summary}, "combined": summary}.

    "combined" is TrackEval's combine_sequences over the sequences (MOTChallenge's overall row: counts summed,
    HOTA from summed TP/FN/FP and association scores weighted by TPs).
    """
    if not results:
        raise DataError("evaluate() got no sequences: pass {name: (gt_path, pred, seqinfo_path)}")
    raw: dict[str, dict[str, Any]] = {}
    for name, (gt, pred, info) in results.items():
        raw[name] = _score(prepare_sequence(gt, pred, info, benchmark))
    combined = {
        m.get_name(): m.combine_sequences({s: r[m.get_name()] for s, r in raw.items()}) for m in _metrics()
    }
    return {"per_sequence": {s: _summary(r) for s, r in raw.items()}, "combined": _summary(combined)}


def motmetrics_evaluate(results: Mapping[str, SeqInput], benchmark: str = "auto") -> dict[str, Any]:
    """The same sequences scored by py-motmetrics on TrackEval's prepared data: MOTA, IDF1 (percent), IDSW, FP, FN.

    IoU distances are computed here (1 - IoU, NaN below IoU 0.5): motmetrics 1.4's iou_matrix needs numpy < 2.
    """
    mm = require("motmetrics", "the py-motmetrics cross-check")
    accs, names = [], []
    for name, (gt, pred, info) in results.items():
        data = prepare_sequence(gt, pred, info, benchmark)
        acc = mm.MOTAccumulator(auto_id=True)
        for t in range(data["num_timesteps"]):
            sim = np.asarray(data["similarity_scores"][t], np.float64)
            dist = np.where(sim >= 0.5 - np.finfo(float).eps, 1.0 - sim, np.nan)
            acc.update(data["gt_ids"][t], data["tracker_ids"][t], dist)
        accs.append(acc)
        names.append(name)
    mh = mm.metrics.create()
    metrics = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses"]
    df = mh.compute_many(accs, metrics=metrics, names=names, generate_overall=True)

    def row(key: str) -> dict[str, float | int]:
        r = df.loc[key]
        return {
            "MOTA": float(r["mota"]) * 100,
            "IDF1": float(r["idf1"]) * 100,
            "IDSW": int(r["num_switches"]),
            "FP": int(r["num_false_positives"]),
            "FN": int(r["num_misses"]),
        }

    return {"per_sequence": {n: row(n) for n in names}, "combined": row("OVERALL")}
