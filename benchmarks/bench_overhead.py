"""Per-frame host overhead of the sequential loop (`edgedet run --overlap off`) as a fraction of `infer`.

    python benchmarks/bench_overhead.py [--frames 512] [--rounds 3] [--threads 1] [--paths numba numpy] [--video PATH]

The real pipeline (`build_pipeline`: `--overlap off --threads N --cmc off`, SORT, no outputs) on a 1280x720
video made from the 128 coco128 images (written once to a temporary folder with OpenCV's mp4v encoder and
looped to `--frames`), so each frame comes out of the decoder just before it is preprocessed, as from a camera
or a file, and every stage after `infer` starts from the caches the inference call left. The YOLOv5n
references at 320 and 640, ONNX Runtime on the CPU at `--threads` (1: what `run`'s core budget picks on two
cores). From the run's own stage timer, per-frame medians, ms:

- overhead = preprocess + postprocess + track + sinks, summed per frame: everything the loop does for a frame
  besides capture (decoding the video) and infer. Target: <= 5% of infer at 320.
- loop = frame - infer, per frame: the whole frame after capture, the loop's own bookkeeping included.

`--video PATH` runs on that video instead (e.g. ../shared/data/video/people_indoor_640x368.mp4: a smaller
frame, so less to resize). `--paths`: numba (edgedet[fast]: the compiled preprocess, postprocess and tracker) and numpy (OpenCV + numpy,
what runs without numba), interleaved round by round; medians over `--rounds`, with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np

import edgedet.postprocess as postprocess
import edgedet.preprocess as preprocess
from edgedet.config import RunConfig, build_config
from edgedet.pipeline import build_pipeline
from edgedet.tracking import sort

DATA = Path(
    os.environ.get("EDGEDET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)  # tools/fetch_data.py
STAGES = ("preprocess", "postprocess", "track", "sinks")


def make_video(path: Path) -> int:
    """coco128's images resized to 1280x720, one frame each, 30 FPS mp4v. Returns the frame count."""
    images = sorted((DATA / "coco128/images/train2017").glob("*.jpg"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (1280, 720))
    for p in images:
        writer.write(cv2.resize(cv2.imread(str(p)), (1280, 720), interpolation=cv2.INTER_LINEAR))
    writer.release()
    return len(images)


def set_path(path: str, kernels: object) -> None:
    """Every stage's default backend: the compiled ones, or numpy/OpenCV (tracking.inside_frame follows the
    tracker's loaded kernels)."""
    fast = path == "numba"
    preprocess.DEFAULT_BACKEND = "numba" if fast else "opencv"
    postprocess.DEFAULT_BACKEND = "numba" if fast else "numpy"
    sort.DEFAULT_BACKEND = "numba" if fast else "numpy"
    sort._kernels = kernels if fast else None


def one_run(video: Path, model: Path, threads: int, frames: int) -> dict[str, float]:
    cfg = build_config(
        RunConfig,
        None,
        source=str(video),
        model=str(model),
        threads=threads,
        overlap="off",
        cmc="off",
        loop=True,
        max_frames=frames,
    )
    pipeline = build_pipeline(cfg)
    summary = pipeline.run()
    assert summary.frames == frames and summary.detector_runs == frames, summary
    ms = {k: v.p50_ms for k, v in summary.latency.items()}
    # per frame, then the median: the frame's own sum (a sum of medians can hide a frame's costs)
    per_frame = {s: pipeline.timer.samples_ms(s) for s in (*STAGES, "frame", "infer")}
    ms["overhead"] = float(np.median(sum(per_frame[s] for s in STAGES)))
    ms["loop"] = float(np.median(per_frame["frame"] - per_frame["infer"]))
    ms["load"] = os.getloadavg()[0]
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    ap.add_argument("--paths", nargs="+", default=["numba", "numpy"], choices=["numba", "numpy"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[320, 640])
    ap.add_argument("--video", type=Path, help="run on this video instead of the 1280x720 coco128 one")
    args = ap.parse_args()
    kernels = None
    if "numba" in args.paths:
        kernels = sort._load_kernels()  # numba must be installed: pip install "edgedet[fast]"
    results: dict[tuple[int, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or Path(tmp) / "coco128_1280x720.mp4"
        if args.video is None:
            n, desc = make_video(video), "1280x720 video (coco128)"
        else:
            cap = cv2.VideoCapture(str(video))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            desc = f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))} {video.name}"
            cap.release()
        print(
            f"{n}-frame {desc} looped to {args.frames} frames; edgedet run --overlap off --threads "
            f"{args.threads} --cmc off (SORT, no outputs); p50 ms, median of {args.rounds} rounds"
        )
        for _ in range(args.rounds):
            for size in args.sizes:
                model = DATA / f"models/reference_onnx/yolov5n_{size}.onnx"
                for path in args.paths:
                    set_path(path, kernels)
                    results.setdefault((size, path), []).append(
                        one_run(video, model, args.threads, args.frames)
                    )
    set_path("numba" if kernels is not None else "numpy", kernels)
    head = f"{'model':10s} {'path':6s} {'infer':>7s} " + " ".join(f"{s[:6]:>6s}" for s in STAGES)
    print(head + f" {'overhead':>8s} {'/infer':>7s} {'loop':>6s} {'/infer':>7s} {'load':>9s} target")
    for (size, path), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        over, loop = med["overhead"], med["loop"]
        loads = [r["load"] for r in runs]
        ratio = over / med["infer"]
        print(
            f"yolov5n{size:<3d} {path:6s} {med['infer']:7.2f} "
            + " ".join(f"{med[s]:6.2f}" for s in STAGES)
            + f" {over:8.2f} {ratio:7.1%} {loop:6.2f} {loop / med['infer']:7.1%} {min(loads):4.1f}-{max(loads):<4.1f}"
            + f" {'<=' if ratio <= 0.05 else '> '}5%"
        )


if __name__ == "__main__":
    main()
