#!/usr/bin/env python
"""Ground positions of tracks on held-out demo flights (30-60 m, camera tilted 0-18 deg), against exact truth.

    python benchmarks/eval_geo.py --flights 3 --frames 300 --json /tmp/geo.json --png /tmp/geo.png

1. Geo accuracy. The bundled detector + SORT (`edgedet run`'s pipeline, detector on every frame) tracks each
   flight once; every frame's tracks are then located (edgedet.geo) from the flight's telemetry in several
   ways and scored by `edgedet.eval.geo` (tracks matched to truth by IoU >= 0.5 per frame):
   - true telemetry (50 Hz, interpolated at each frame time);
   - noisy telemetry (GPS 1.5 m per axis, attitude 0.5 deg, gimbal 0.3 deg per axis, as slowly wandering
     Gauss-Markov errors; records stamped 50 ms late), read as if on time, and with --telemetry-latency 50 ms;
   - for both anchors of the box (bottom centre, centre).
   "Noise alone": each truth object's exact image point (its ground position through the true pose), located
   through the noisy telemetry: the error the pose errors imply with no detector or anchor error; compared
   with the sigma_m the error model predicts.
2. Tracking: IDF1/HOTA/MOTA (TrackEval, MOT17 rules, class-agnostic as benchmarks/eval_demo.py) with
   --cmc off | sparse | pose at detect-every 1, 2, 3 on the same flights, and each CMC's cost per frame
   (the pipeline's "cmc" stage, p50).
3. A GeoJSON of one flight (GeoJsonSink) rendered with matplotlib over the truth paths (--png).
Timings are from whatever machine runs it (ratios in one run are what compare).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _pipeline(args: argparse.Namespace, index: int, every: int, cmc: str, **outputs: Any) -> Any:
    """`edgedet run`'s pipeline on flight `index` (no demo defaults: no pacing, no target FPS, no run folder).
    cmc "pose" uses the flight's exact telemetry, "pose_noisy" the realistic noisy one (50 ms compensated)."""
    from edgedet.config import RunConfig
    from edgedet.pipeline import build_pipeline
    from edgedet.scenes import REALISTIC

    geo: dict[str, Any] = {}
    if cmc == "pose_noisy":
        geo = {"telemetry": "demo-noisy", "telemetry_latency_ms": REALISTIC.latency_ms}
    elif cmc == "pose" or any(k in outputs for k in ("save_geojson", "save_kml")):
        geo = {"telemetry": "demo"}
    cfg = RunConfig(
        source=f"demo:split={args.split},index={index},frames={args.frames}",
        threads=args.threads,
        detect_every=every,
        cmc="pose" if cmc.startswith("pose") else cmc,
        realtime=False,
        defaults_applied=True,
        **geo,
        **outputs,
    )
    return build_pipeline(cfg)


