"""YOLOv5n FP32 vs INT8 as `edgedet convert` makes it, at 320 and 640 on coco128: accuracy, reproducibility, speed.

For each size the real checkpoint (../shared/data/models/yolov5n.pt) is converted TWICE from scratch, each time
exactly as `edgedet convert yolov5n.pt --imgsz S --int8 --calib coco128/images/train2017 --labels
coco128/labels/train2017` does (96 calibration images, every 4th held out; the gate scores all 128). Then FP32 and both INT8 files
are scored on all 128 images (pycocotools, conf 0.001, IoU 0.6, multi-label) and the two INT8 files' sha256
compared. Latency: ONNX Runtime CPU, 1 and 2 threads (`--threads`), model `run` only, FP32 and INT8 timed round-robin on the same
input in one loop so machine noise hits both alike; the ratio is what to read.

    python benchmarks/bench_precision.py [--sizes 320 640] [--rounds 60] [--threads 1 2] [--v8]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def interleaved_latency(
    models: dict[str, Path], shape: tuple[int, ...], rounds: int, threads: int = 2
) -> dict[str, float]:
    """Median `run` ms of each model, timed round-robin (warm-up rounds discarded)."""
    import onnxruntime as ort

    sessions = {}
    for name, path in models.items():
        o = ort.SessionOptions()
        o.intra_op_num_threads, o.inter_op_num_threads, o.log_severity_level = threads, 1, 3
        # the sessions take turns: an idle one's spinning pool would hold the cores the running one needs
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[name] = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for r in range(rounds + 5):
        for name, s in sessions.items():
            feed = {s.get_inputs()[0].name: x}
            t0 = time.perf_counter_ns()
            s.run(None, feed)
            if r >= 5:
                times[name].append((time.perf_counter_ns() - t0) / 1e6)
    return {k: float(np.median(v)) for k, v in times.items()}


def yolov8n_like(path: Path, imgsz: int = 640) -> Path:
    """A randomly initialised YOLOv8n-shaped detector (C2f backbone, SPPF, PAN neck, DFL head), exported to ONNX."""
    import torch
    from torch import nn

    def conv(c1: int, c2: int, k: int = 1, s: int = 1) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c1, c2, k, s, k // 2, bias=False), nn.BatchNorm2d(c2), nn.SiLU())

    class Bottleneck(nn.Module):
        def __init__(self, c: int, shortcut: bool) -> None:
            super().__init__()
            self.cv1, self.cv2, self.add = conv(c, c, 3), conv(c, c, 3), shortcut

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C2f(nn.Module):
        def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True) -> None:
            super().__init__()
            self.c = c2 // 2
            self.cv1, self.cv2 = conv(c1, 2 * self.c), conv((2 + n) * self.c, c2)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = list(self.cv1(x).chunk(2, 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1: int, c2: int) -> None:
            super().__init__()
            self.cv1, self.cv2, self.m = conv(c1, c1 // 2), conv(c1 * 2, c2), nn.MaxPool2d(5, 1, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = [self.cv1(x)]
            y.extend(self.m(y[-1]) for _ in range(3))
            return self.cv2(torch.cat(y, 1))

    class Net(nn.Module):
        def __init__(self, nc: int = 80, reg: int = 16) -> None:
            super().__init__()
            self.nc, self.reg = nc, reg
            self.b1 = nn.Sequential(
                conv(3, 16, 3, 2), conv(16, 32, 3, 2), C2f(32, 32), conv(32, 64, 3, 2), C2f(64, 64, 2)
            )
            self.b2 = nn.Sequential(conv(64, 128, 3, 2), C2f(128, 128, 2))
            self.b3 = nn.Sequential(conv(128, 256, 3, 2), C2f(256, 256), SPPF(256, 256))
            self.up = nn.Upsample(scale_factor=2)
            self.n1, self.n2 = C2f(384, 128, 1, False), C2f(192, 64, 1, False)
            self.d1, self.n3 = conv(64, 64, 3, 2), C2f(192, 128, 1, False)
            self.d2, self.n4 = conv(128, 128, 3, 2), C2f(384, 256, 1, False)
            self.box = nn.ModuleList(
                nn.Sequential(conv(c, 64, 3), conv(64, 64, 3), nn.Conv2d(64, 4 * reg, 1))
                for c in (64, 128, 256)
            )
            self.cls = nn.ModuleList(
                nn.Sequential(conv(c, 80, 3), conv(80, 80, 3), nn.Conv2d(80, nc, 1)) for c in (64, 128, 256)
            )
            self.dfl = nn.Conv2d(reg, 1, 1, bias=False).requires_grad_(False)
            self.dfl.weight.data[:] = torch.arange(reg, dtype=torch.float).view(1, reg, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            p3 = self.b1(x)
            p4 = self.b2(p3)
            p5 = self.b3(p4)
            h4 = self.n1(torch.cat([self.up(p5), p4], 1))
            o3 = self.n2(torch.cat([self.up(h4), p3], 1))
            o4 = self.n3(torch.cat([self.d1(o3), h4], 1))
            o5 = self.n4(torch.cat([self.d2(o4), p5], 1))
            feats = [torch.cat([self.box[i](f), self.cls[i](f)], 1) for i, f in enumerate((o3, o4, o5))]
            y = torch.cat([f.flatten(2) for f in feats], 2)
            box, cls = y.split((4 * self.reg, self.nc), 1)
            b, _, a = box.shape
            dist = self.dfl(box.view(b, 4, self.reg, a).transpose(2, 1).softmax(1)).view(b, 4, a)
            lt, rb = dist.chunk(2, 1)
            return torch.cat([torch.cat([(rb - lt) / 2, lt + rb], 1) * 8.0, cls.sigmoid()], 1)

    torch.manual_seed(0)
    net = Net().eval()
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, imgsz, imgsz),),
        str(path),
        opset_version=17,
        input_names=["images"],
        output_names=["output0"],
        dynamo=False,
    )
    return path


def _sha(path: Path) -> str:
    """sha256 of the nodes and weights, not of the metadata (which records paths, hashes and times)."""
    import onnx

    g = onnx.load(str(path)).graph
    h = hashlib.sha256()
    for part in (*g.node, *g.initializer):
        h.update(part.SerializeToString())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from edgedet.convert.api import ConvertConfig, convert
    from edgedet.convert.gate import GateRefused, verdict
    from edgedet.datasets import load_dataset
    from edgedet.eval.det import evaluate_detections

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime intra-op threads to time"
    )
    ap.add_argument("--v8", action="store_true", help="also time a random-init YOLOv8n-shaped graph")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    ckpt = DATA / "models" / "yolov5n.pt"
    images = DATA / "coco128" / "images" / "train2017"
    labels = DATA / "coco128" / "labels" / "train2017"
    ds = load_dataset(DATA / "coco128")
    tmp = Path(tempfile.mkdtemp(prefix="bench-precision-"))
    rows = []
    for size in args.sizes:
        runs = []
        for r in (1, 2):
            out = tmp / f"{size}_run{r}"
            t0 = time.perf_counter()
            cfg = ConvertConfig(
                source=str(ckpt),
                imgsz=size,
                int8=True,
                calib=str(images),
                labels=str(labels),
                output=str(out),
            )
            try:
                res = convert(cfg)
                fp32, int8 = res.artifact("fp32"), res.artifact("int8")
                assert fp32 is not None and int8 is not None
                fp32_path, int8_path, gate = fp32.path, int8.path, int8.gate or {}
            except GateRefused as exc:  # still score the refused file: the numbers are the point here
                assert exc.rejected_path is not None
                fp32_path, int8_path, gate = out / "yolov5n.onnx", exc.rejected_path, verdict(exc.result)
            print(
                f"[{size}] run {r}: converted in {time.perf_counter() - t0:.0f} s; gate drop "
                f"{gate.get('drop_points')} on {gate.get('images')} images ({gate.get('verdict')}; tries "
                f"{gate.get('tries')})",
                flush=True,
            )
            runs.append((fp32_path, int8_path))
        f32 = evaluate_detections(runs[0][0], ds)
        i8 = [evaluate_detections(p, ds) for _, p in runs]
        lat = {
            t: interleaved_latency(
                {"fp32": runs[0][0], "int8": runs[0][1]}, (1, 3, size, size), args.rounds, t
            )
            for t in args.threads
        }
        same = _sha(runs[0][1]) == _sha(runs[1][1])
        rows.append((size, f32, i8, lat, same, _sha(runs[0][1])))
        print(
            f"[{size}] FP32 {f32.map50_95:.4f}/{f32.map50:.4f}  INT8 run1 {i8[0].map50_95:.4f}/{i8[0].map50:.4f}  "
            f"run2 {i8[1].map50_95:.4f}/{i8[1].map50:.4f}  identical files: {same}",
            flush=True,
        )
    print(
        "\n== YOLOv5n on coco128 (all 128 images): mAP50-95 / mAP50, model ms p50 (ORT CPU, by intra-op threads)"
    )
    print(
        "size | FP32          | INT8 run 1    | INT8 run 2    | drop (pts) | threads: FP32 / INT8 ms (speed-up) | same file"
    )
    for size, f32, i8, lat, same, sha in rows:
        timing = "  ".join(
            f"{t}: {v['fp32']:.1f} / {v['int8']:.1f} ({v['fp32'] / v['int8']:.2f}x)" for t, v in lat.items()
        )
        print(
            f"{size:4d} | {f32.map50_95:.3f} / {f32.map50:.3f} | {i8[0].map50_95:.3f} / {i8[0].map50:.3f} | "
            f"{i8[1].map50_95:.3f} / {i8[1].map50:.3f} | {100 * (f32.map50_95 - i8[0].map50_95):+.2f}      | "
            f"{timing} | {same} ({sha})"
        )
    if args.v8:
        from edgedet.convert.quantize import quantize_int8_detailed
        from edgedet.eval.det import load_onnx_spec

        v8 = yolov8n_like(tmp / "yolov8n_like.onnx")
        q = quantize_int8_detailed(
            v8,
            tmp / "yolov8n_like_int8.onnx",
            sorted(images.glob("*.jpg"))[:32],
            load_onnx_spec(v8),
            "minmax",
        )
        for t in args.threads:
            v = interleaved_latency({"fp32": v8, "int8": q.path}, (1, 3, 640, 640), args.rounds, t)
            print(
                f"\n== YOLOv8n-like 640 (random weights), {t} thread(s): fp32 {v['fp32']:.1f} ms, "
                f"int8 {v['int8']:.1f} ms, {v['fp32'] / v['int8']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
