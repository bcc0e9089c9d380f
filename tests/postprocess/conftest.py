"""Every postprocess test runs on both Postprocessor paths: numpy (always there) and numba (edgedet[fast], in dev).

A test module that compares the two paths itself sets `COMPARES_BACKENDS = True` and runs once.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

import edgedet.postprocess as pp


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "postprocess_backend" in metafunc.fixturenames and not getattr(
        metafunc.module, "COMPARES_BACKENDS", False
    ):
        metafunc.parametrize("postprocess_backend", ["numpy", "numba"], indirect=True)


@pytest.fixture(autouse=True)
def postprocess_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The backend every Postprocessor made in the test uses (postprocess.DEFAULT_BACKEND)."""
    backend = getattr(request, "param", pp.DEFAULT_BACKEND)
    if backend == "numba" and importlib.util.find_spec("numba") is None:
        pytest.skip('numba is not installed: pip install "edgedet[fast]" to test the compiled postprocess')
    monkeypatch.setattr(pp, "DEFAULT_BACKEND", backend)
    yield backend
