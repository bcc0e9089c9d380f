"""A backend for tests: returns fixed raw outputs in a chosen format, no model file needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgedet.backends.base import Backend
from edgedet.spec import ModelSpec

OutputFn = Callable[[npt.NDArray[np.float32], int], Sequence[npt.NDArray[np.floating]]]


class FakeBackend(Backend):
    """Calls `outputs_fn(tensor, call_index)` to produce raw outputs; counts calls."""

    def __init__(self, spec: ModelSpec, outputs_fn: OutputFn, output_shapes: list[tuple[int, ...]]) -> None:
        super().__init__(Path("fake.onnx"))
        self.spec = spec
        self._fn = outputs_fn
        self._shapes = output_shapes
        self.calls = 0

    @property
    def output_shapes(self) -> list[tuple[int | str | None, ...]]:
        return list(self._shapes)

    def infer(self, tensor: npt.NDArray[np.float32]) -> Sequence[npt.NDArray[np.floating]]:
        out = self._fn(tensor, self.calls)
        self.calls += 1
        return out

    def close(self) -> None:
        pass
