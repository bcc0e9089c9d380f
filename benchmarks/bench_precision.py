"""FP32 vs FP16 vs INT8 (Q/DQ) of YOLOv5n at 640 and 320 on coco128, and INT8 vs FP32 speed of a YOLOv8n-like graph.

mAP50-95 / mAP50 (pycocotools, conf 0.001, IoU 0.6, multi-label) on all 128 images and on images 32-127 (INT8 is
calibrated on images 0-31 sorted by name). Latency: ONNX Runtime CPU, 2 threads, model `run` only, every model
timed round-robin on the same input in one loop so machine noise hits all alike; ratios are what to read.

    python benchmarks/bench_precision.py [--sizes 640 320] [--methods minmax percentile entropy] [--rounds 40]
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from edgedet.convert.quantize import quantize_int8_detailed
    from edgedet.datasets import load_dataset
    from edgedet.eval.det import evaluate_detections, load_onnx_spec

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[640, 320])
    ap.add_argument("--methods", nargs="+", default=["minmax", "percentile", "entropy"])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument(
        "--no-naive", action="store_true", help="skip the plain recipe (head convs quantized too)"
    )
    ap.add_argument("--no-v8", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    ds = load_dataset(DATA / "coco128")
    calib, held = ds.paths[:32], ds[32:]
    tmp = Path(tempfile.mkdtemp(prefix="bench-precision-"))
    for size in args.sizes:
        src = DATA / "models" / "reference_onnx" / f"yolov5n_{size}.onnx"
        spec = load_onnx_spec(src)
        models: dict[str, Path] = {"fp32": src}
        try:
            from edgedet.convert.fp16 import convert_fp16

            models["fp16"] = convert_fp16(src, tmp / f"fp16_{size}.onnx")
        except Exception as exc:  # FP16 is the other helper's; report and go on
            print(f"fp16 skipped: {exc}")
        recipes = [(m, True) for m in args.methods] + ([] if args.no_naive else [("minmax", False)])
        for method, head_float in recipes:
            name = f"int8-{method}" + ("" if head_float else "-heads-q")
            t0 = time.perf_counter()
            quantize_int8_detailed(
                src,
                tmp / f"{name}_{size}.onnx",
                calib,
                spec,
                method,
                head_float=head_float,
            )
            print(f"[{size}] {name}: quantized in {time.perf_counter() - t0:.0f} s", flush=True)
            models[name] = tmp / f"{name}_{size}.onnx"
        lat = interleaved_latency(models, (1, 3, size, size), args.rounds)
        print(
            f"\n== YOLOv5n {size}: mAP50-95 / mAP50 (all 128 | held-out 32-127), model ms p50 (2 threads), speed vs fp32"
        )
        base: tuple[float, float] | None = None
        for name, path in models.items():
            a = evaluate_detections(path, ds)
            h = evaluate_detections(path, held)
            if base is None:
                base = (a.map50_95, h.map50_95)
            print(
                f"{name:>22}: {a.map50_95:.3f} / {a.map50:.3f} | {h.map50_95:.3f} / {h.map50:.3f}  "
                f"d50-95 {100 * (a.map50_95 - base[0]):+.2f} | {100 * (h.map50_95 - base[1]):+.2f} pts  "
                f"{lat[name]:6.1f} ms  {lat['fp32'] / lat[name]:.2f}x",
                flush=True,
            )
    if not args.no_v8:
        v8 = yolov8n_like(tmp / "yolov8n_like.onnx")
        spec = load_onnx_spec(v8)
        q = quantize_int8_detailed(v8, tmp / "yolov8n_like_int8.onnx", calib, spec, "minmax")
        lat = interleaved_latency({"fp32": v8, "int8": q.path}, (1, 3, 640, 640), args.rounds)
        print(
            f"\n== YOLOv8n-like 640 (random weights): fp32 {lat['fp32']:.1f} ms, int8 {lat['int8']:.1f} ms, "
            f"{lat['fp32'] / lat['int8']:.2f}x; {len(q.decode_nodes)} decode/head nodes kept in float"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
