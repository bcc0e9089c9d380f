"""Ultralytics YOLOv8/11 checkpoints through the `ultralytics` package (the only module that imports it).

Not a dependency of edgedet: it pulls torchvision (several GB here) and fetches settings/fonts on first use.
Follow-up: a built-in YOLOv8/11 implementation (Conv/C2f/C3k2/SPPF/Detect with DFL) like `yolov5_modules`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.convert.adapters.base import LoadedModel
from edgedet.errors import ModelError


def load_ultralytics(path: str | Path) -> LoadedModel:
    """An Ultralytics checkpoint -> module returning the export-mode head: [B, 4+nc, N] (yolov8) or, for
    NMS-free heads (YOLOv10/26 end2end), [B, K, 6]."""
    torch = require("torch", "exporting a PyTorch model")
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
