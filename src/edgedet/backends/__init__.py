"""Inference backends: context managers with one verb, `infer()`. Chosen by name from an explicit registry."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgedet.backends.base import Backend, BackendConfig
from edgedet.errors import ConfigError

# name -> "module:class"; resolved on demand so a missing optional package only matters when it is chosen.
BACKENDS: dict[str, str] = {
    "onnxruntime": "edgedet.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "edgedet.backends.tensorrt:TensorRTBackend",
}


def backend_class(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}: choose one of {', '.join(sorted(BACKENDS))}") from None
    module_name, cls_name = target.split(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), cls_name)
    return cls


def open_backend(model: str | Path, config: BackendConfig | None = None, **overrides: Any) -> Backend:
    """Create (not yet entered) the backend named by `config.backend` for `model`."""
    cfg = config or BackendConfig()
    if overrides:
        from dataclasses import replace

        cfg = replace(cfg, **overrides)
    return backend_class(cfg.backend)(Path(model), cfg)


__all__ = ["BACKENDS", "Backend", "BackendConfig", "backend_class", "open_backend"]
