"""Terminal logging: one line per record, edgedet's level from -v/--debug, third-party noise kept out."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys

import pytest

from edgedet.cli import main
from edgedet.logs import setup_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("edgedet").level)
    yield None
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("edgedet").setLevel(saved[2])


def test_setup_twice_keeps_one_handler_and_each_line_once() -> None:
    logging.basicConfig(force=True)  # a library (or an earlier basicConfig) already put a handler on root
    setup_logging(verbose=True, quiet_native=False)
    out = io.StringIO()
    setup_logging(verbose=True, stream=out, quiet_native=False)
    logging.getLogger("edgedet.sources.live").info("reconnecting")
    assert out.getvalue() == "INFO edgedet.sources.live: reconnecting\n"


@pytest.mark.parametrize(
    ("verbose", "debug", "expect"),
    [
        (False, False, ["WARNING edgedet.x: w", "WARNING other: w"]),
        (True, False, ["INFO edgedet.x: i", "WARNING edgedet.x: w", "WARNING other: w"]),
        (
            False,
            True,
            ["DEBUG edgedet.x: d", "INFO edgedet.x: i", "WARNING edgedet.x: w", "INFO root: quantizer chatter", "WARNING other: w"],
        ),
    ],
)
def test_levels(verbose: bool, debug: bool, expect: list[str]) -> None:
    out = io.StringIO()
    setup_logging(verbose=verbose, debug=debug, stream=out, quiet_native=False)
    own = logging.getLogger("edgedet.x")
    own.debug("d")
    own.info("i")
    own.warning("w")
    # onnxruntime's quantizer logs "Created a copy of bias input ..." like this, once per bias
    logging.info("quantizer chatter")
    logging.getLogger("other").warning("w")
    assert out.getvalue().splitlines() == expect


def test_verbose_cli_prints_convert_progress_once(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from edgedet.convert import api

    run = api._Run(progress=lambda msg: print(msg, file=sys.stderr))
    setup_logging(verbose=True, quiet_native=False)
    run.say("exporting")
    assert capsys.readouterr().err.count("exporting") == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("debug", [False, True])
def test_unreachable_rtsp_prints_only_edgedet_lines(debug: bool) -> None:
    """Against real OpenCV/FFmpeg: nothing listens on the port, so every open is refused."""
    url = f"rtsp://127.0.0.1:{_free_port()}/x"
    args = [*(["--debug"] if debug else []), "run", "--source", url, "--give-up-s", "2", "--stall-timeout-s", "1"]
    code = f"import sys; from edgedet.cli import main; sys.exit(main({args!r}))"
    # a clean environment: an earlier in-process main() set the quiet defaults in os.environ
    env = {k: v for k, v in os.environ.items() if k not in ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_LOG_LEVEL")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    if debug:
        assert any("Connection refused" in line for line in lines)  # FFmpeg's own line is back
        return
    assert lines == [
        f"WARNING edgedet.sources.live: {url} is not available yet (open failed); waiting for it, retrying with "
        "backoff for up to 2s",
        lines[1],
    ]
    assert lines[1].startswith(f"error: could not open {url} within 2s (")


def test_main_resets_logging_between_calls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v", "info", "/nonexistent.onnx"]) != 0
    assert main(["-v", "info", "/nonexistent.onnx"]) != 0
    assert len([h for h in logging.getLogger().handlers if type(h).__name__ == "_EdgedetHandler"]) == 1
