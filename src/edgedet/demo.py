"""The bundled demo: a small YOLOv5 trained on `edgedet.scenes` drone flights, and the options of `run --source demo`.

`edgedet run --source demo` on a fresh machine (no camera, no GPU, no network) runs the packaged ONNX model
(`model_path()`) on a held-out flight rendered on the fly (`edgedet.sources.demo`), with tracking and
target-FPS frame skipping, and writes its outputs to a run folder (`default_run_overrides()`).

The weights (models/demo.pt) come from tools/train_demo.py; the ONNX files from `edgedet convert` (see
models/README.md for the exact commands and the measured accuracy).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from edgedet.errors import ConfigError, ModelError

#: precision -> file name inside the package folder edgedet/_demo
MODEL_FILES: dict[str, str] = {"fp32": "demo.onnx", "int8": "demo.int8.onnx"}
CLASS_NAMES: tuple[str, ...] = ("car", "truck", "person")
#: what `run --source demo` uses when the user gives no flag of their own
DEMO_TARGET_FPS = 30.0
DEMO_CMC = "sparse"  # the demo's camera flies (measured gain: models/README.md)
DEMO_OUTPUTS: dict[str, str] = {
    "save_video": "video.mp4",
    "save_mot": "tracks.txt",
    "save_json": "detections.jsonl",
}


def package_dir() -> Path:
    """The folder the demo ONNX files are installed in (edgedet/_demo)."""
    return Path(__file__).resolve().parent / "_demo"


def model_path(precision: str = "fp32") -> Path:
    """Path of the packaged demo ONNX model: precision "fp32" (demo.onnx) or "int8" (demo.int8.onnx, Q/DQ).

    ConfigError for an unknown precision; ModelError when the file is not installed.
    """
    key = precision.lower()
    if key not in MODEL_FILES:
        raise ConfigError(
            f"unknown demo model precision {precision!r}: choose one of {', '.join(MODEL_FILES)}"
        )
    path = package_dir() / MODEL_FILES[key]
    if not path.is_file():
        raise ModelError(
            f"the bundled demo model {path} is missing (an install without package data, or a checkout before "
            "conversion): reinstall edgedet, or rebuild it with `edgedet convert models/demo.pt --imgsz 384,640 "
            "--int8 --calib DIR --output src/edgedet/_demo` (see models/README.md), or pass --model M.onnx"
        )
    return path


def default_run_dir(now: _dt.datetime | None = None, root: str | Path = "runs") -> Path:
    """runs/demo-YYYYmmdd-HHMMSS (local time) - a new folder per run, so a second demo keeps the first's files."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"demo-{stamp}"


def default_run_overrides(
    given: dict[str, Any] | None = None, now: _dt.datetime | None = None, root: str | Path = "runs"
) -> dict[str, Any]:
    """RunConfig fields that `run --source demo` sets when the user left them unset.

    given: the fields the user did set (flags or YAML, None = unset); none of those is overridden, and no
    skip policy is added when the user chose one (--detect-every), since RunConfig refuses both at once.
    Returns e.g. {"target_fps": 30.0, "realtime": True, "run_dir": "runs/demo-20250101-120000",
    "save_video": "runs/demo-.../video.mp4", "save_mot": ".../tracks.txt", "save_json": ".../detections.jsonl"}.
    The folder is not created here (the sinks create their parent folders).

    realtime: the demo is a file-like source; paced to its 30 FPS it behaves like a camera, so the target-FPS
    scheduler has a real clock to hold. cmc: camera-motion compensation, as for a live camera ("auto" would
    leave it off for this file-like source).
    """
    given = {k: v for k, v in (given or {}).items() if v is not None}
    out: dict[str, Any] = {}
    tracking = given.get("track", True)
    skip_chosen = "target_fps" in given or given.get("detect_every", 1) != 1
    if not skip_chosen and tracking:
        out["target_fps"] = DEMO_TARGET_FPS
    if "realtime" not in given:
        out["realtime"] = True
    if "cmc" not in given and tracking:
        out["cmc"] = "auto" if given.get("telemetry") else DEMO_CMC  # auto: pose-based with telemetry
    run_dir = Path(given["run_dir"]) if "run_dir" in given else default_run_dir(now, root)
    if "run_dir" not in given:
        out["run_dir"] = str(run_dir)
    user_chose_outputs = any(k in given for k in (*DEMO_OUTPUTS, "save_coco"))
    if not user_chose_outputs:
        for key, name in DEMO_OUTPUTS.items():
            out[key] = str(run_dir / name)
    return out


def is_demo_source(source: str | None) -> bool:
    """True for `demo` and `demo:...` (the forms `edgedet.sources.demo` parses)."""
    return source is not None and source.strip().split(":", 1)[0] == "demo"


__all__ = [
    "CLASS_NAMES",
    "DEMO_CMC",
    "DEMO_OUTPUTS",
    "DEMO_TARGET_FPS",
    "MODEL_FILES",
    "default_run_dir",
    "default_run_overrides",
    "is_demo_source",
    "model_path",
    "package_dir",
]
