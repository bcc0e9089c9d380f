"""Score ground positions against a scene's exact truth: `edgedet eval geo`.

Per frame, tracks (rows with a track id) are matched to the scored truth objects (the scenes' rule: in view,
visibility >= 0.3, sides >= 2 px) by image IoU (Hungarian, IoU >= `iou`). For each matched pair that has a
position, the error is the horizontal distance between the track's and the object's ground positions, both
taken from WGS84 lat/lon into metres at the truth's first point (pymap3d). Reported: median, p90, max and
mean error, coverage (matched pairs that got a position), the share of matched truth objects, and how well
sigma_m describes the error (share of errors within 1 and 2 sigma_m).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from edgedet.boxes import iou_matrix
from edgedet.errors import DataError

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FramePositions:
    """One frame of a run: (N, 4) xyxy frame pixels (0-based, as Detections), (N,) track ids, lat, lon,
    sigma_m (NaN: no position)."""

    xyxy: F64
    track_id: npt.NDArray[np.int64]
    lat: F64
    lon: F64
    sigma_m: F64


@dataclass
class GeoTruth:
    """A sequence's truth: gt rows per 1-based frame ((N, 9) MOT rows with 0-based x, y) and the ground
    position (lat, lon) of each (frame, id)."""

    gt: dict[int, F64]
    where: dict[tuple[int, int], tuple[float, float]]

    @classmethod
    def from_dir(cls, seq_dir: str | Path) -> GeoTruth:
        d = Path(seq_dir)
        gt_path, geo_path = d / "gt" / "gt.txt", d / "gt" / "gt_geo.csv"
        for p in (gt_path, geo_path):
            if not p.is_file():
                raise DataError(
                    f"{p} is missing: eval geo needs a scene written by tools/make_scenes.py (gt.txt + gt_geo.csv)"
                )
        rows = np.loadtxt(gt_path, delimiter=",", ndmin=2)
        rows[:, 2:4] -= 1.0  # gt.txt is 1-based (MOTChallenge); runs' JSON lines are 0-based frame pixels
        gt: dict[int, F64] = {}
        for f in np.unique(rows[:, 0]).astype(int):
            gt[int(f)] = rows[rows[:, 0] == f]
        where: dict[tuple[int, int], tuple[float, float]] = {}
        with open(geo_path, encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                where[(int(r["frame"]), int(r["id"]))] = (float(r["lat"]), float(r["lon"]))
        return cls(gt, where)


@dataclass
class GeoScore:
    """Errors of matched (track, object) pairs in metres, and the counts behind coverage."""

    errors_m: list[float] = field(default_factory=list)
    sigmas_m: list[float] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    matched: int = 0
    objects: int = 0

    def add(self, other: GeoScore) -> None:
        self.errors_m += other.errors_m
        self.sigmas_m += other.sigmas_m
        self.classes += other.classes
        self.matched += other.matched
        self.objects += other.objects

    def summary(self) -> dict[str, Any]:
        e = np.asarray(self.errors_m, np.float64)
        s = np.asarray(self.sigmas_m, np.float64)
        out: dict[str, Any] = {
            "objects": self.objects,
            "matched": self.matched,
            "with_position": len(e),
            "coverage": round(len(e) / self.matched, 4) if self.matched else None,
            "matched_share": round(self.matched / self.objects, 4) if self.objects else None,
        }
        if len(e):
            out.update(
                median_m=round(float(np.median(e)), 3),
                p90_m=round(float(np.percentile(e, 90)), 3),
                max_m=round(float(e.max()), 3),
                mean_m=round(float(e.mean()), 3),
            )
            ok = np.isfinite(s)
            if ok.any():
                out["sigma_m_median"] = round(float(np.median(s[ok])), 3)
                out["within_1sigma"] = round(float(np.mean(e[ok] <= s[ok])), 4)
                out["within_2sigma"] = round(float(np.mean(e[ok] <= 2 * s[ok])), 4)
            cls = np.asarray(self.classes)
            out["median_m_by_class"] = {
                int(c): round(float(np.median(e[cls == c])), 3) for c in np.unique(cls)
            }
        return out


def score_frames(
    truth: GeoTruth,
    frames: Mapping[int, FramePositions],
    iou: float = 0.5,
    min_visibility: float = 0.3,
    min_side_px: float = 2.0,
) -> GeoScore:
    """Match and score every truth frame (1-based) against `frames` (same numbering; missing = no tracks)."""
    from edgedet.geo.geodesy import GeoReference
    from edgedet.scenes.writer import scored

    score = GeoScore()
    if not truth.where:
        return score
    lat0, lon0 = next(iter(truth.where.values()))
    ref = GeoReference(lat0, lon0, 0.0)
    pred_ll: list[tuple[float, float]] = []
    true_ll: list[tuple[float, float]] = []
    for f, gt in truth.gt.items():
        g = gt[scored(gt, min_visibility, min_side_px)]
        score.objects += len(g)
        fp = frames.get(f)
        if fp is None or len(g) == 0:
            continue
        keep = fp.track_id >= 0
        if not keep.any():
            continue
        boxes = fp.xyxy[keep]
        gxyxy = np.concatenate([g[:, 2:4], g[:, 2:4] + g[:, 4:6]], axis=1)
        ious = iou_matrix(boxes, gxyxy)
        r, c = linear_sum_assignment(-ious)
        good = ious[r, c] >= iou
        idx = np.nonzero(keep)[0]
        for pi, gi in zip(r[good], c[good], strict=True):
            score.matched += 1
            k = idx[pi]
            if not (np.isfinite(fp.lat[k]) and np.isfinite(fp.lon[k])):
                continue
            key = (f, int(g[gi, 1]))
            if key not in truth.where:
                raise DataError(f"gt_geo.csv has no row for frame {f}, id {key[1]}: rewrite the scene")
            pred_ll.append((float(fp.lat[k]), float(fp.lon[k])))
            true_ll.append(truth.where[key])
            score.sigmas_m.append(float(fp.sigma_m[k]))
            score.classes.append(int(g[gi, 7]) - 1)
    if pred_ll:
        p = np.asarray(pred_ll)
        t = np.asarray(true_ll)
        pe = ref.to_enu(p[:, 0], p[:, 1], 0.0)
        te = ref.to_enu(t[:, 0], t[:, 1], 0.0)
        score.errors_m = np.hypot(pe[:, 0] - te[:, 0], pe[:, 1] - te[:, 1]).tolist()
    return score


def read_positions(path: str | Path) -> dict[int, FramePositions]:
    """A run's JSON lines (--save-json with ground positions) -> {1-based frame: FramePositions}."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist: pass the --save-json file of a run with --telemetry")
    out: dict[int, FramePositions] = {}
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                dets = rec["detections"]
                frame = int(rec["index"]) + 1
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{p} line {n} is not an edgedet JSON-lines record ({exc})") from exc
            out[frame] = _frame(dets)
    return out


