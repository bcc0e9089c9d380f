"""Every tracking test runs on both tracker paths: numpy (always there) and numba (edgedet[fast], in dev).

A test module that compares the two paths itself sets `COMPARES_BACKENDS = True` and runs once.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from edgedet.tracking import sort


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tracker_backend" in metafunc.fixturenames and not getattr(
        metafunc.module, "COMPARES_BACKENDS", False
    ):
        metafunc.parametrize("tracker_backend", ["numpy", "numba"], indirect=True)


@pytest.fixture(autouse=True)
def tracker_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The backend every SortTracker made in the test uses (sort.DEFAULT_BACKEND)."""
    backend = getattr(request, "param", sort.DEFAULT_BACKEND)
    if backend == "numba" and importlib.util.find_spec("numba") is None:
        pytest.skip('numba is not installed: pip install "edgedet[fast]" to test the compiled tracker path')
    monkeypatch.setattr(sort, "DEFAULT_BACKEND", backend)
    yield backend
