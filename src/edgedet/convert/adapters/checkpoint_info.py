"""`edgedet info model.pt`: what a PyTorch checkpoint holds, without converting it.

The checkpoint is read with the same loader `convert` would use (restricted unpickler; nothing outside the
allow-list runs) and described: family, task, classes, input size, parameters, head/output format, loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedet.errors import ModelError

CLASSES_SHOWN = 5


def describe_checkpoint(path: str | Path, loader: str = "auto") -> dict[str, Any]:
    """A JSON-ready description of a .pt checkpoint (Ultralytics or YOLOv5 repo).

    Keys: path, kind ("checkpoint"), format (ultralytics | yolov5), loader, family, task, num_classes,
    classes (the first few names, "..." when there are more), input_size ("HxW" it was trained at, the size
    `convert` uses by default),
    parameters, stride, output_format, head (Ultralytics: one2one | one2many), ultralytics_version.
    """
    from edgedet.convert.adapters import detect_source_kind

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} not found; pass a .pt checkpoint, an .onnx file or an engine")
    kind = detect_source_kind(str(path))
    if kind == "ultralytics":
        from edgedet.convert.adapters.ultralytics import load_ultralytics

        loaded = load_ultralytics(path, loader=loader)
        x = loaded.extra
        imgsz = x.get("train_imgsz")
        info: dict[str, Any] = {
            "format": "ultralytics",
            "loader": "edgedet built-in (ultralytics not needed)"
            if x["loader"] == "builtin"
            else x["loader"],
            "family": x.get("family"),
            "task": x.get("task"),
            "input_size": _size(imgsz),
            "parameters": x.get("parameters"),
            "head": x.get("head"),
            "ultralytics_version": x.get("ultralytics_version"),
        }
    elif kind == "yolov5":
        from edgedet.convert.adapters.yolov5 import load_yolov5

        loaded = load_yolov5(path)
        info = {
            "format": "yolov5",
            "loader": "edgedet built-in (YOLOv5 repo not needed)",
            "family": "YOLOv5 (repo)",
            "task": "detect",
            "input_size": _size(None),
            "parameters": sum(int(p.numel()) for p in loaded.module.parameters()),
        }
    else:
        raise ModelError(f"{path}: not a detector checkpoint edgedet reads (it looks like {kind})")
    names = list(loaded.class_names)
    shown = names[:CLASSES_SHOWN] + (["..."] if len(names) > CLASSES_SHOWN else [])
    return {
        "path": str(path),
        "kind": "checkpoint",
        **info,
        "num_classes": len(names),
        "classes": shown,
        "stride": loaded.stride,
        "output_format": loaded.output_format,
    }


def _size(imgsz: int | tuple[int, int] | list[int] | None) -> str:
    if imgsz is None:
        return "not recorded (convert uses 640; pass --imgsz)"
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    return f"{h}x{w}"
