"""Check a Jetson environment for edgedet: one line per check, exit 1 when a required one fails.

    python deploy/jetson/check_env.py            # on the device (also queries the GPU)
    python deploy/jetson/check_env.py --no-gpu   # during `docker build` (no GPU is visible there)

Checks: cv2 is built with GStreamer and no PyPI OpenCV wheel shadows it; exactly one onnxruntime distribution
(PyPI's CPU build beside NVIDIA's GPU build shadows it); tensorrt and cuda-python import; with the GPU: the device
name and compute capability through edgedet's own CUDA module.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import sys


def _dists(names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        try:
            found.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-gpu", action="store_true", help="skip the checks that need the GPU")
    args = parser.parse_args(argv)
    failures = 0

    def report(ok: bool, what: str, required: bool = True) -> None:
        nonlocal failures
        print(f"{'ok  ' if ok else ('FAIL' if required else 'warn')} {what}")
        failures += int(required and not ok)

    wheels = _dists(("opencv-python", "opencv-python-headless", "opencv-contrib-python"))
    report(not wheels, f"no PyPI OpenCV wheel shadowing the system cv2 ({', '.join(wheels) or 'none'})")
    try:
        from edgedet.sources.csi import opencv_has_gstreamer

        cv2 = importlib.import_module("cv2")
        report(opencv_has_gstreamer(), f"cv2 {cv2.__version__} from {cv2.__file__} has GStreamer")
    except ImportError as exc:
        report(False, f"cv2 imports ({exc})")

    orts = _dists(("onnxruntime", "onnxruntime-gpu"))
    report(len(orts) == 1, f"exactly one onnxruntime distribution ({', '.join(orts) or 'none'})")
    try:
        ort = importlib.import_module("onnxruntime")
        providers = ort.get_available_providers()
        report(True, f"onnxruntime {ort.__version__}: {', '.join(providers)}")
        report(
            "CUDAExecutionProvider" in providers, "onnxruntime has the CUDA provider (NVIDIA's build)", False
        )
    except ImportError as exc:
        report(False, f"onnxruntime imports ({exc})")

    try:
        trt = importlib.import_module("tensorrt")
        report(True, f"tensorrt {trt.__version__} from {trt.__file__}")
    except ImportError:
        report(
            False, "tensorrt imports (apt install python3-libnvinfer; venv made with --system-site-packages)"
        )
    try:
        importlib.import_module("cuda.bindings.runtime")
        report(True, f"cuda-python {md.version('cuda-python')}")
    except (ImportError, md.PackageNotFoundError) as exc:
        report(False, f"cuda-python imports ({exc})")

    if not args.no_gpu:
        try:
            from edgedet.backends.cuda_mem import load_cuda_api

            info = load_cuda_api().device_info()
            report(True, f"GPU {info.name} ({info.sm_tag}), integrated={info.integrated}")
        except Exception as exc:  # report any failure as one line; this is a diagnostic script
            report(False, f"GPU visible through CUDA ({exc})")
    print(f"{failures} required check(s) failed" if failures else "environment ready")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
