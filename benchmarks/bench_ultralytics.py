"""Per Ultralytics family: does the checkpoint load without ultralytics, how close is edgedet's ONNX to
ultralytics' own PyTorch forward, and FP32 ONNX Runtime latency of edgedet's export vs Ultralytics' own
`export(format="onnx")`, timed interleaved in one run.

    python benchmarks/bench_ultralytics.py [--imgsz 640] [--runs 10] [--families v8n 26n ...]

Needs the ultralytics package (to make the random-init checkpoints and the reference); the loading and export
by edgedet run in a child process where `import ultralytics` fails. Checkpoints are random-init with
BatchNorm statistics and class-conv scales set on the test image (see tests/convert/ultralytics_helpers.py).
Latency: ONNX Runtime CPU, 2 intra-op threads, batch 1; numbers are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO.parent / "shared" / "data" / "coco128" / "images" / "train2017" / "000000000009.jpg"
FAMILIES = ["v3u-tiny", "v5nu", "v5nu-p6", "v6n", "v8n", "v8n-p2", "v8n-p6", "v8n-ghost", "v9t", "v10n", "11n",
            "12n", "26n", "26n-p2", "26n-p6"]  # fmt: skip
END2END = {"v10n", "26n", "26n-p2", "26n-p6"}

CHILD = r"""
import json, sys, time
sys.modules["ultralytics"] = None  # any import of ultralytics fails in this process
import numpy as np
from edgedet.convert.adapters.ultralytics import load_ultralytics
from edgedet.convert.export_onnx import export_onnx
from edgedet.spec import ModelSpec
jobs = json.loads(open(sys.argv[1]).read())
out = {}
for job in jobs:
    t = time.perf_counter()
    try:
        m = load_ultralytics(job["ckpt"], loader="builtin")
    except Exception as exc:  # reported, not raised: the table says which family failed
        out[job["id"]] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    spec = ModelSpec(input_hw=(job["imgsz"], job["imgsz"]), output_format=m.output_format,
                     class_names=m.class_names, stride=m.stride)
    export_onnx(m.module, job["onnx"], spec)
    out[job["id"]] = {"format": m.output_format, "family": m.extra["family"], "seconds": time.perf_counter() - t}
out["_ultralytics_imported"] = [k for k, v in sys.modules.items() if k.startswith("ultralytics") and v is not None]
print(json.dumps(out))
"""


def _errors(ref: Any, got: Any, fmt: str, align: Any) -> tuple[float, float]:
    """Max abs error of box coordinates and of scores ([1, 4+nc, A] or, rows matched, [1, K, 6])."""
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    if fmt == "end2end":
        d = np.abs(ref - align(ref, got, 1e-3))
        return float(d[..., :4].max()), float(d[..., 4:].max())
    d = np.abs(ref - got)
    return float(d[:, :4].max()), float(d[:, 4:].max())


def _session(path: Path) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--families", nargs="*", default=FAMILIES)
    args = ap.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    import torch
    from tests.convert.ultralytics_helpers import make_checkpoint, real_image_batch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import load_checkpoint

    from edgedet.convert.verify import align_end2end_rows

    x = real_image_batch([IMAGE], args.imgsz)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ultralytics_"))
    jobs, refs, theirs = [], {}, {}
    for fam in args.families:
        ckpt = make_checkpoint(fam, tmp / fam, real_image_batch([IMAGE], 320))
        model = load_checkpoint(str(ckpt))[0].float().eval()
        model.end2end = fam in END2END
        with torch.no_grad():
            y = model(x)
            refs[fam] = (y[0] if isinstance(y, (tuple, list)) else y).numpy()
            y = model.double()(x.double())  # float64: the float32 noise floor of ultralytics' own forward
            refs[fam + "/fp64"] = (y[0] if isinstance(y, (tuple, list)) else y).numpy()
        try:  # Ultralytics' own exporter, same head choice (nms=False: the NMS-free head where there is one)
            theirs[fam] = Path(
                YOLO(str(ckpt)).export(
                    format="onnx", imgsz=args.imgsz, nms=False, simplify=True, verbose=False
                )
            )
        except Exception as exc:  # reported in the table
            theirs[fam] = None
            print(f"{fam}: ultralytics export failed: {exc}", file=sys.stderr)
        jobs.append(
            {"id": fam, "ckpt": str(ckpt), "onnx": str(tmp / f"{fam}.edgedet.onnx"), "imgsz": args.imgsz}
        )
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp / "jobs.json")], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return 1
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"ultralytics modules imported by the loading process: {child['_ultralytics_imported'] or 'none'}")
    print(f"imgsz {args.imgsz}, ONNX Runtime CPU 2 threads, {args.runs} interleaved runs after 3 warm-up")
    print(
        "parity: max abs error of edgedet's ONNX vs ultralytics' fp32 forward (boxes in px / scores), and in"
    )
    print(
        "brackets ultralytics' own fp32-vs-fp64 error (the float32 noise); latency p50 in ms, ratio edgedet/ultralytics"
    )
    print(f"{'family':<16}{'no ul.':<8}{'format':<9}{'boxes px (noise)':>22}{'scores (noise)':>22}"
          f"{'edgedet':>9}{'ultralyt.':>10}{'ratio':>7}")  # fmt: skip
    xn = x.numpy()
    for fam in args.families:
        res = child[fam]
        if "error" in res:
            print(f"{fam:<16}{'no':<15}{res['error'][:100]}")
            continue
        ours = _session(Path(next(j["onnx"] for j in jobs if j["id"] == fam)))
        got = ours.run(None, {ours.get_inputs()[0].name: xn})[0]
        ref, ref64 = refs[fam], refs[fam + "/fp64"]
        box, score = _errors(ref, got, res["format"], align_end2end_rows)
        nbox, nscore = _errors(ref64, ref, res["format"], align_end2end_rows)
        sessions = {"edgedet": ours}
        if theirs.get(fam) is not None:
            sessions["ultralytics"] = _session(theirs[fam])  # type: ignore[arg-type]
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for i in range(args.runs + 3):
            for k, s in sessions.items():
                t0 = time.perf_counter_ns()
                s.run(None, {s.get_inputs()[0].name: xn})
                if i >= 3:
                    times[k].append((time.perf_counter_ns() - t0) / 1e6)
        p50 = {k: float(np.median(v)) for k, v in times.items()}
        ul = p50.get("ultralytics")
        print(
            f"{res['family']:<16}{'yes':<8}{res['format']:<9}{f'{box:.1e} ({nbox:.1e})':>22}"
            f"{f'{score:.1e} ({nscore:.1e})':>22}{p50['edgedet']:>9.1f}"
            + (f"{ul:>10.1f}{p50['edgedet'] / ul:>7.2f}" if ul else f"{'(failed)':>10}")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
