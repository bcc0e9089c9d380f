"""Inference backends: context managers with one verb, `infer()`. Chosen by name from the backend registry.

Entries are Backend classes, `cls(model_path: Path, config: BackendConfig)`; other packages add theirs under the
entry-point group `edgedet.backends` (docs/architecture.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedet.backends.base import Backend, BackendConfig
from edgedet.registry import Registry


def _adapt(name: str, obj: Any) -> type[Backend]:
    if not (isinstance(obj, type) and callable(getattr(obj, "infer", None))):
        raise TypeError(f"expected a Backend class with infer(), got {obj!r}")
    return obj


# resolved on demand so a missing optional package only matters when it is chosen
BACKENDS: Registry[type[Backend]] = Registry(
    "backend",
    "edgedet.backends",
    {
        "onnxruntime": "edgedet.backends.onnxruntime:OnnxRuntimeBackend",
        "tensorrt": "edgedet.backends.tensorrt:TensorRTBackend",
        "triton": "edgedet.backends.triton:TritonBackend",
    },
    contract="a backend entry is a class Backend(model_path: Path, config: BackendConfig) with infer() and close()",
    adapt=_adapt,
)


def backend_class(name: str) -> type[Backend]:
    """The Backend class registered as `name`; ConfigError lists the valid names."""
    return BACKENDS.get(name)


def open_backend(model: str | Path, config: BackendConfig | None = None, **overrides: Any) -> Backend:
    """Create (not yet entered) the backend named by `config.backend` for `model`."""
    cfg = config or BackendConfig()
    if overrides:
        from dataclasses import replace

        cfg = replace(cfg, **overrides)
    return backend_class(cfg.backend)(Path(model), cfg)


__all__ = ["BACKENDS", "Backend", "BackendConfig", "backend_class", "open_backend"]