def _frame(dets: Iterable[Mapping[str, Any]]) -> FramePositions:
    d = list(dets)

    def col(key: str) -> F64:
        return np.array([np.nan if x.get(key) is None else float(x[key]) for x in d], np.float64)

    xyxy = np.array([x["xyxy"] for x in d], np.float64).reshape(-1, 4)
    tid = np.array([x.get("track_id", -1) for x in d], np.int64)
    return FramePositions(xyxy, tid, col("lat"), col("lon"), col("sigma_m"))


def track_and_locate(
    seq_dir: str | Path,
    model: str | None = None,
    telemetry: str = "telemetry.jsonl",
    latency_ms: float = 0.0,
    anchor: str = "center",
    detect_every: int = 1,
    cmc: str = "pose",
    threads: int = 0,
) -> dict[int, FramePositions]:
    """Run `edgedet run`'s pipeline (detector, tracker, ground positions) over a written scene's images with its
    camera.yaml and telemetry (a file name inside the folder, or a path), and read back its JSON lines."""
    import tempfile

    from edgedet.config import RunConfig
    from edgedet.motchallenge import read_seqinfo
    from edgedet.pipeline import build_pipeline

    d = Path(seq_dir)
    info = read_seqinfo(d / "seqinfo.ini")
    tel = d / telemetry if (d / telemetry).is_file() else Path(telemetry)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.jsonl"
        config = RunConfig(
            source=str(d / "images"),
            model=model,
            fps=info.frame_rate,
            threads=threads,
            detect_every=detect_every,
            cmc=cmc,
            telemetry=str(tel),
            camera_calib=str(d / "camera.yaml"),
            telemetry_latency_ms=latency_ms,
            geo_anchor=anchor,
            save_json=str(out),
        )
        build_pipeline(config).run()
        return read_positions(out)


def eval_geo(
    data: str | Path, predictions: str | Path | None = None, iou: float = 0.5, **run: Any
) -> dict[str, Any]:
    """Score one written scene folder (`data`: gt/gt.txt, gt/gt_geo.csv, images, camera.yaml, telemetry) against
    a run's JSON lines (`predictions`), or, without them, track it here (`track_and_locate(**run)`).
    Returns `GeoScore.summary()`."""
    truth = GeoTruth.from_dir(data)
    frames = read_positions(predictions) if predictions is not None else track_and_locate(data, **run)
    return score_frames(truth, frames, iou=iou).summary()


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The report of `eval_geo` as lines for the terminal."""
    lines = [
        f"matched {report['matched']} of {report['objects']} truth objects over the frames "
        f"({100 * (report['matched_share'] or 0):.1f}%); with a ground position: {report['with_position']} "
        f"(coverage {100 * (report['coverage'] or 0):.1f}%)"
    ]
    if "median_m" in report:
        lines.append(
            f"ground error: median {report['median_m']:.2f} m, p90 {report['p90_m']:.2f} m, "
            f"max {report['max_m']:.2f} m, mean {report['mean_m']:.2f} m"
        )
    if "within_1sigma" in report:
        lines.append(
            f"reported sigma_m: median {report['sigma_m_median']:.2f} m; error within 1 sigma "
            f"{100 * report['within_1sigma']:.1f}%, within 2 sigma {100 * report['within_2sigma']:.1f}%"
        )
    return lines
