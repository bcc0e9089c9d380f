#!/usr/bin/env python
"""Write a synthetic drone-view dataset: MOTChallenge sequences + YOLO labels + COCO json, train and val splits.

    python tools/make_scenes.py --out /tmp/scenes --train 40 --val 6 --frames 150 --size 640x384

Layout (DIR = --out):
    DIR/train/<seq>/{images/*.jpg, labels/*.txt, gt/gt.txt, seqinfo.ini}   and the same under DIR/val/
    DIR/train.json, DIR/val.json      COCO instances (file_name relative to DIR; category id = class + 1)
    DIR/train.txt, DIR/val.txt        image lists; DIR/dataset.yaml for YOLOv5/Ultralytics training

Train and val sequences come from disjoint seed streams (different worlds, different flights) and never include
the world of `edgedet run --source demo`. `--benchmark` only measures generation speed on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from edgedet.errors import EdgedetError
from edgedet.scenes import CLASS_NAMES, DemoScene, SceneConfig, write_coco, write_sequence
from edgedet.scenes.writer import SequenceRecord


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x384") from exc
    return h, w


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="output folder (created)")
    p.add_argument("--train", type=int, default=40, help="training sequences (default 40)")
    p.add_argument("--val", type=int, default=6, help="held-out sequences (default 6)")
    p.add_argument("--frames", type=int, default=150, help="frames per sequence (default 150)")
    p.add_argument("--size", type=_size, default=(384, 640), help="WIDTHxHEIGHT (default 640x384)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    p.add_argument("--seed", type=int, default=0, help="base seed of both splits (default 0)")
    p.add_argument(
        "--format", choices=["jpg", "png", "mp4"], default="jpg", help="frames as images or one mp4"
    )
    p.add_argument("--jpeg-quality", type=int, default=92)
    p.add_argument(
        "--stride", type=int, default=1, help="keep every Nth frame in the training split (default 1)"
    )
    p.add_argument("--min-visibility", type=float, default=0.3, help="training labels need this visibility")
    p.add_argument("--altitude", type=float, nargs=2, default=(45.0, 95.0), metavar=("LOW", "HIGH"))
    p.add_argument("--world-size", type=int, default=4096)
    p.add_argument("--benchmark", action="store_true", help="time generation on one core and exit")
    return p


def _benchmark(cfg: SceneConfig) -> int:
    cv2.setNumThreads(1)
    for label, kw in (
        ("full", {}),
        ("no sensor effects", {"sensor_effects": False}),
        ("background only", {"draw_objects": False, "sensor_effects": False}),
    ):
        scene = DemoScene(seed=0, config=SceneConfig(**{**cfg.__dict__, **kw, "frames": 300}))
        t0 = time.perf_counter()
        _ = scene.world
        t1 = time.perf_counter()
        rows = sum(len(gt) for _, gt in scene)
        t2 = time.perf_counter()
        print(
            f"{label:18s} world {t1 - t0:5.2f} s   {300 / (t2 - t1):6.1f} FPS   {rows / 300:.1f} gt rows/frame"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = SceneConfig(
            size_hw=args.size,
            fps=args.fps,
            frames=args.frames,
            altitude_m=tuple(args.altitude),
            world_size=args.world_size,
        )
    except EdgedetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.benchmark:
        return _benchmark(cfg)
    if args.out is None:
        print("error: --out DIR is required (where the dataset is written)", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    lists: dict[str, list[str]] = {}
    for split, count in (("train", args.train), ("val", args.val)):
        records: list[SequenceRecord] = []
        for i in range(count):
            scene = DemoScene(seed=args.seed, config=cfg, split=split, index=i)
            t0 = time.perf_counter()
            try:
                rec = write_sequence(
                    scene,
                    out / split,
                    image_format=args.format,
                    jpeg_quality=args.jpeg_quality,
                    min_visibility=args.min_visibility,
                    rel_to=out,
                    keep_every=args.stride if split == "train" else 1,
                )
            except EdgedetError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            dt = time.perf_counter() - t0
            records.append(rec)
            print(
                f"[{split} {i + 1}/{count}] {rec.name}: {rec.frames} frames, {rec.gt_rows} gt rows, "
                f"{sum(a['iscrowd'] == 0 for a in rec.annotations)} labels, {dt:.1f} s ({rec.frames / dt:.0f} FPS)",
                flush=True,
            )
        write_coco(out / f"{split}.json", records, CLASS_NAMES)
        lists[split] = [im["file_name"] for r in records for im in r.images]
        if args.format != "mp4":
            (out / f"{split}.txt").write_text("".join(f"./{f}\n" for f in lists[split]), encoding="utf-8")
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    (out / "dataset.yaml").write_text(
        f"# edgedet synthetic drone scenes (tools/make_scenes.py, seed {args.seed})\n"
        f"path: {out.resolve()}\ntrain: train.txt\nval: val.txt\nnc: {len(CLASS_NAMES)}\nnames:\n{names}\n",
        encoding="utf-8",
    )
    print(f"wrote {out} in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
