"""deploy/jetson: the example config is a valid `edgedet run` config, the files agree with each other, and the
linters that CI runs (deploy/jetson/check.sh) pass where their binaries are installed."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgedet.backends import BACKENDS
from edgedet.config import RunConfig, build_config
from edgedet.sources.base import SourceConfig
from edgedet.sources.csi import CsiOptions, parse_csi_uri

REPO = Path(__file__).resolve().parents[2]
JETSON = REPO / "deploy" / "jetson"
CONFIG_PATH = "/etc/edgedet/config.yaml"


def test_example_config_is_a_valid_run_config_for_csi_at_30fps_int8() -> None:
    cfg = build_config(RunConfig, JETSON / "config.example.yaml").validate()
    assert cfg.backend == "tensorrt" and cfg.backend in BACKENDS
    assert cfg.model is not None and cfg.model.endswith(".int8.onnx")
    assert cfg.fps == 30 and cfg.target_fps == 30
    opts = parse_csi_uri(cfg.source, SourceConfig(width=cfg.width, height=cfg.height, fps=cfg.fps))
    assert opts == CsiOptions(sensor_id=0, sensor_mode=2, width=1920, height=1080, fps=30.0, flip=0)


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(JETSON / "edgedet.service")
    return parser


def test_unit_starts_on_boot_restarts_on_failure_and_runs_the_config() -> None:
    unit = _unit()
    assert unit["Service"]["ExecStart"] == f"/opt/edgedet/venv/bin/edgedet run --config {CONFIG_PATH}"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # install.sh puts the config and the venv where the unit looks for them; the image runs the same config.
    install = (JETSON / "install.sh").read_text()
    assert (
        CONFIG_PATH in install
        and 'VENV="$PREFIX/venv"' in install
        and "PREFIX=${PREFIX:-/opt/edgedet}" in install
    )
    assert f'CMD ["run", "--config", "{CONFIG_PATH}"]' in (JETSON / "Dockerfile").read_text()


def test_no_pypi_opencv_or_onnxruntime_is_pulled_in() -> None:
    reqs = [
        re.split(r"[<>=!~ ;\[]", line.strip())[0].lower()
        for line in (JETSON / "requirements-jetson.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [r for r in reqs if r.startswith(("opencv", "onnxruntime"))]
    for script in ("Dockerfile", "install.sh"):
        text = (JETSON / script).read_text()
        assert "install --no-deps" in text and "--system-site-packages" in text
        assert "requirements-jetson.txt" in text and "python3-libnvinfer" in text


def test_check_env_reports_this_machine_truthfully() -> None:
    out = subprocess.run(
        [sys.executable, str(JETSON / "check_env.py"), "--no-gpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = out.stdout.splitlines()
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert out.returncode == 1
        assert any(line.startswith("FAIL tensorrt imports") for line in lines)
    import cv2

    from edgedet.sources.csi import opencv_has_gstreamer

    status = "ok  " if opencv_has_gstreamer() else "FAIL"
    assert any(line.startswith(f"{status} cv2 {cv2.__version__}") for line in lines)


@pytest.mark.parametrize("tool", ["hadolint", "shellcheck", "systemd-analyze"])
def test_linters_pass(tool: str, tmp_path: Path) -> None:
    scripts = Path(sys.executable).parent
    exe = shutil.which(tool, path=f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}")
    if exe is None:
        pytest.skip(f"{tool} not installed here (deploy/jetson/check.sh installs hadolint/shellcheck)")
    if tool == "hadolint":
        cmd = [exe, "--failure-threshold", "info", str(JETSON / "Dockerfile")]
    elif tool == "shellcheck":
        cmd = [exe, "--severity=style", *map(str, sorted(JETSON.glob("*.sh")))]
    else:
        stub = tmp_path / "edgedet"
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
        unit = tmp_path / "edgedet.service"
        unit.write_text(
            (JETSON / "edgedet.service").read_text().replace("/opt/edgedet/venv/bin/edgedet", str(stub))
        )
        cmd = [exe, "verify", str(unit)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr
