"""Loaders that turn what the user has (a checkpoint, a module factory, an ONNX file) into a LoadedModel.

`detect_source_kind` decides which loader applies by reading the pickle's global names without unpickling
anything (pickletools), so a YOLOv5 file never reaches `ultralytics` (which would rename it and try to download
another model) and a file of unknown origin is never executed.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

from edgedet.convert.adapters.base import LoadedModel
from edgedet.errors import ModelError

SOURCE_KINDS = ("yolov5", "ultralytics", "module", "onnx")

__all__ = ["SOURCE_KINDS", "LoadedModel", "detect_source_kind", "pickle_globals"]


def pickle_globals(path: str | Path) -> set[str]:
    """ "module.name" of every global a torch zip checkpoint's data.pkl refers to (nothing is executed)."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            if pkl is None:
                raise ModelError(f"{path}: no data.pkl inside; not a PyTorch checkpoint")
            data = z.read(pkl)
    except zipfile.BadZipFile as exc:
        raise ModelError(
            f"{path}: not a zip-format PyTorch checkpoint (torch >= 1.6); re-save it with torch.save"
        ) from exc
    found: set[str] = set()
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL" and isinstance(arg, str):
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(f"{strings[-2]}.{strings[-1]}")
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8") and isinstance(arg, str):
            strings.append(arg)
    return found


def detect_source_kind(source: str) -> str:
    """ "onnx", "module" ("pkg.mod:factory"), "yolov5" or "ultralytics" for a `convert` source."""
    from edgedet.convert.adapters.module_factory import is_factory_ref

    p = Path(source)
    if p.suffix.lower() == ".onnx":
        return "onnx"
    if not p.exists() and is_factory_ref(source):
        return "module"
    if not p.is_file():
        raise ModelError(
            f"model source {source} not found; pass a .pt checkpoint, an .onnx file or module.path:factory"
        )
    names = pickle_globals(p)
    if any(n.startswith("ultralytics.") for n in names):
        return "ultralytics"
    if any(n.startswith("models.yolo.") or n.startswith("models.common.") for n in names):
        return "yolov5"
    if names <= {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2"} | {
        n for n in names if n.startswith("torch.") and n.endswith("Storage")
    }:
        return "yolov5"  # a plain dict of tensors: the yolov5-statedict-v1 layout is checked when loading
    raise ModelError(
        f"{source}: cannot tell what kind of checkpoint this is (it names {sorted(names)[:4]}...); "
        "pass module.path:factory with --weights state_dict.pth"
    )
