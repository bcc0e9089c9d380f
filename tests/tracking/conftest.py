"""Every tracking test runs on both tracker paths: numpy (always there) and numba (edgedet[fast], in dev).

A test module that compares the two paths itself sets `COMPARES_BACKENDS = True` and runs once.
"""

from __future__ import annotations

import pytest
from tests.helpers.backends import parametrize_backends, use_backend

from edgedet.tracking import sort


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_backends(metafunc, "tracker_backend", ["numpy", "numba"])


@pytest.fixture(autouse=True)
def tracker_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend every SortTracker made in the test uses (sort.DEFAULT_BACKEND)."""
    return use_backend(request, monkeypatch, sort)
