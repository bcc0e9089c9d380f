"""Every tracking test runs on both tracker paths: numpy (always there) and numba (edgedet[fast], in dev)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from edgedet.tracking import sort


@pytest.fixture(autouse=True, params=["numpy", "numba"])
def tracker_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The backend every SortTracker made in the test uses (sort.DEFAULT_BACKEND)."""
    if request.param == "numba" and importlib.util.find_spec("numba") is None:
        pytest.skip('numba is not installed: pip install "edgedet[fast]" to test the compiled tracker path')
    monkeypatch.setattr(sort, "DEFAULT_BACKEND", request.param)
    yield request.param
