"""One place that imports optional packages and turns their absence into a clear error."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar, cast

from edgedet.errors import ConfigError, MissingDependencyError

# TrackEval's wheels (every release on PyPI) require opencv-python, the GUI build, which would be installed beside
# edgedet's opencv-python-headless and write the same cv2 package (a known source of broken installs), and a
# pip extra cannot say --no-deps. The parts of TrackEval edgedet uses need only numpy and scipy, core
# dependencies; the [eval] extra brings everything else.
TRACKEVAL_INSTALL = 'pip install "edgedet[eval]" && pip install --no-deps "trackeval==1.3.0"'

# module -> how a user gets it
_HOW_TO_INSTALL: dict[str, str] = {
    "torch": "pip install torch (CPU: pip install torch==2.13.0) or pip install 'edgedet[export]'",
    "onnxslim": "pip install 'edgedet[export]'",
    "ultralytics": 'pip install "edgedet[ultralytics]"',
    "tensorrt": "use JetPack's TensorRT (apt install python3-libnvinfer) on the device; PyPI has no usable wheel here",
    "cuda": "pip install 'edgedet[tensorrt]' (cuda-python) or install pycuda",
    "pycuda": "pip install pycuda (builds against the CUDA toolkit)",
    "jtop": "pip install 'edgedet[jetson]' (jetson-stats) on the Jetson",
    "pycocotools": 'pip install "edgedet[eval]"',
    "motmetrics": 'pip install "edgedet[eval]"',
    "trackeval": TRACKEVAL_INSTALL,
    "matplotlib": 'pip install "edgedet[plot]"',
    "filterpy": "pip install filterpy",
    "tritonclient": "pip install 'edgedet[triton]'",
    "pymap3d": "pip install 'edgedet[geo]' (pymap3d)",
    "av": "pip install 'edgedet[link]' (PyAV, FFmpeg with libx264 in its wheels)",
    "pymavlink": "pip install 'edgedet[link]'",
    "paho": "pip install 'edgedet[link]' (paho-mqtt)",
    "serial": "pip install 'edgedet[link]' (pyserial)",
}

#: What each command needs beyond the core packages, checked all at once before it starts work.
COMMAND_NEEDS: dict[str, tuple[str, ...]] = {
    "eval det": ("pycocotools",),
    "convert --int8": ("pycocotools",),  # the accuracy gate (skipped with --no-gate)
    "eval mot": ("trackeval", "motmetrics"),
    "eval mot --no-crosscheck": ("trackeval",),
    "bench --plot": ("matplotlib",),
}


def require(module: str, feature: str) -> ModuleType:
    """Import `module` or raise MissingDependencyError naming the feature and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        how = _HOW_TO_INSTALL.get(top, f"pip install {top}")
        raise MissingDependencyError(
            f"{feature} needs the '{top}' package, which is not installed: {how}"
        ) from exc


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def missing(modules: tuple[str, ...] | list[str]) -> list[str]:
    """The top-level packages among `modules` that do not import here, in the given order."""
    return [m.split(".")[0] for m in modules if not available(m)]


def require_all(command: str, modules: tuple[str, ...] | None = None) -> None:
    """Check every optional package `command` needs before it starts; one MissingDependencyError naming them all.

    `modules` defaults to COMMAND_NEEDS[command]. The install line covers all of them: the one extra that brings
    them (plus TrackEval's separate --no-deps step when it is among them).
    """
    needed = COMMAND_NEEDS[command] if modules is None else modules
    absent = missing(needed)
    if not absent:
        return
    hows: list[str] = []
    for top in absent:
        how = _HOW_TO_INSTALL.get(top, f"pip install {top}")
        if how not in hows and not any(how in h for h in hows):
            hows = [h for h in hows if h not in how] + [how]
    names = " and ".join(f"'{m}'" for m in absent)
    raise MissingDependencyError(
        f"edgedet {command} needs {names}, which {'is' if len(absent) == 1 else 'are'} not installed: "
        + "; ".join(hows)
    )


def choose_backend(
    asked: str,
    backends: tuple[str, str, str],
    *,
    strict: bool,
    covered: bool,
    what: str,
    not_covered: str = "",
) -> str:
    """The path a stage with a compiled variant runs: `backends` is ("auto", compiled, plain), e.g. ("auto",
    "numba", "numpy"). "auto" is the compiled path where numba is installed and `covered` (the stage's config
    is one the kernels handle), else plain. The compiled path asked for by name (`strict`) on an uncovered
    config is a ConfigError with `not_covered` (the reason and the fix); without numba, MissingDependencyError.
    """
    auto, compiled, plain = backends
    if asked not in backends:
        raise ConfigError(f"{what} backend {asked!r} is not one of {', '.join(backends)}: pick one of them")
    if asked == plain or (asked == auto and not (covered and available("numba"))):
        return plain
    if not covered:
        if not strict:
            return plain
        raise ConfigError(f"the {compiled} {what} backend {not_covered}")
    require("numba", f"the {compiled} {what} backend")
    return compiled


F = TypeVar("F", bound=Callable[..., Any])


def numba_jit(fn: F) -> F:
    """`fn` compiled with numba (edgedet[fast]) when it is installed, else `fn` itself, unchanged.

    For the per-frame kernels (tracking.kernels, postprocess.kernels): `cache=True` (the first process on a
    machine compiles, later ones load numba's cache), `error_model="numpy"` (0/0 gives NaN as in numpy instead
    of raising), `nogil=True` (the overlapped runtime's other stages keep running). Import numba only from
    modules that are themselves imported lazily: importing it takes ~0.2 s.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - exercised where numba is absent
        return fn
    jitted: Any
    try:
        jitted = numba.njit(cache=True, error_model="numpy", nogil=True)(fn)
    except RuntimeError:  # no writable cache location (read-only install and home): compile in each process
        jitted = numba.njit(error_model="numpy", nogil=True)(fn)
    return cast(F, jitted)
