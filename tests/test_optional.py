"""Optional packages: each command checks all it needs up front and names the one install line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgedet import _optional
from edgedet.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the check is the same on any version


@pytest.mark.parametrize(
    ("command", "absent", "expect"),
    [
        (
            "eval mot",
            {"trackeval", "motmetrics"},
            "edgedet eval mot needs 'trackeval' and 'motmetrics', which are not installed: "
            'pip install "edgedet[eval]" && pip install --no-deps "trackeval==1.3.0"',
        ),
        (
            "eval mot",
            {"motmetrics"},
            "edgedet eval mot needs 'motmetrics', which is not installed: pip install \"edgedet[eval]\"",
        ),
        (
            "eval det",
            {"pycocotools"},
            "edgedet eval det needs 'pycocotools', which is not installed: pip install \"edgedet[eval]\"",
        ),
        (
            "bench --plot",
            {"matplotlib"},
            "edgedet bench --plot needs 'matplotlib', which is not installed: pip install \"edgedet[plot]\"",
        ),
    ],
)
def test_require_all_names_every_missing_package_in_one_line(
    command: str, absent: set[str], expect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _optional.available
    monkeypatch.setattr(_optional, "available", lambda m: m not in absent and real(m))
    with pytest.raises(MissingDependencyError) as err:
        _optional.require_all(command)
    assert str(err.value) == expect


def test_require_all_passes_when_everything_imports() -> None:
    _optional.require_all("noop", ("json", "math"))


def test_no_extra_pulls_opencv_python_beside_the_headless_build() -> None:
    """Two OpenCV distributions writing one cv2 package break installs; every extra must stay on headless."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "opencv-python-headless" in core
    for name, reqs in project["optional-dependencies"].items():
        for req in reqs:
            dist = req.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
            # packages known to require the GUI build in their wheel metadata
            assert dist not in {"opencv-python", "opencv-contrib-python", "ultralytics", "trackeval", "sn-trackeval"}, (
                f"[{name}] pulls {req}, which requires opencv-python"
            )
