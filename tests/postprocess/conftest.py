"""Every postprocess test runs on both Postprocessor paths: numpy (always there) and numba (edgedet[fast], in dev).

A test module that compares the two paths itself sets `COMPARES_BACKENDS = True` and runs once.
"""

from __future__ import annotations

import pytest
from tests.helpers.backends import parametrize_backends, use_backend

import edgedet.postprocess as pp


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_backends(metafunc, "postprocess_backend", ["numpy", "numba"])


@pytest.fixture(autouse=True)
def postprocess_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend every Postprocessor made in the test uses (postprocess.DEFAULT_BACKEND)."""
    return use_backend(request, monkeypatch, pp)
