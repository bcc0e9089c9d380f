"""The CLI as a user meets it: exit codes, one-line errors, no tracebacks unless --debug."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from tests.conftest import shared_path
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.cli import main


@pytest.fixture
def model(tmp_path):
    raw = yolov5_raw(np.array([[32, 32, 16, 8]]), np.array([0.9]), np.array([[1.0, 0.0]]))
    return constant_model(tmp_path / "m.onnx", [raw], metadata={"names": "['car', 'person']"})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from edgedet.cli import main; sys.exit(main(sys.argv[1:]))",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["run", "--source", "synthetic", "--model", "missing.onnx"], 1, "model file not found"),
        (["run", "--source", "nope.mp4", "--model", "{model}"], 1, "no such file or folder"),
        (["run", "--source", "foo://x", "--model", "{model}"], 1, "unknown source scheme"),
        (
            ["run", "--source", "synthetic", "--model", "{model}", "--conf", "2"],
            2,
            "--conf must be between 0 and 1",
        ),
        (["run", "--source", "synthetic", "--camera", "0", "--model", "{model}"], 2, "pass only one"),
        (
            ["run", "--source", "synthetic", "--model", "{model}", "--no-track", "--detect-every", "2"],
            2,
            "--no-track",
        ),
        (["run", "--source", "synthetic", "--model", "{model}", "--format", "yolov9"], 1, "unknown --format"),
        (
            ["run", "--source", "synthetic", "--model", "{model}", "--backend", "openvino"],
            2,
            "unknown backend",
        ),
        (["run", "--source", "synthetic", "--model", "{model}", "--save-mot", "/proc/x/t.txt"], 1, "/proc/x"),
        (["track", "--dets", "nope.txt", "--seqinfo", "nope.ini", "--out", "t.txt"], 1, "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, model, args, code, needle):
    args = [a.replace("{model}", str(model)) for a in args]
    out = _cli(*args)
    assert out.returncode == code, out.stderr
    err_lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(err_lines) == 1, out.stderr
    assert err_lines[0].startswith("error: ") and needle in err_lines[0]
    assert "Traceback" not in out.stderr


def test_debug_shows_the_traceback(model):
    out = _cli("--debug", "run", "--source", "nope.mp4", "--model", str(model))
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "SourceError" in out.stderr


def test_usage_error_exit_code():
    assert main(["run", "--no-such-flag"]) == 2


def test_run_prints_a_summary_and_writes_json(tmp_path, model, capsys):
    rc = main(
        [
            "run",
            "--source",
            "synthetic:128x96@30,frames=9",
            "--model",
            str(model),
            "--detect-every",
            "3",
            "--json",
            str(tmp_path / "s.json"),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "frames 9" in text and "detector runs 3, track-only 6" in text
    import json

    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 9 and summary["detector_runs"] == 3
    assert summary["latency_ms"]["infer"]["count"] == 3


def test_track_command_writes_mot(tmp_path, capsys):
    seq = shared_path("mot", "TUD-Stadtmitte")
    out = tmp_path / "t.txt"
    rc = main(
        ["track", "--dets", str(seq / "det.txt"), "--seqinfo", str(seq / "seqinfo.ini"), "--out", str(out)]
    )
    assert rc == 0
    rows = np.loadtxt(out, delimiter=",", ndmin=2)
    assert rows.shape[1] == 10 and rows[:, 0].min() >= 1 and rows[:, 0].max() <= 179
    assert "wrote" in capsys.readouterr().out
