"""`edgedet info model.pt`: what a PyTorch checkpoint holds, without converting it.

The checkpoint is read with the same loader `convert` would use (restricted unpickler; nothing outside the
allow-list runs) and described: family, task, classes, input size, parameters, head/output format, loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedet.errors import ModelError


def describe_checkpoint(path: str | Path, loader: str = "auto") -> dict[str, Any]:
    """A JSON-ready description of a .pt checkpoint (Ultralytics or YOLOv5 repo).

    Keys: path, kind ("checkpoint"), format (ultralytics | yolov5), loader, family, task, num_classes,
    class_names, size_bytes, input_size ("HxW" it was trained at, the size
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
    return {
        "path": str(path),
        "kind": "checkpoint",
        **info,
        "num_classes": len(loaded.class_names),
        "class_names": list(loaded.class_names),
        "stride": loaded.stride,
        "output_format": loaded.output_format,
        "size_bytes": path.stat().st_size,
    }


def format_checkpoint_summary(info: dict[str, Any]) -> list[str]:
    """describe_checkpoint()'s dict as the short summary `edgedet info` prints (the rows of convert.info)."""
    from edgedet.convert.info import format_classes, summary_row

    head = f", {info['head']} head" if info.get("head") else ""
    version = (
        f" (written by ultralytics {info['ultralytics_version']})" if info.get("ultralytics_version") else ""
    )
    return [
        f"{Path(str(info['path'])).name}: {info['format']} checkpoint{version}, "
        f"{int(info['size_bytes']) / 1e6:.1f} MB",
        summary_row("family", f"{info['family']}, task {info['task']}"),
        summary_row("input", f"{info['input_size']}, stride {info['stride']}"),
        summary_row("output", f"format {info['output_format']}{head}"),
        summary_row("classes", format_classes(info["class_names"])),
        summary_row("parameters", f"{int(info['parameters']):,}"),
        summary_row("loader", str(info["loader"])),
        "--json prints everything; `edgedet convert` exports it",
    ]


def _size(imgsz: int | tuple[int, int] | list[int] | None) -> str:
    if imgsz is None:
        return "not recorded (convert uses 640; pass --imgsz)"
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    return f"{h}x{w}"
