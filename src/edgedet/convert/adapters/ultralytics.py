"""Ultralytics detection checkpoints (YOLOv3u ... YOLO26) -> LoadedModel.

Two loaders:
- "builtin" (default): edgedet's restricted unpickler and its own implementation of the layers
  (`ultralytics_pickle`, `ultralytics_modules`); the `ultralytics` package is not needed and never imported.
- "ultralytics": the installed `ultralytics` package's own loader (its public `load_checkpoint`), for models
  whose layers edgedet does not implement. Its torch.load runs whatever the pickle names, so the pickle's
  globals are checked against an allow-list first (pickletools, nothing executed).
"auto" is the built-in loader, falling back to the package (when installed) for a layer the built-in one does
not know.

End-to-end heads (YOLOv10, YOLO26 with their one-to-one branch): exported NMS-free ([B, K, 6], format
"end2end") by default; `one2many=True` exports the one-to-many branch ([B, 4+nc, A], format "yolov8", NMS
outside) instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgedet._optional import available, require
from edgedet.convert.adapters.base import LoadedModel, checkpoint_names
from edgedet.errors import DataError, MissingDependencyError, ModelError

LOADERS = ("auto", "builtin", "ultralytics")

# Ultralytics loads checkpoints with torch.load(weights_only=False), which runs whatever the pickle names. So the
# pickle's globals are read first (pickletools, nothing executed) and the file is refused unless every one is a
# layer/model class, a tensor-rebuild helper or a plain container. Functions inside ultralytics are not allowed:
# some download files or pip-install packages. getattr is not allowed either (it reaches any attribute of the
# allowed classes, e.g. a function's __globals__); fused checkpoints need it, and the built-in loader reads them.
_ALLOWED_PREFIXES = ("ultralytics.nn.modules.", "torch.nn.modules.", "torch._utils._rebuild_")
_ALLOWED_EXACT = {
    "collections.OrderedDict",
    "builtins.set",
    "__builtin__.set",
    "builtins.frozenset",
    "torch.Size",
    "torch.float16",
    "torch.float32",
    "torch.nn.parameter.Parameter",
    "ultralytics.utils.IterableSimpleNamespace",
    "_codecs.encode",  # how pickle protocol 2 stores bytes; it only builds a bytes object
}


def _allowed_global(name: str) -> bool:
    if name in _ALLOWED_EXACT or name.startswith(_ALLOWED_PREFIXES):
        return True
    if name.startswith("torch.") and name.endswith("Storage"):
        return True
    # the model classes themselves (DetectionModel, SegmentationModel, ...), not the loader functions beside them
    return name.startswith("ultralytics.nn.tasks.") and name.endswith("Model")


def check_ultralytics_globals(path: str | Path) -> None:
    """Refuse a checkpoint whose pickle names anything outside the allow-list (DataError, nothing executed)."""
    from edgedet.convert.adapters import pickle_globals

    refused = sorted(n for n in pickle_globals(path) if not _allowed_global(n))
    if refused:
        hint = (
            "; a fused checkpoint stores getattr: read it with the built-in loader (--loader builtin)"
            if any(n.endswith(".getattr") for n in refused)
            else ""
        )
        raise DataError(
            f"refusing to unpickle {refused[0]}: a checkpoint is code; an Ultralytics checkpoint may only name "
            f"model/layer classes and tensors ({len(refused)} other global(s) found in {Path(path).name}){hint}"
        )


def load_ultralytics(path: str | Path, loader: str = "auto", one2many: bool = False) -> LoadedModel:
    """An Ultralytics detection checkpoint -> LoadedModel (float32, fused, eval).

    Output: [B, 4+nc, A] ("yolov8": cx, cy, w, h in input pixels, sigmoid scores) or, for a head with a
    one-to-one branch and `one2many` False, [B, K, 6] ("end2end": x1, y1, x2, y2, score, class).
    `extra` holds family, task, train_imgsz, loader, ultralytics_version, head, parameters.
    """
    if loader not in LOADERS:
        raise ModelError(f"unknown loader {loader!r}; use one of {', '.join(LOADERS)}")
    if loader == "ultralytics":
        return _load_with_package(path, one2many)
    try:
        return _load_builtin(path, one2many)
    except DataError as exc:
        if loader == "auto" and "refusing to unpickle ultralytics." in str(exc) and available("ultralytics"):
            loaded = _load_with_package(path, one2many)
            note = f"built-in loader: {exc}; used the installed ultralytics package instead"
            return _with_extra(loaded, fallback_note=note)
        raise


def _with_extra(loaded: LoadedModel, **extra: Any) -> LoadedModel:
    return LoadedModel(
        module=loaded.module,
        output_format=loaded.output_format,
        class_names=loaded.class_names,
        stride=loaded.stride,
        kind=loaded.kind,
        extra={**loaded.extra, **extra},
    )


def _load_builtin(path: str | Path, one2many: bool) -> LoadedModel:
    from edgedet.convert.adapters.ultralytics_modules import fuse_for_export
    from edgedet.convert.adapters.ultralytics_pickle import read_checkpoint

    ck = read_checkpoint(path)
    model = ck.model
    head = model.model[-1]
    e2e = _choose_head(head, one2many, path)
    head.edgedet_end2end = e2e
    nparams = sum(int(p.numel()) for p in model.parameters())
    model = fuse_for_export(model)
    return LoadedModel(
        module=model,
        output_format="end2end" if e2e else "yolov8",
        class_names=_names(getattr(model, "names", None), int(head.nc), path),
        stride=int(max(float(s) for s in head.stride)),
        kind="ultralytics",
        extra={
            "family": family_of(model),
            "task": ck.task,
            "train_imgsz": ck.train_imgsz,
            "loader": "builtin",
            "ultralytics_version": ck.version,
            "weights_from": ck.source_key,
            "head": "one2one" if e2e else "one2many",
            "parameters": nparams,
        },
    )


def _choose_head(head: Any, one2many: bool, path: str | Path) -> bool:
    """True to export the one-to-one (NMS-free) branch."""
    has_o2o = head._modules.get("one2one_cv2") is not None
    has_o2m = head._modules.get("cv2") is not None
    if one2many and not has_o2m:
        raise ModelError(
            f"{path}: the one-to-many head was removed when this checkpoint was fused; it exports NMS-free "
            "only (drop --one2many)"
        )
    if not has_o2o:
        return False
    return not one2many


def _names(names: Any, nc: int, path: str | Path) -> tuple[str, ...]:
    out = checkpoint_names(names)
    if len(out) != nc:
        if out:
            raise ModelError(f"{path}: {len(out)} class names for {nc} classes; pass --names")
        return tuple(str(i) for i in range(nc))
    return out


_FAMILY_PATTERNS = (
    (r"yolo26", "YOLO26"),
    (r"yolo12", "YOLO12"),
    (r"yolo11", "YOLO11"),
    (r"yolov10", "YOLOv10"),
    (r"yolov9", "YOLOv9"),
    (r"yolov8", "YOLOv8"),
    (r"yolov6", "YOLOv6"),
    (r"yolov5", "YOLOv5"),
    (r"yolov3", "YOLOv3"),
)


def family_of(model: Any) -> str:
    """Family and variant ("YOLOv8n-p2", "YOLO26s") from the model's yaml file name, else from its layers."""
    yaml = getattr(model, "yaml", None)
    yaml = yaml if isinstance(yaml, dict) else {}
    stem = Path(str(yaml.get("yaml_file") or "")).stem.lower()
    scale = str(yaml.get("scale") or "")
    for pat, fam in _FAMILY_PATTERNS:
        m = re.search(pat + r"([nsmlxbtce]?)(u?)(.*)$", stem)
        if m:
            scale = scale or m.group(1)
            variant = m.group(3).strip("-")
            variant = variant[:-1] if variant.endswith("u") else variant  # yolov3-tinyu, yolov5n-p6u
            anchor_free = "u" if fam in ("YOLOv3", "YOLOv5") else ""  # Ultralytics' anchor-free remakes
            return f"{fam}{scale}{anchor_free}" + (f"-{variant}" if variant else "")
    types = {type(m).__name__ for m in model.modules()}
    head = model.model[-1]
    if "v10Detect" in types:
        return "YOLOv10"
    if "A2C2f" in types:
        return "YOLO12"
    if "C3k2" in types:
        return "YOLO26" if head._modules.get("one2one_cv2") is not None else "YOLO11"
    if types & {"RepNCSPELAN4", "ELAN1"}:
        return "YOLOv9"
    if types & {"C2f", "C3Ghost"}:
        return "YOLOv8"
    if "C3" in types:
        return "YOLOv5u"
    return "Ultralytics (unknown family)"


