"""The Backend contract shared by ONNX Runtime and TensorRT."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from edgedet.spec import ModelSpec


@dataclass(frozen=True)
class BackendConfig:
    """How to run a model.

    backend: registry name ("onnxruntime", "tensorrt").
    device: "cpu", "cuda", "tensorrt" (ONNX Runtime execution provider choice; TensorRT ignores it).
    threads: intra-op threads for CPU inference (0 = library default).
    output_format / class_names: override what the model's metadata says (for plain ONNX files).
    options: the other options declared in config.py with stage="backend" (name -> value), for plugin backends.
    trt_memory: TensorRT only: "device" (device buffers and async copies) or "mapped" (zero-copy pinned host
        memory; worth it on Jetson, where CPU and GPU share DRAM).
    stages_beside: pipeline stage threads busy while the model runs (the runtime sets it; None = none, as in
        bench and eval): ONNX Runtime's thread budget leaves them their cores.
    sessions_beside: other models of this process that take turns with this one on the same cores (bench's A/B
        loop): ONNX Runtime's pool then does not spin, or an idle session's spinning workers slow the running one.
    """

    backend: str = "onnxruntime"
    device: str = "cpu"
    threads: int = 0
    output_format: str | None = None
    class_names: tuple[str, ...] | None = None
    trt_memory: str = "device"  # TensorRT: "device" buffers + copies, or "mapped" pinned memory (Jetson)
    options: Mapping[str, Any] = field(default_factory=dict)  # backend options declared in config.py
    stages_beside: int | None = None
    sessions_beside: int = 0


B = TypeVar("B", bound="Backend")


class Backend(ABC):
    """A loaded model. Use as a context manager; `infer` is the only verb.

    `infer(tensor)` takes a (B, 3, H, W) float32 array laid out as `spec` says and returns the raw outputs in
    the model's output order. The returned arrays may be buffers the backend reuses on the next call: copy
    what you keep.
    """

    spec: ModelSpec
    model_path: Path
    #: how many `submit` calls may be outstanding before `collect`: 1 for runtimes that infer on the calling
    #: thread (ONNX Runtime on the CPU), 2 for TensorRT (the engine runs one while the host prepares the next)
    max_in_flight: int = 1
    #: True when `infer`/`collect` return buffers the backend overwrites later (copy what you keep); False
    #: when every call returns new arrays (ONNX Runtime), which saves the pipelined runtime a copy
    reuses_outputs: bool = True

    def __init__(self, model_path: Path, config: BackendConfig | None = None) -> None:
        self.model_path = Path(model_path)
        self.config = config or BackendConfig()

    def __enter__(self: B) -> B:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def infer(self, tensor: npt.NDArray[np.float32]) -> Sequence[npt.NDArray[np.floating]]: ...

    def submit(self, tensor: npt.NDArray[np.float32]) -> Any:
        """Start inference on `tensor` and return a handle for `collect`; the pipelined runtime's verb pair.

        At most `max_in_flight` submits are outstanding, collected in submit order; `tensor` stays untouched
        until its collect returns. This default runs `infer` at once on the calling thread (the runtime calls
        it from its own inference thread), so every backend has the pair; TensorRT overrides it to queue the
        work on a CUDA stream and return.
        """
        return self.infer(tensor)

    def collect(self, handle: Any) -> Sequence[npt.NDArray[np.floating]]:
        """The outputs of the `submit` that returned `handle` (blocks until they are ready); buffers as `infer`'s."""
        outputs: Sequence[npt.NDArray[np.floating]] = handle
        return outputs

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def output_shapes(self) -> list[tuple[int | str | None, ...]]:
        """Output shapes as the model declares them (symbolic dims as strings or None)."""

    @property
    def description(self) -> str:
        return f"{type(self).__name__}({self.model_path.name})"
