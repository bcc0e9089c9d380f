"""Per-frame host overhead (preprocess, decode, NMS, tracker) as a fraction of `infer`, side by side in one run.

overhead = prep + post + track, where post is the whole Postprocessor call (decode + NMS + mapping to frame
pixels); the decode and nms columns time those two parts alone, for the breakdown.

ONNX Runtime CPU (`--threads`, default 1: what `edgedet run`'s core budget picks on 2 cores) on the reference
YOLOv5n at 320 and 640, 1280x720 frames (coco128 images
resized to 720p so the detections are real). Target: overhead <= 5% of infer at 320.

    python benchmarks/bench_overhead.py [--frames 60] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from edgedet.postprocess import PostprocessConfig, Postprocessor, nms
from edgedet.preprocess import Preprocessor
from edgedet.spec import spec_from_metadata

DATA = Path(
    os.environ.get("EDGEDET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)  # tools/fetch_data.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = ap.parse_args()
    import onnxruntime as ort

    try:
        from edgedet.tracking import SortTracker, TrackerConfig

        tracker_factory = lambda: SortTracker(TrackerConfig())  # noqa: E731
    except ImportError as exc:
        tracker_factory = None
        print(f"(tracker pending: {exc})")

    paths = sorted((DATA / "coco128/images/train2017").glob("*.jpg"))[: args.frames]
    frames = [
        np.asarray(
            cv2.resize(np.asarray(cv2.imread(str(p))), (1280, 720), interpolation=cv2.INTER_LINEAR), np.uint8
        )
        for p in paths
    ]
    print(
        f"onnxruntime {ort.__version__} CPU, {args.threads} thread(s); {len(frames)} frames 1280x720; median ms per frame"
    )
    print(
        f"{'model':10s} {'infer':>7s} {'prep':>6s} {'decode':>7s} {'nms':>6s} {'post':>6s} {'track':>6s} {'overhead':>8s} {'/infer':>7s} target"
    )
    for size, target in ((320, 0.05), (640, 0.05)):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(
            str(DATA / f"models/reference_onnx/yolov5n_{size}.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        inp = sess.get_inputs()[0]
        spec = spec_from_metadata(
            sess.get_modelmeta().custom_metadata_map,
            inp.name,
            inp.shape,
            [o.shape for o in sess.get_outputs()],
        )
        pre, post = Preprocessor(spec), Postprocessor(spec, PostprocessConfig())
        tracker = tracker_factory() if tracker_factory else None
        t: dict[str, list[float]] = {k: [] for k in ("infer", "prep", "decode", "nms", "post", "track")}
        for i, frame in enumerate([*frames[:5], *frames]):  # first 5: warm-up, discarded
            t0 = time.perf_counter_ns()
            tensor, lb = pre(frame)
            t1 = time.perf_counter_ns()
            outputs = sess.run(None, {inp.name: tensor})
            t2 = time.perf_counter_ns()
            xyxy, score, cls = post.candidates(outputs)
            t3 = time.perf_counter_ns()
            nms(xyxy, score, cls, post.config.iou_threshold, post.config.agnostic, post.config.max_det)
            t3b = time.perf_counter_ns()
            dets = post(outputs, lb)  # the whole postprocess (decode + NMS + to frame pixels), counted
            t4 = time.perf_counter_ns()
            if tracker is not None:
                tracker.update(dets, i / 30.0)
            t5 = time.perf_counter_ns()
            if i >= 5:
                t["prep"].append(t1 - t0)
                t["infer"].append(t2 - t1)
                t["decode"].append(t3 - t2)
                t["nms"].append(t3b - t3)
                t["post"].append(t4 - t3b)
                t["track"].append(t5 - t4)
        ms = {k: float(np.median(v)) / 1e6 for k, v in t.items()}
        overhead = ms["prep"] + ms["post"] + ms["track"]
        ratio = overhead / ms["infer"]
        track = f"{ms['track']:6.2f}" if tracker is not None else "  n/a "
        print(
            f"yolov5n{size:<3d} {ms['infer']:7.2f} {ms['prep']:6.2f} {ms['decode']:7.2f} {ms['nms']:6.2f} {ms['post']:6.2f} {track} "
            f"{overhead:8.2f} {ratio:7.1%} {'<=' if ratio <= target else '> '}{target:.0%}"
        )


if __name__ == "__main__":
    main()