def _load_with_package(path: str | Path, one2many: bool) -> LoadedModel:
    """Through the installed ultralytics package's public loader."""
    torch = require("torch", "exporting a PyTorch model")
    check_ultralytics_globals(path)
    ul = require("ultralytics", "reading an Ultralytics checkpoint with --loader ultralytics")
    version = str(getattr(ul, "__version__", "unknown"))
    tasks = require("ultralytics.nn.tasks", "reading an Ultralytics checkpoint with --loader ultralytics")
    load = getattr(tasks, "load_checkpoint", None)
    if load is None:
        raise MissingDependencyError(
            f"ultralytics {version} has no ultralytics.nn.tasks.load_checkpoint (edgedet uses the API of 8.4); "
            "pip install 'ultralytics>=8.4,<8.5', or use the built-in loader (--loader builtin)"
        )
    model, ckpt = load(str(path), device="cpu", inplace=True, fuse=False)
    task = str(getattr(model, "task", "detect"))
    if task != "detect":
        from edgedet.convert.adapters.ultralytics_pickle import SUPPORTED

        raise DataError(f"this is an Ultralytics {task} checkpoint; edgedet converts {SUPPORTED}")
    head = model.model[-1]
    has_o2o = getattr(head, "one2one_cv2", None) is not None
    if one2many and getattr(head, "cv2", None) is None:
        raise ModelError(
            f"{path}: the one-to-many head was removed when this checkpoint was fused; drop --one2many"
        )
    e2e = has_o2o and not one2many
    if hasattr(model, "end2end"):
        model.end2end = e2e
    nparams = sum(int(p.numel()) for p in model.parameters())
    model = model.fuse(verbose=False).float().eval()
    for m in model.modules():
        if hasattr(m, "export") and hasattr(m, "format"):
            m.export, m.format, m.dynamic = True, "onnx", False
    for p in model.parameters():
        p.requires_grad_(False)

    module_base: Any = torch.nn.Module

    class FirstOutput(module_base):
        """Ultralytics heads return (y, raw maps) outside export mode; keep y."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            y = self.inner(x)
            return y[0] if isinstance(y, (list, tuple)) else y

    from edgedet.convert.adapters.ultralytics_pickle import _train_imgsz

    return LoadedModel(
        module=FirstOutput(model).eval(),
        output_format="end2end" if e2e else "yolov8",
        class_names=_names(getattr(model, "names", None), int(head.nc), path),
        stride=int(max(float(s) for s in model.stride)),
        kind="ultralytics",
        extra={
            "family": family_of(model),
            "task": task,
            "train_imgsz": _train_imgsz(ckpt if isinstance(ckpt, dict) else {}, model),
            "loader": f"ultralytics {version}",
            "ultralytics_version": str(ckpt.get("version"))
            if isinstance(ckpt, dict) and ckpt.get("version")
            else None,
            "weights_from": "ema" if isinstance(ckpt, dict) and ckpt.get("ema") is not None else "model",
            "head": "one2one" if e2e else "one2many",
            "parameters": nparams,
        },
    )
