"""Peak RSS of INT8 calibration + quantization of YOLOv5n at 640 with 32, 128 and 512 images.

Each count runs in its own subprocess (peak RSS is per process); images are coco128's, repeated in sorted order
to reach counts above 128. Peak RSS is the child's `ru_maxrss` and includes Python, ONNX Runtime and the model
(the baseline line: the same process after loading everything, before calibrating).

    python benchmarks/bench_calib_memory.py [--counts 32 128 512] [--imgsz 640]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from edgedet.convert.quantize import quantize_int8
from edgedet.datasets import list_images
from edgedet.spec import read_onnx_spec
import onnxruntime, onnx, cv2  # loaded before the baseline is read
src, count = Path(sys.argv[2]), int(sys.argv[3])
images = list_images(Path(sys.argv[4]))
images = [images[i % len(images)] for i in range(count)]
spec = read_onnx_spec(src)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    quantize_int8(src, Path(tmp) / "q.onnx", images, spec, "percentile", min_images=1)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"images": count, "baseline_mb": round(base), "peak_mb": round(peak), "seconds": round(time.perf_counter() - t0)}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", type=int, nargs="+", default=[32, 128, 512])
    ap.add_argument("--imgsz", type=int, default=640)
    args = ap.parse_args(argv)
    src = DATA / "models" / "reference_onnx" / f"yolov5n_{args.imgsz}.onnx"
    images = DATA / "coco128" / "images" / "train2017"
    srcdir = str(Path(__file__).resolve().parents[1] / "src")
    print(f"YOLOv5n {args.imgsz}: INT8 calibration (percentile) + quantization, one subprocess per count")
    print("images | peak RSS MB | baseline MB (loaded, before calibrating) | seconds")
    for n in args.counts:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, srcdir, str(src), str(n), str(images)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(f"{n}: failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['images']:6d} | {r['peak_mb']:11d} | {r['baseline_mb']:11d} | {r['seconds']:7d}", flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
