"""Ultralytics YOLOv8/11 checkpoints through the `ultralytics` package (the only module that imports it).

Not a dependency of edgedet: it pulls torchvision (several GB here) and fetches settings/fonts on first use.
Follow-up: a built-in YOLOv8/11 implementation (Conv/C2f/C3k2/SPPF/Detect with DFL) like `yolov5_modules`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.convert.adapters.base import LoadedModel
from edgedet.errors import DataError, ModelError

# Ultralytics loads checkpoints with torch.load(weights_only=False), which runs whatever the pickle names. So the
# pickle's globals are read first (pickletools, nothing executed) and the file is refused unless every one is a
# layer/model class, a tensor-rebuild helper or a plain container. Functions inside ultralytics are not allowed:
# some download files or pip-install packages.
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
        raise DataError(
            f"refusing to unpickle {refused[0]}: a checkpoint is code; an Ultralytics checkpoint may only name "
            f"model/layer classes and tensors ({len(refused)} other global(s) found in {Path(path).name})"
        )


def load_ultralytics(path: str | Path) -> LoadedModel:
    """An Ultralytics checkpoint -> module returning the export-mode head: [B, 4+nc, N] (yolov8) or, for
    NMS-free heads (YOLOv10/26 end2end), [B, K, 6]."""
    torch = require("torch", "exporting a PyTorch model")
    check_ultralytics_globals(path)
    require("ultralytics", "reading an Ultralytics YOLOv8/11 checkpoint")
    from ultralytics.nn.tasks import attempt_load_one_weight

    model, _ = attempt_load_one_weight(str(path), device="cpu", inplace=True, fuse=True)
    model = model.float().eval()
    head = model.model[-1]
    end2end = bool(getattr(head, "end2end", False))
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

    names_attr = getattr(model, "names", None)
    if isinstance(names_attr, dict):
        names = tuple(str(names_attr[k]) for k in sorted(names_attr))
    elif isinstance(names_attr, (list, tuple)):
        names = tuple(str(n) for n in names_attr)
    else:
        raise ModelError(f"{path}: the checkpoint has no class names; pass --names")
    stride = int(max(float(s) for s in model.stride))
    return LoadedModel(
        module=FirstOutput(model).eval(),
        output_format="end2end" if end2end else "yolov8",
        class_names=names,
        stride=stride,
        kind="ultralytics",
    )
