"""NMS: edgedet's `nms` (and its numpy engine) against cv2.dnn.NMSBoxesBatched, side by side in one run.

Candidate sets: real YOLOv5n (reference ONNX, 640) candidates on coco128 images at conf 0.25 (tens of boxes)
and 0.001 (about a thousand), plus synthetic clustered sets. Prints the median time per call and the ratio to
OpenCV, and whether each result equals the plain greedy reference (OpenCV given the same class offsets).

    python benchmarks/bench_nms.py [--images 8] [--reps 200]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edgedet.postprocess import PostprocessConfig, Postprocessor
from edgedet.postprocess.nms import nms, nms_numpy
from edgedet.preprocess import Preprocessor
from edgedet.spec import spec_from_metadata

DATA = Path(os.environ.get("EDGEDET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")  # tools/fetch_data.py
IOU = 0.45


def median_us(fn: Callable[..., object], reps: int) -> float:
    for _ in range(5):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t0)
    return float(np.median(ts)) / 1e3


def real_candidates(n_images: int, conf: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(
        str(DATA / "models/reference_onnx/yolov5n_640.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    inp = sess.get_inputs()[0]
    spec = spec_from_metadata(
        sess.get_modelmeta().custom_metadata_map, inp.name, inp.shape, [o.shape for o in sess.get_outputs()]
    )
    pre = Preprocessor(spec)
    post = Postprocessor(spec, PostprocessConfig(conf_threshold=conf, multi_label=conf < 0.01))
    out = []
    for path in sorted((DATA / "coco128/images/train2017").glob("*.jpg"))[:n_images]:
        tensor, _ = pre(np.asarray(cv2.imread(str(path)), np.uint8))
        out.append(post.candidates(sess.run(None, {inp.name: tensor})))
    return out


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = max(1, n // 10)  # ~10 boxes per object, as a detector's neighbouring anchors give
    centres, sizes = rng.uniform(0, 640, (k, 2)), rng.uniform(10, 200, (k, 2))
    idx = rng.integers(0, k, n)
    c = centres[idx] + rng.normal(0, 5, (n, 2))
    wh = sizes[idx] * rng.uniform(0.8, 1.2, (n, 2))
    xyxy = np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32)
    return xyxy, rng.uniform(0.001, 1, n).astype(np.float32), rng.integers(0, 80, n).astype(np.int32)


def cv2_batched(xyxy: np.ndarray, score: np.ndarray, cls: np.ndarray, max_det: int) -> np.ndarray:
    """What a user calling OpenCV directly writes: xywh in, class-aware batched NMS, cap at max_det."""
    xywh = xyxy.astype(np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    kept = cv2.dnn.NMSBoxesBatched(xywh, score, cls, 0.0, IOU)  # type: ignore[arg-type]
    return np.asarray(kept, np.int64).reshape(-1)[:max_det]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()

    sets: list[tuple[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]] = []
    if (DATA / "models/reference_onnx/yolov5n_640.onnx").exists():
        sets.append((f"yolov5n coco128 x{args.images} conf 0.25", real_candidates(args.images, 0.25)))
        sets.append(
            (f"yolov5n coco128 x{args.images} conf 0.001 multi-label", real_candidates(args.images, 0.001))
        )
    else:
        print(f"(reference model not found under {DATA}: synthetic sets only)")
    for n in (30, 300, 1000, 5000):
        sets.append((f"synthetic clustered n={n}, 80 classes", [synthetic(n, n)]))

    print(
        f"cv2 {cv2.__version__}, numpy {np.__version__}; IoU {IOU}, class-aware, max_det 300; median of {args.reps}"
    )
    header = f"{'candidate set':48s} {'boxes':>6s} {'kept':>5s} {'cv2 us':>8s} {'nms us':>8s} {'numpy us':>9s} {'nms/cv2':>8s} {'numpy/cv2':>9s}  same"
    print(header)
    for name, cands in sets:
        t_cv = t_ours = t_np = 0.0
        same = True
        kept = 0
        for xyxy, score, cls in cands:
            ours = nms(xyxy, score, cls, IOU)
            same &= ours.tolist() == nms_numpy(xyxy, score, cls, IOU).tolist()
            # OpenCV's batched offset is (max + 1) * class: correct here only if no coordinate is negative
            if xyxy.size and xyxy.min() >= 0:
                same &= ours.tolist() == cv2_batched(xyxy, score, cls, 300).tolist()
            kept += ours.size
            t_cv += median_us(lambda b=xyxy, s=score, c=cls: cv2_batched(b, s, c, 300), args.reps)
            t_ours += median_us(lambda b=xyxy, s=score, c=cls: nms(b, s, c, IOU), args.reps)
            t_np += median_us(lambda b=xyxy, s=score, c=cls: nms_numpy(b, s, c, IOU), max(5, args.reps // 20))
        k = len(cands)
        boxes = sum(c[0].shape[0] for c in cands) / k
        print(
            f"{name:48s} {boxes:6.0f} {kept / k:5.0f} {t_cv / k:8.1f} {t_ours / k:8.1f} {t_np / k:9.1f} "
            f"{t_ours / t_cv:8.2f} {t_np / t_cv:9.2f}  {same}"
        )


if __name__ == "__main__":
    main()
