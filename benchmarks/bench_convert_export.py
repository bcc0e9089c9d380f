"""Export yolov5n at 640 and 320, then time ONNX Runtime CPU (2 threads) on FP32 vs FP16 vs the YOLOv5 repo's
reference export, interleaved in one run; also a randomly initialised yolov8n-like graph (Conv/C2f/SPPF/DFL head).

    python benchmarks/bench_convert_export.py [--sizes 640 320] [--runs 30] [--no-yolov8]

Prints parity (max abs / max rel) and latency p50/p90 with ratios to our FP32 export. Numbers are only
comparable within one run (shared CPU).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgedet.convert import verify
from edgedet.convert.adapters.yolov5 import load_yolov5
from edgedet.convert.export_onnx import export_onnx, read_spec
from edgedet.convert.fp16 import convert_fp16
from edgedet.spec import ModelSpec

DATA = Path(os.environ.get("EDGEDET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data") / "models"  # tools/fetch_data.py


def yolov8n_like(nc: int = 80) -> Any:
    """A yolov8n-shaped detector (width 0.25, depth 0.33), random weights, BN folded away by eval export.
    Output [1, 4 + nc, N]: DFL box decode (16 bins) to xywh pixels, sigmoid class scores."""
    import torch
    from torch import nn

    def conv(c1: int, c2: int, k: int = 1, s: int = 1) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c1, c2, k, s, k // 2, bias=False), nn.BatchNorm2d(c2), nn.SiLU())

    class Bottleneck(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.cv1, self.cv2 = conv(c, c, 3), conv(c, c, 3)

        def forward(self, x: Any) -> Any:
            return x + self.cv2(self.cv1(x))

    class C2f(nn.Module):
        def __init__(self, c1: int, c2: int, n: int = 1) -> None:
            super().__init__()
            self.c = c2 // 2
            self.cv1 = conv(c1, 2 * self.c)
            self.cv2 = conv((2 + n) * self.c, c2)
            self.m = nn.ModuleList(Bottleneck(self.c) for _ in range(n))

        def forward(self, x: Any) -> Any:
            y = list(self.cv1(x).chunk(2, 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1: int, c2: int) -> None:
            super().__init__()
            self.cv1, self.cv2 = conv(c1, c1 // 2), conv(c1 * 2, c2)
            self.m = nn.MaxPool2d(5, 1, 2)

        def forward(self, x: Any) -> Any:
            x = self.cv1(x)
            y1 = self.m(x)
            y2 = self.m(y1)
            return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = nn.ModuleList(
                [conv(3, 16, 3, 2), conv(16, 32, 3, 2), C2f(32, 32), conv(32, 64, 3, 2), C2f(64, 64, 2)]
            )
            self.b2 = nn.Sequential(conv(64, 128, 3, 2), C2f(128, 128, 2))
            self.b3 = nn.Sequential(conv(128, 256, 3, 2), C2f(256, 256), SPPF(256, 256))
            self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
            self.n1, self.n2 = C2f(384, 128), C2f(192, 64)
            self.d1, self.n3 = conv(64, 64, 3, 2), C2f(192, 128)
            self.d2, self.n4 = conv(128, 128, 3, 2), C2f(384, 256)
            self.reg = nn.ModuleList(
                nn.Sequential(conv(c, 64, 3), conv(64, 64, 3), nn.Conv2d(64, 64, 1)) for c in (64, 128, 256)
            )
            self.cls = nn.ModuleList(
                nn.Sequential(conv(c, 80, 3), conv(80, 80, 3), nn.Conv2d(80, nc, 1)) for c in (64, 128, 256)
            )
            self.register_buffer("bins", torch.arange(16, dtype=torch.float32).view(1, 16, 1, 1))

        def forward(self, x: Any) -> Any:
            for m in self.b:
                x = m(x)
            p3 = x
            p4 = self.b2(p3)
            p5 = self.b3(p4)
            h4 = self.n1(torch.cat((self.up(p5), p4), 1))
            o3 = self.n2(torch.cat((self.up(h4), p3), 1))
            o4 = self.n3(torch.cat((self.d1(o3), h4), 1))
            o5 = self.n4(torch.cat((self.d2(o4), p5), 1))
            boxes, scores = [], []
            for i, (f, s) in enumerate(((o3, 8), (o4, 16), (o5, 32))):
                b, _, h, w = f.shape
                dist = self.reg[i](f).view(b, 4, 16, h, w).softmax(2)
                ltrb = (dist * self.bins.view(1, 1, 16, 1, 1)).sum(2)  # DFL: expected bin
                gy, gx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
                xy = torch.stack((gx, gy))[None]
                x1y1, x2y2 = xy - ltrb[:, :2], xy + ltrb[:, 2:]
                boxes.append((torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * s).flatten(2))
                scores.append(self.cls[i](f).sigmoid().flatten(2))
            return torch.cat((torch.cat(boxes, 2), torch.cat(scores, 2)), 1)

    torch.manual_seed(0)
    return Net().eval()


def time_interleaved(paths: dict[str, Path], x: np.ndarray, runs: int) -> dict[str, list[float]]:
    sessions = {k: verify.onnx_session(p, threads=2) for k, p in paths.items()}
    name = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    for k, s in sessions.items():  # warm-up, discarded
        for _ in range(3):
            s.run(None, {name[k]: x})
    ms: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(runs):
        for k, s in sessions.items():
            t = time.perf_counter_ns()
            s.run(None, {name[k]: x})
            ms[k].append((time.perf_counter_ns() - t) / 1e6)
    return ms


def report(title: str, ms: dict[str, list[float]], base: str) -> None:
    p50 = {k: float(np.percentile(v, 50)) for k, v in ms.items()}
    print(f"\n{title}: ONNX Runtime CPU, 2 threads, {len(next(iter(ms.values())))} interleaved runs")
    print(f"  {'model':<14}{'p50 ms':>9}{'p90 ms':>9}{'vs ' + base:>14}")
    for k, v in ms.items():
        print(f"  {k:<14}{p50[k]:9.2f}{np.percentile(v, 90):9.2f}{p50[base] / p50[k]:13.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[640, 320])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-yolov8", action="store_true")
    args = ap.parse_args()
    lm = load_yolov5(DATA / "yolov5n.pt")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            spec = ModelSpec(
                input_hw=(size, size), output_format="yolov5", class_names=lm.class_names, stride=32
            )
            t0 = time.perf_counter()
            fp32, spec, _ = export_onnx(
                lm.module, Path(tmp) / f"yolov5n_{size}.onnx", spec, source=DATA / "yolov5n.pt"
            )
            t_export = time.perf_counter() - t0
            fp16 = convert_fp16(fp32, Path(tmp) / f"yolov5n_{size}.fp16.onnx")
            ref = DATA / "reference_onnx" / f"yolov5n_{size}.onnx"
            print(
                f"\nyolov5n @ {size}: export {t_export:.1f} s, {fp32.stat().st_size / 1e6:.2f} MB fp32, "
                f"{fp16.stat().st_size / 1e6:.2f} MB fp16"
            )
            print("  " + verify.check_parity(lm.module, fp32, spec, n=4, raise_on_fail=False).summary())
            print("  " + verify.check_parity(fp32, fp16, read_spec(fp16), n=4, raise_on_fail=False).summary())
            paths = {"ours fp32": fp32, "ours fp16": fp16}
            if ref.is_file():
                print(
                    "  "
                    + verify.check_parity(
                        ref, fp32, spec, n=4, rtol=1e-4, atol=1e-4, raise_on_fail=False
                    ).summary()
                )
                paths["reference"] = ref
            x = verify.sample_inputs(spec, n=1)[0]
            report(f"yolov5n @ {size}", time_interleaved(paths, x, args.runs), "ours fp32")
        if not args.no_yolov8:
            net = yolov8n_like()
            spec = ModelSpec(
                input_hw=(640, 640), output_format="yolov8", class_names=tuple(map(str, range(80)))
            )
            fp32, spec, _ = export_onnx(net, Path(tmp) / "yolov8n_like.onnx", spec)
            fp16 = convert_fp16(fp32, Path(tmp) / "yolov8n_like.fp16.onnx")
            print(
                f"\nyolov8n-like (random weights) @ 640: output {verify.run_onnx(fp32, [verify.sample_inputs(spec, n=1)[0]])[1][0][0].shape}"
            )
            print("  " + verify.check_parity(net, fp32, spec, n=2, raise_on_fail=False).summary())
            print("  " + verify.check_parity(fp32, fp16, read_spec(fp16), n=2, raise_on_fail=False).summary())
            x = verify.sample_inputs(spec, n=1)[0]
            report("yolov8n-like @ 640", time_interleaved({"fp32": fp32, "fp16": fp16}, x, args.runs), "fp32")


if __name__ == "__main__":
    main()
