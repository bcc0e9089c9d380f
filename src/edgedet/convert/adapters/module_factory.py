"""Any nn.Module: "package.module:factory" plus a state_dict file (read with weights_only=True)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgedet._optional import require
from edgedet.convert.adapters.base import LoadedModel
from edgedet.errors import ConfigError, DataError, ModelError


def is_factory_ref(source: str) -> bool:
    """True for "pkg.mod:callable" (and not a Windows drive path like C:\\x)."""
    mod, sep, attr = source.partition(":")
    return (
        bool(sep) and bool(mod) and bool(attr) and "/" not in source and "\\" not in source and len(mod) > 1
    )


def load_module_factory(
    ref: str, weights: str | Path | None, output_format: str | None, class_names: tuple[str, ...]
) -> LoadedModel:
    """Import `ref` = "pkg.mod:factory", call factory() -> nn.Module, load `weights` (a state_dict, or a dict
    holding one under "state_dict"/"model") strictly. The module must take (B, 3, H, W) float32 RGB in [0, 1]
    and return one tensor in `output_format` layout. The stride is the module's `stride` attribute (max) or 32.
    """
    torch = require("torch", "exporting a PyTorch model")
    if output_format is None:
        raise ConfigError(f"{ref}: a module factory needs --format yolov5|yolov8|end2end (its output layout)")
    mod_name, _, attr = ref.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {mod_name!r} for {ref} ({exc}); is the package installed / on PYTHONPATH?"
        ) from exc
    factory: Any = mod
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConfigError(f"{mod_name} has no attribute {attr!r}; pass --source module.path:factory")
    if not callable(factory):
        raise ConfigError(f"{ref} is not callable; pass a function or class that returns an nn.Module")
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{ref}() returned {type(module).__name__}, not a torch.nn.Module")
    if weights is not None:
        try:
            state: Any = torch.load(str(weights), map_location="cpu", weights_only=True)
        except FileNotFoundError as exc:
            raise DataError(f"weights file {weights} not found; pass --weights state_dict.pth") from exc
        except Exception as exc:  # weights_only refusal, corrupt zip: all mean "not a plain state_dict"
            raise DataError(
                f"{weights} is not a plain state_dict ({type(exc).__name__}); save it with "
                "torch.save(model.state_dict(), path)"
            ) from exc
        if isinstance(state, dict):
            for key in ("state_dict", "model"):
                if isinstance(state.get(key), dict):
                    state = state[key]
        try:
            module.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError) as exc:
            first = str(exc).splitlines()[0]
            raise ModelError(f"{weights} does not fit {ref}(): {first}") from exc
    module = module.float().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    raw_stride = getattr(module, "stride", 32)
    try:
        stride = (
            int(max(float(s) for s in raw_stride)) if hasattr(raw_stride, "__iter__") else int(raw_stride)
        )
    except (TypeError, ValueError):
        stride = 32
    return LoadedModel(module, output_format, class_names, stride, kind="module")
