"""Scalar helpers for the compiled per-frame kernels (tracking.kernels, postprocess.kernels), each with numpy's
semantics for the array function it stands for, NaN included, so a kernel's loop gives what the numpy path gives.

Compiled with `_optional.numba_jit` when this module is imported: import it only from the kernel modules, which
are themselves imported lazily (numba's import takes ~0.2 s).
"""

from __future__ import annotations

import numpy as np

from edgedet._optional import numba_jit


@numba_jit
def maximum(a: float, b: float) -> float:
    """np.maximum: NaN if either is NaN."""
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@numba_jit
def minimum(a: float, b: float) -> float:
    """np.minimum: NaN if either is NaN."""
    if a != a or b != b:
        return np.nan
    return a if a <= b else b


@numba_jit
def nonpositive(a: float) -> float:
    """np.minimum(a, 0.0): NaN stays NaN."""
    return 0.0 if a > 0.0 else a


@numba_jit
def nonnegative(v: float) -> float:
    """np.clip(v, 0, None): NaN stays NaN."""
    return 0.0 if v < 0.0 else v


@numba_jit
def clip(v: float, hi: float) -> float:
    """np.clip(v, 0, hi): NaN stays NaN."""
    if v < 0.0:
        return 0.0
    if v > hi:
        return hi
    return v