def _tracks(path: Path, fps: float) -> dict[int, tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """A run's JSON lines -> {1-based frame: (time, xyxy, track ids, class ids)}."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        d = rec["detections"]
        out[rec["index"] + 1] = (
            rec["index"] / fps,
            np.array([x["xyxy"] for x in d], np.float64).reshape(-1, 4),
            np.array([x["track_id"] for x in d], np.int64),
            np.array([x["class_id"] for x in d], np.int64),
        )
    return out


def geo_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    from edgedet.eval.geo import FramePositions, GeoScore, GeoTruth, score_frames
    from edgedet.geo import CameraModel, ErrorModel, GroundProjector, Mount, anchor_points
    from edgedet.geo.geodesy import GeoReference
    from edgedet.geo.project import ground_to_image
    from edgedet.scenes import REALISTIC, DemoScene, TelemetryNoise, scene_pose_source

    late = TelemetryNoise(
        gps_m=0.0, alt_m=0.0, attitude_deg=0.0, gimbal_deg=0.0, latency_ms=REALISTIC.latency_ms
    )
    seeds = list(range(args.seeds))
    # name: (noise, latency compensation ms, noise seeds, anchors)
    variants: dict[str, tuple[Any, float, list[int], tuple[str, ...]]] = {
        "true": (None, 0.0, [0], ("bottom", "center")),
        "late50_uncompensated": (late, 0.0, [0], ("center",)),
        "late50_compensated": (late, REALISTIC.latency_ms, [0], ("center",)),
        "noisy_uncompensated": (REALISTIC, 0.0, seeds, ("center",)),
        "noisy_compensated": (REALISTIC, REALISTIC.latency_ms, seeds, ("center",)),
    }
    totals: dict[str, GeoScore] = {f"{v}_{a}": GeoScore() for v, spec in variants.items() for a in spec[3]}
    totals["gt_boxes_true_center"] = GeoScore()
    noise: dict[str, list[float]] = {"comp": [], "raw": [], "sigma": []}
    for index in range(args.flights):
        t0 = time.perf_counter()
        scene = DemoScene(seed=0, split=args.split, index=index, frames=args.frames)
        home = GeoReference(scene.config.origin_lat_deg, scene.config.origin_lon_deg, 0.0)
        gt: dict[int, np.ndarray] = {}
        where_en: dict[int, dict[int, tuple[float, float]]] = {}
        for i, (_img, g, where) in enumerate(scene.iter_truth()):
            gt[i + 1] = g
            where_en[i + 1] = where
        keys = [(f, oid) for f, w in where_en.items() for oid in w]
        en = np.array([where_en[f][o] for f, o in keys]).reshape(-1, 2)
        ll = home.to_geodetic(en[:, 0], en[:, 1], 0.0).reshape(-1, 3)
        truth = GeoTruth(gt, {k: (float(a), float(b)) for k, (a, b, _) in zip(keys, ll, strict=True)})
        with tempfile.TemporaryDirectory() as tmp:
            run_json = Path(tmp) / "run.jsonl"
            _pipeline(args, index, 1, "sparse", save_json=str(run_json)).run()
            tracked = _tracks(run_json, scene.config.fps)
        camera = CameraModel.from_hfov(scene.config.hfov_deg, scene.config.size_hw)
        proj = GroundProjector(camera, Mount("gimbal"), errors=ErrorModel())
        true_src = scene_pose_source(scene)
        for vname, (nz, comp_ms, vseeds, anchors) in variants.items():
            for seed in vseeds:
                src = true_src if nz is None else scene_pose_source(scene, nz, latency_ms=comp_ms, seed=seed)
                for anchor in anchors:
                    frames: dict[int, FramePositions] = {}
                    for f, (t, xyxy, tid, _cls) in tracked.items():
                        fix = proj.locate(anchor_points(xyxy, anchor), src.pose_at(t), src.home)
                        frames[f] = FramePositions(xyxy, tid, fix.lat_deg, fix.lon_deg, fix.sigma_m)
                    totals[f"{vname}_{anchor}"].add(score_frames(truth, frames))
        # the anchor's own error: the exact boxes seen from the exact pose
        frames = {}
        for f, g in gt.items():
            xyxy = np.concatenate([g[:, 2:4], g[:, 2:4] + g[:, 4:6]], axis=1)
            pose = true_src.pose_at((f - 1) / scene.config.fps)
            fix = proj.locate(anchor_points(xyxy, "center"), pose, true_src.home)
            frames[f] = FramePositions(xyxy, g[:, 1].astype(np.int64), fix.lat_deg, fix.lon_deg, fix.sigma_m)
        totals["gt_boxes_true_center"].add(score_frames(truth, frames))
        # noise alone: each object's exact pixel (its ground position through the true pose), located through
        # noisy telemetry, over several noise draws
        exact: list[tuple[float, np.ndarray, np.ndarray]] = []
        for f, w in where_en.items():
            if not w:
                continue
            t = (f - 1) / scene.config.fps
            pose = true_src.pose_at(t)
            h = ground_to_image(camera, pose.camera_rotation(proj.mount), proj.camera_enu(pose, home))
            pts = np.array(list(w.values()))
            uvw = np.c_[pts, np.ones(len(pts))] @ h.T
            exact.append((t, pts, uvw[:, :2] / uvw[:, 2:]))
        for seed in range(args.noise_seeds):
            for bucket, comp in (("comp", REALISTIC.latency_ms), ("raw", 0.0)):
                src = scene_pose_source(scene, REALISTIC, latency_ms=comp, seed=seed)
                for t, pts, uv in exact:
                    fix = proj.locate(uv, src.pose_at(t), home)
                    noise[bucket] += np.hypot(fix.east_m - pts[:, 0], fix.north_m - pts[:, 1])[
                        fix.valid
                    ].tolist()
                    if bucket == "comp":
                        noise["sigma"] += fix.sigma_m[fix.valid].tolist()
        print(f"  flight {index}: {len(tracked)} frames ({time.perf_counter() - t0:.0f} s)", flush=True)
    out: dict[str, Any] = {k: v.summary() for k, v in totals.items()}
    for bucket in ("comp", "raw"):
        e, s = np.asarray(noise[bucket]), np.asarray(noise["sigma"])
        out[f"noise_alone_{'compensated' if bucket == 'comp' else 'uncompensated'}"] = {
            "points": len(e),
            "median_m": round(float(np.median(e)), 3),
            "p90_m": round(float(np.percentile(e, 90)), 3),
            "rms_m": round(float(np.sqrt(np.mean(e**2))), 3),
            "sigma_m_median": round(float(np.median(s)), 3),
            "sigma_m_rms": round(float(np.sqrt(np.mean(s**2))), 3),
            "within_1sigma": round(float(np.mean(e <= s)), 4),
        }
    for k, v in out.items():
        v = {x: y for x, y in v.items() if x not in ("median_m_by_class",)} | (
            {"by_class": v["median_m_by_class"]} if "median_m_by_class" in v else {}
        )
        print(f"  {k}: {v}", flush=True)
    return out


def tracking(args: argparse.Namespace) -> dict[str, Any]:
    from edgedet.eval.mot import evaluate
    from edgedet.scenes import DemoScene, scene_mot_truth

    gts: dict[int, tuple[Any, Any]] = {}
    for index in range(args.flights):
        gts[index] = scene_mot_truth(DemoScene(seed=0, split=args.split, index=index, frames=args.frames))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for every in (1, 2, 3):
            for cmc in args.cmcs:
                results = {}
                cmc_ms: list[float] = []
                t0 = time.perf_counter()
                for index, (gt, info) in gts.items():
                    path = Path(tmp) / f"{every}-{cmc}-{index}.txt"
                    summary = _pipeline(args, index, every, cmc, save_mot=str(path)).run()
                    if "cmc" in summary.latency:
                        cmc_ms.append(summary.latency["cmc"].p50_ms)
                    results[info.name] = (gt, path if path.exists() else np.zeros((0, 10)), info)
                c = evaluate(results, benchmark="MOT17")["combined"]
                key = f"every{every}_{cmc}"
                out[key] = {k: c[k] for k in ("IDF1", "HOTA", "MOTA", "IDSW", "FP", "FN")}
                out[key]["cmc_ms_p50"] = round(float(np.mean(cmc_ms)), 3) if cmc_ms else 0.0
                print(
                    f"  detect-every {every} cmc {cmc:6s}: IDF1 {c['IDF1']:.1f} HOTA {c['HOTA']:.1f} "
                    f"MOTA {c['MOTA']:.1f} IDSW {c['IDSW']} cmc {out[key]['cmc_ms_p50']:.3f} ms/frame "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    return out


def geojson_png(args: argparse.Namespace) -> dict[str, Any]:
    from edgedet.geo.geodesy import GeoReference
    from edgedet.scenes import DemoScene

    scene = DemoScene(seed=0, split=args.split, index=0, frames=args.frames)
    path = Path(args.geojson)
    path.unlink(missing_ok=True)
    _pipeline(args, 0, 1, "sparse", save_geojson=str(path)).run()  # --telemetry demo --save-geojson PATH
    data = json.loads(path.read_text())
    truth: dict[int, list[tuple[float, float]]] = {}
    for _img, _gt, where in scene.iter_truth():
        for oid, en in where.items():
            truth.setdefault(oid, []).append(en)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    home = GeoReference(scene.config.origin_lat_deg, scene.config.origin_lon_deg, 0.0)
    fig, ax = plt.subplots(figsize=(9, 9))
    for pts in truth.values():
        a = np.array(pts)
        ax.plot(a[:, 0], a[:, 1], color="0.75", lw=4, solid_capstyle="round", zorder=1)
    colours = {"car": "tab:blue", "truck": "tab:orange", "person": "tab:red"}
    for feat in data["features"]:
        c = np.array(feat["geometry"]["coordinates"], np.float64).reshape(-1, 2)
        en = home.to_enu(c[:, 1], c[:, 0], 0.0).reshape(-1, 3)
        ax.plot(en[:, 0], en[:, 1], color=colours.get(feat["properties"]["class_name"], "k"), lw=1, zorder=2)
    cam = np.array(
        [
            scene.world_to_en(np.array([scene.camera_pose(i / scene.config.fps).center_xy]))[0]
            for i in range(0, args.frames, 5)
        ]
    )
    ax.plot(cam[:, 0], cam[:, 1], "k--", lw=1, label="drone")
    ax.set_aspect("equal")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.set_title(f"{scene.name}: tracks from GeoJSON (colour) over truth paths (grey)")
    ax.legend(loc="upper right")
    fig.savefig(args.png, dpi=110, bbox_inches="tight")
    print(f"  wrote {path} ({len(data['features'])} tracks) and {args.png}", flush=True)
    return {"geojson": str(path), "png": args.png, "tracks": len(data["features"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--flights", type=int, default=3)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--seeds", type=int, default=8, help="noise draws per flight for the tracks' noisy telemetry"
    )
    p.add_argument("--noise-seeds", type=int, default=40, help="noise draws per flight for 'noise alone'")
    p.add_argument("--skip", nargs="*", default=(), choices=["geo", "tracking", "png"])
    p.add_argument("--geojson", default="/tmp/edgedet_geo_demo.geojson")
    p.add_argument("--png", default="/tmp/edgedet_geo_demo.png")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--cmcs",
        nargs="+",
        default=["off", "sparse", "pose"],
        choices=["off", "sparse", "pose", "pose_noisy"],
        help="motion compensation to compare (pose_noisy: from the realistic noisy telemetry)",
    )
    args = p.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    report: dict[str, Any] = {"split": args.split, "flights": args.flights, "frames": args.frames}
    t0 = time.perf_counter()
    if "geo" not in args.skip:
        print("geo accuracy:", flush=True)
        report["geo"] = geo_accuracy(args)
    if "png" not in args.skip:
        print("geojson:", flush=True)
        report["geojson"] = geojson_png(args)
    if "tracking" not in args.skip:
        print("tracking:", flush=True)
        report["tracking"] = tracking(args)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
