"""Fixtures for the end-to-end reliability tests: a real RTSP server, a blob-detector model, CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers.blob_model import GREEN, RED, blob_model
from tests.sources.test_rtsp import SYSTEM_PYTHON, Server, rtsp_server_available

SCENE_SERVER = Path(__file__).with_name("rtsp_scene_server.py")
EDGEDET = [sys.executable, "-c", "import sys; from edgedet.cli import main; sys.exit(main())"]


class SceneServer(Server):
    """The RTSP scene (moving red ball + static green square, 240x120 @ 30 fps) on a free loopback port."""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SCENE_SERVER), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"


@pytest.fixture
def scene_server() -> Iterator[SceneServer]:
    if not rtsp_server_available():
        pytest.skip(
            "GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0, x264enc) not installed for /usr/bin/python3"
        )
    srv = SceneServer()
    srv.start()
    yield srv
    srv.kill()


@pytest.fixture(scope="session")
def scene_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Blob detector for the RTSP scene: class 0 'ball' (red), class 1 'square' (green); frame pixels."""
    path = tmp_path_factory.mktemp("models") / "scene_blobs.onnx"
    return blob_model(path, input_hw=(120, 240), colors=(RED, GREEN), names=("ball", "square"))


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """The real CLI in a child process (its own signal handlers, stdout/stderr captured)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [*EDGEDET, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def wait_for(
    cond: Callable[[], bool], timeout_s: float, what: str, proc: subprocess.Popen[str] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended before {what}: rc={proc.returncode}\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)
