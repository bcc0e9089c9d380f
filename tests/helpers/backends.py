"""Running a stage's tests on each of its per-frame paths (numpy/OpenCV and numba), and without numba at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import ModuleType

import pytest

# Imported first in a child process, this makes `import numba` (and llvmlite) fail as if not installed.
_BLOCK_NUMBA = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numba", "llvmlite"):
            raise ImportError(name)
        return None

sys.meta_path.insert(0, Block())
"""


def run_without_numba(code: str) -> str:
    """Run `code` in a fresh interpreter where numba cannot be imported; its stdout (fails the test on an error)."""
    src = _BLOCK_NUMBA + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def parametrize_backends(metafunc: pytest.Metafunc, fixture: str, backends: list[str]) -> None:
    """In a conftest's pytest_generate_tests: every test of the folder runs once per backend, except in a
    module that compares the backends itself (`COMPARES_BACKENDS = True`), which runs once."""
    if fixture in metafunc.fixturenames and not getattr(metafunc.module, "COMPARES_BACKENDS", False):
        metafunc.parametrize(fixture, backends, indirect=True)


def use_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> str:
    """Set `module.DEFAULT_BACKEND` to the test's parameter (unparametrized: leave it); skip "numba" where
    numba is not installed."""
    backend: str = getattr(request, "param", module.DEFAULT_BACKEND)
    if backend == "numba":
        pytest.importorskip(
            "numba", reason='pip install "edgedet[fast]" to test the compiled per-frame paths'
        )
    monkeypatch.setattr(module, "DEFAULT_BACKEND", backend)
    return backend
