"""Validate a TensorRT engine on the device: build (or reuse) it, compare it with ONNX Runtime, time it.

    python deploy/jetson/trt_check.py --onnx model.onnx                    # fp32/fp16 ONNX: parity gate applies
    python deploy/jetson/trt_check.py --onnx model.int8.onnx --runs 500    # INT8: differences are reported
    python deploy/jetson/trt_check.py --onnx model.onnx --memory mapped    # zero-copy buffers (Jetson)

Prints one JSON object: engine path, parity (max/mean absolute difference of the raw outputs against ONNX
Runtime on the same inputs), latency percentiles of the synchronised `infer` call for both backends (measured
in one run, warm-up discarded) and the telemetry summary (power, temperatures, clocks via jtop when present).
Exit 1 when an fp32/fp16 engine differs from ONNX Runtime by more than --tolerance (relative to output range).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 90, 99)} | {
        "max": round(float(a.max()), 3)
    }


def _time(infer: Any, x: np.ndarray, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        infer(x)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        infer(
            x
        )  # TensorRTBackend.infer synchronises its stream before returning: this is the whole inference
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def main(argv: list[str] | None = None) -> int:
    from edgedet.backends.base import BackendConfig
    from edgedet.backends.onnxruntime import OnnxRuntimeBackend
    from edgedet.backends.tensorrt import TensorRTBackend
    from edgedet.telemetry import TelemetrySampler

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", required=True, type=Path, help="the ONNX the engine is (or will be) built from")
    p.add_argument("--engine", type=Path, help="a prebuilt plan (default: build or reuse the cached one)")
    p.add_argument("--memory", choices=("device", "mapped"), default="device")
    p.add_argument(
        "--ort-device", choices=("cpu", "cuda"), default="cpu", help="ONNX Runtime reference device"
    )
    p.add_argument("--inputs", type=int, default=8, help="random inputs compared for parity")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--tolerance", type=float, default=None, help="default 1e-3 (fp32), 2e-2 (fp16)")
    args = p.parse_args(argv)

    report: dict[str, Any] = {}
    with TelemetrySampler(interval_s=0.5) as sampler:
        t0 = time.perf_counter()
        trt_be = TensorRTBackend(
            args.engine or args.onnx, memory=args.memory, progress=lambda m: print(m, file=sys.stderr)
        )
        report["engine"] = str(trt_be.engine_path)
        report["engine_ready_s"] = round(time.perf_counter() - t0, 1)
        report["device"] = f"{trt_be.device.name} ({trt_be.device.sm_tag})"
        ort_be = OnnxRuntimeBackend(args.onnx, BackendConfig(device=args.ort_device))
        precision = trt_be.spec.precision
        tol = args.tolerance if args.tolerance is not None else {"fp32": 1e-3, "fp16": 2e-2}.get(precision)
        rng = np.random.default_rng(0)
        shape = trt_be.buffers[trt_be.spec.input_name].shape
        worst_rel, diffs = 0.0, []
        for _ in range(args.inputs):
            x = rng.random(shape, dtype=np.float32)
            ref = [o.astype(np.float32) for o in ort_be.infer(x)]
            got = [o.astype(np.float32) for o in trt_be.infer(x)]
            for r, g in zip(ref, got, strict=True):
                d = np.abs(r - g)
                diffs.append((float(d.max()), float(d.mean())))
                worst_rel = max(worst_rel, float(d.max()) / max(float(np.ptp(r)), 1e-6))
        report["parity"] = {
            "precision": precision,
            "max_abs": max(m for m, _ in diffs),
            "mean_abs": float(np.mean([m for _, m in diffs])),
            "max_rel_to_range": worst_rel,
            "tolerance": tol,
            "pass": None if tol is None else worst_rel <= tol,
        }
        x = rng.random(shape, dtype=np.float32)
        report["latency_ms"] = {
            f"tensorrt_{args.memory}": _percentiles(_time(trt_be.infer, x, args.runs, args.warmup)),
            f"onnxruntime_{args.ort_device}": _percentiles(
                _time(ort_be.infer, x, max(20, args.runs // 10), 3)
            ),
        }
        trt_be.close()
        ort_be.close()
    report["telemetry"] = sampler.summary()
    print(json.dumps(report, indent=2))
    return 1 if report["parity"]["pass"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
