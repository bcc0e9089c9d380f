#!/usr/bin/env python
"""Accuracy and speed of the bundled demo detector on held-out drone flights (never trained on).

    python benchmarks/eval_demo.py                       # packaged FP32 + INT8, test split
    python benchmarks/eval_demo.py --split val --det-flights 3 --mot-flights 2 --json /tmp/demo_eval.json

1. Detection: COCO mAP50 / mAP50-95 (pycocotools through `edgedet.eval.det.coco_map`) of FP32 and INT8 on every
   --det-stride-th frame of --det-flights flights of --split, both models run through the runtime's own
   preprocess/postprocess (`OnnxDetector`, conf 0.001, NMS 0.6). Labels: objects with visibility >= 0.3 (as
   training); the rest of the objects in view are COCO crowd regions (neither rewarded nor penalised).
2. Latency: ONNX Runtime `run` of FP32 and INT8 (2 intra-op threads), interleaved call by call on one frame
   after a warm-up, so both see the same machine load; p50/p90 and the ratio.
3. Tracking: `edgedet run`'s own pipeline (`build_pipeline(RunConfig(...))`, demo source, SORT) on --mot-flights
   flights of --mot-frames frames, detector on every frame, every 2nd and every 3rd; tracks scored with TrackEval
   (`edgedet.eval.mot`), class-agnostic, MOT17 rules: objects with visibility >= 0.3 are scored, less visible
   ones are distractors (a track on them is neither a hit nor a false positive).
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
import numpy.typing as npt

from edgedet.scenes import scored  # which objects count: the rule the training labels use


def render_flights(
    split: str, flights: int, frames: int, stride: int
) -> tuple[list[npt.NDArray[np.uint8]], list[npt.NDArray[np.float64]]]:
    """Every `stride`-th frame (and its gt rows) of flights 0..flights-1 of `split`."""
    from edgedet.scenes import DemoScene

    images, gts = [], []
    for index in range(flights):
        for i, (img, gt) in enumerate(DemoScene(seed=0, split=split, index=index, frames=frames)):
            if i % stride == 0:
                images.append(img)
                gts.append(gt)
    return images, gts


def dataset_from_gt(gts: list[npt.NDArray[np.float64]], hw: tuple[int, int]) -> Any:
    from edgedet.datasets import DetectionDataset, LabelledImage
    from edgedet.scenes import CLASS_NAMES

    items = []
    for i, gt in enumerate(gts):
        xyxy = np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2] + gt[:, 4], gt[:, 3] + gt[:, 5]])
        items.append(
            LabelledImage(
                path=Path(f"frame{i:05d}"),
                hw=hw,
                xyxy=xyxy.astype(np.float32),
                class_id=(gt[:, 7] - 1).astype(np.int32),
                iscrowd=~scored(gt),
            )
        )
    return DetectionDataset(tuple(items), CLASS_NAMES, name="demo-heldout")


def detection(args: argparse.Namespace, models: dict[str, Path]) -> dict[str, Any]:
    from edgedet.eval.det import OnnxDetector, coco_map

    t0 = time.perf_counter()
    images, gts = render_flights(args.split, args.det_flights, args.det_frames, args.det_stride)
    dataset = dataset_from_gt(gts, images[0].shape[:2])
    n_obj = int(sum(scored(g).sum() for g in gts))
    print(
        f"detection: {len(images)} frames of {args.det_flights} {args.split} flights, {n_obj} objects "
        f"(rendered in {time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    detectors = {k: OnnxDetector(p, threads=args.threads) for k, p in models.items()}
    dets: dict[str, list[Any]] = {k: [] for k in models}
    for img in images:  # interleaved, so both precisions see the same load
        for k, det in detectors.items():
            dets[k].append(det(img))
    out: dict[str, Any] = {"images": len(images), "objects": n_obj, "split": args.split}
    for k in models:
        m5095, m50, per_class = coco_map(dataset, dets[k], per_class=True)
        out[k] = {
            "map50": round(m50, 4),
            "map50_95": round(m5095, 4),
            "per_class_map50": {dataset.class_names[c]: round(v[1], 4) for c, v in per_class.items()},
            "model_ms_p50": round(float(np.median(detectors[k].model_ms)), 2),
            "e2e_ms_p50": round(float(np.median(detectors[k].e2e_ms)), 2),
        }
        print(
            f"  {k:5s} mAP50 {m50:.4f}  mAP50-95 {m5095:.4f}  per class mAP50 {out[k]['per_class_map50']}",
            flush=True,
        )
    if "fp32" in out and "int8" in out:
        out["int8_drop_points"] = {
            "map50": round(100 * (out["fp32"]["map50"] - out["int8"]["map50"]), 2),
            "map50_95": round(100 * (out["fp32"]["map50_95"] - out["int8"]["map50_95"]), 2),
        }
        print(f"  INT8 - FP32 drop (points): {out['int8_drop_points']}", flush=True)
    return out


def latency(args: argparse.Namespace, models: dict[str, Path]) -> dict[str, Any]:
    from edgedet.eval.det import OnnxDetector
    from edgedet.scenes import DemoScene

    image = next(iter(DemoScene(seed=0, split=args.split, index=0, frames=1)))[0]
    detectors = {k: OnnxDetector(p, threads=args.threads) for k, p in models.items()}
    tensors = {k: d.preprocess(image)[0].copy() for k, d in detectors.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for r in range(args.warmup + args.runs):
        for k, d in detectors.items():
            t0 = time.perf_counter_ns()
            d.infer(tensors[k])
            if r >= args.warmup:
                times[k].append((time.perf_counter_ns() - t0) / 1e6)
    out: dict[str, Any] = {"threads": args.threads, "runs": args.runs}
    for k, t in times.items():
        out[k] = {
            "p50_ms": round(float(np.percentile(t, 50)), 2),
            "p90_ms": round(float(np.percentile(t, 90)), 2),
        }
    line = ", ".join(
        f"{k} p50 {v['p50_ms']:.1f} ms p90 {v['p90_ms']:.1f} ms" for k, v in out.items() if k in models
    )
    if "fp32" in out and "int8" in out:
        out["fp32_over_int8_p50"] = round(out["fp32"]["p50_ms"] / out["int8"]["p50_ms"], 2)
        line += f"; FP32/INT8 = {out['fp32_over_int8_p50']:.2f}x"
    print(f"latency (ONNX Runtime run, {args.threads} threads, interleaved): {line}", flush=True)
    return out


def tracking(args: argparse.Namespace, models: dict[str, Path]) -> dict[str, Any]:
    from edgedet.config import RunConfig
    from edgedet.eval.mot import evaluate
    from edgedet.pipeline import build_pipeline
    from edgedet.scenes import DemoScene, scene_mot_truth

    gts: dict[int, tuple[Any, Any]] = {}
    for index in range(args.mot_flights):
        gts[index] = scene_mot_truth(DemoScene(seed=0, split=args.split, index=index, frames=args.mot_frames))
    out: dict[str, Any] = {"flights": args.mot_flights, "frames": args.mot_frames, "split": args.split}
    # (precision, detect every, target fps, camera-motion compensation)
    skips: list[tuple[int, float | None]] = [(1, None), (2, None), (3, None)]
    if args.target_fps:
        skips.append((1, 30.0))
    cmcs = ("off", "sparse") if args.cmc else ("off",)
    runs = [("fp32", n, fps, c) for c in cmcs for n, fps in skips]
    if "int8" in models and args.mot_int8:
        runs.append(("int8", 1, None, "off"))
    with tempfile.TemporaryDirectory() as tmp:
        for prec, every, target_fps, cmc in runs:
            if prec not in models:
                continue
            results = {}
            t0 = time.perf_counter()
            for index, (gt, info) in gts.items():
                path = Path(tmp) / f"{prec}-{every}-{target_fps}-{cmc}-{index}.txt"
                cfg = RunConfig(
                    source=f"demo:split={args.split},index={index},frames={args.mot_frames}",
                    model=str(models[prec]),
                    threads=args.threads,
                    detect_every=every,
                    target_fps=target_fps,
                    cmc=cmc,
                    save_mot=str(path),
                )
                build_pipeline(cfg).run()
                results[info.name] = (gt, path if path.exists() else np.zeros((0, 10)), info)
            combined = evaluate(results, benchmark="MOT17")["combined"]
            skip = f"target_fps_{target_fps:g}" if target_fps else f"detect_every_{every}"
            key = f"{prec}_{skip}" + ("_cmc" if cmc != "off" else "")
            out[key] = {
                k: combined[k] for k in ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN", "Recall", "Precision")
            }
            print(
                f"tracking {prec} {skip} cmc {cmc}: MOTA {combined['MOTA']:.1f} IDF1 {combined['IDF1']:.1f} "
                f"HOTA {combined['HOTA']:.1f} IDSW {combined['IDSW']} FP {combined['FP']} FN {combined['FN']} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return out


def main(argv: list[str] | None = None) -> int:
    from edgedet import demo

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fp32", type=Path, default=None, help="FP32 ONNX (default: the packaged demo.onnx)")
    p.add_argument("--int8", type=Path, default=None, help="INT8 ONNX (default: the packaged demo.int8.onnx)")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--det-flights", type=int, default=6)
    p.add_argument("--det-frames", type=int, default=150)
    p.add_argument("--det-stride", type=int, default=5)
    p.add_argument("--mot-flights", type=int, default=3)
    p.add_argument("--mot-frames", type=int, default=300)
    p.add_argument("--mot-int8", action="store_true", help="also track with the INT8 model (every frame)")
    p.add_argument(
        "--cmc", action="store_true", help="also track with camera-motion compensation (--cmc sparse)"
    )
    p.add_argument("--target-fps", action="store_true", help="also track with --target-fps 30 (real timing)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--skip", nargs="*", default=(), choices=["detection", "latency", "tracking"])
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import cv2

    cv2.setNumThreads(1)
    models: dict[str, Path] = {}
    for key, given in (("fp32", args.fp32), ("int8", args.int8)):
        path = given if given is not None else demo.package_dir() / demo.MODEL_FILES[key]
        if path.is_file():
            models[key] = path
        else:
            print(f"note: no {key} model at {path}; skipped", file=sys.stderr)
    if not models:
        print(
            "error: no model to evaluate: convert models/demo.pt first (see models/README.md)",
            file=sys.stderr,
        )
        return 1
    report: dict[str, Any] = {"models": {k: str(v) for k, v in models.items()}}
    t0 = time.perf_counter()
    if "detection" not in args.skip:
        report["detection"] = detection(args, models)
    if "latency" not in args.skip:
        report["latency"] = latency(args, models)
    if "tracking" not in args.skip:
        report["tracking"] = tracking(args, models)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
