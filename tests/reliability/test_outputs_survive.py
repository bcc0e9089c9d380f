"""Outputs survive the end of a run through the real CLI: SIGINT, SIGTERM, SIGKILL, a full or read-only disk.

Sink-level behaviour (whole lines on ENOSPC, COCO checkpoints, the video reserve) is tested in tests/sinks;
here the whole `edgedet run` process is interrupted or starved and its files are read back with real parsers
(numpy for MOT txt, json for JSON lines and COCO, OpenCV for the mp4).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.errors import OUTPUTS_INCOMPLETE_EXIT_CODE

from .conftest import count_lines, start_cli, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_box_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two fixed boxes on every frame (64x64 input, class 0 and 1): tracked from the second frame on."""
    raw = yolov5_raw(
        np.array([[20, 20, 16, 16], [44, 40, 12, 20]], np.float32),
        np.array([0.9, 0.8], np.float32),
        np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
    )
    return constant_model(tmp_path_factory.mktemp("m") / "two_boxes.onnx", [raw])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


ALL_OUTPUTS = [
    "--save-mot",
    "t.txt",
    "--save-json",
    "r.jsonl",
    "--save-coco",
    "c.json",
    "--save-video",
    "v.mp4",
]


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_leaves_every_output_valid(
    two_box_model: Path, tmp_path: Path, sig: signal.Signals, rc: int
) -> None:
    proc = start_cli(
        ["run", "--source", "synthetic:320x240@30,live", "--model", str(two_box_model), *ALL_OUTPUTS],
        tmp_path,
    )
    wait_for(lambda: count_lines(tmp_path / "r.jsonl") >= 40, 60, "40 frames", proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == rc, err
    assert "Traceback" not in err
    assert f"stopped by {sig.name}" in out
    records = read_jsonl(tmp_path / "r.jsonl")
    n = len(records)
    assert n >= 40 and [r["index"] for r in records] == list(range(n))
    mot = np.loadtxt(tmp_path / "t.txt", delimiter=",", ndmin=2)
    assert mot.shape[1] == 10 and mot[:, 0].max() <= n and len(set(mot[:, 1].astype(int))) == 2
    coco = json.loads((tmp_path / "c.json").read_text())
    assert {d["image_id"] for d in coco} == set(range(n))  # closed cleanly: every frame's detections
    frames = video_frames(tmp_path / "v.mp4")
    assert 0 < frames <= n


def test_sigkill_leaves_whole_lines_and_the_last_coco_checkpoint(two_box_model: Path, tmp_path: Path) -> None:
    proc = start_cli(
        ["run", "--source", "synthetic:320x240@30,live", "--model", str(two_box_model), *ALL_OUTPUTS[:6]],
        tmp_path,
    )
    wait_for(lambda: count_lines(tmp_path / "r.jsonl") >= 150, 60, "150 frames", proc)
    proc.kill()
    proc.communicate(timeout=30)
    records = read_jsonl(tmp_path / "r.jsonl")  # no partial line
    assert len(records) >= 150
    mot = np.loadtxt(tmp_path / "t.txt", delimiter=",", ndmin=2)
    assert mot.shape[1] == 10
    coco = json.loads((tmp_path / "c.json").read_text())  # a checkpoint (every 100 frames or 2 s)
    assert len(coco) > 0


def test_full_disk_stops_that_output_with_a_warning_and_tracking_continues(
    two_box_model: Path, tmp_path: Path, tmpfs: Any
) -> None:
    small = tmpfs(16)  # the JSON lines fill 16 KiB after a few dozen frames
    frames = 300
    proc = start_cli(
        ["run", "--source", f"synthetic:320x240@30,frames={frames}", "--model", str(two_box_model),
         "--save-json", str(small / "r.jsonl"), "--save-mot", "t.txt", "--json", "summary.json"],
        tmp_path,
    )  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == OUTPUTS_INCOMPLETE_EXIT_CODE == 74, err  # the run finished, an output did not
    assert "Traceback" not in err
    warnings = [ln for ln in err.splitlines() if "--save-json" in ln]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and "run continues" in warnings[0]
    summary = json.loads((tmp_path / "summary.json").read_text())
    lost = summary["lost_outputs"]["JsonLinesSink"]
    kept = read_jsonl(small / "r.jsonl")
    assert 0 < len(kept) < frames and len(kept) + lost == frames
    assert (
        f"INCOMPLETE --save-json {small / 'r.jsonl'}: lost {lost} frames "
        "(write errors; the file holds what was written before them)"
    ) in out.splitlines()
    # only the complete output is listed as written
    assert [ln for ln in out.splitlines() if ln.startswith("wrote ")] == ["wrote t.txt"]
    assert summary["outputs"] == ["t.txt"]
    assert summary["incomplete_outputs"] == [
        {"flag": "--save-json", "path": str(small / "r.jsonl"), "lost_frames": lost, "exists": True, "complete": False}
    ]
    # Tracking went on to the end and the MOT output on the healthy disk has every frame.
    mot = np.loadtxt(tmp_path / "t.txt", delimiter=",", ndmin=2)
    assert summary["frames"] == frames and int(mot[:, 0].max()) == frames
    assert summary["lost_outputs"]["MotSink"] == 0


def test_video_on_a_disk_too_small_for_it_is_never_listed_as_written(
    two_box_model: Path, tmp_path: Path, tmpfs: Any
) -> None:
    """The issue's case: a 300 kB disk; the video never starts (the reserve for its index does not fit)."""
    small = tmpfs(300)
    frames = 30
    proc = start_cli(
        ["run", "--source", f"synthetic:320x240@30,frames={frames}", "--model", str(two_box_model),
         "--save-video", str(small / "out.mp4"), "--save-mot", str(small / "t.txt")],
        tmp_path,
    )  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 74, err
    lines = out.splitlines()
    assert f"INCOMPLETE --save-video {small / 'out.mp4'}: lost {frames} frames (write errors; the file was not created)" in lines
    assert f"wrote {small / 't.txt'}" in lines
    assert not any(ln.startswith("wrote") and "out.mp4" in ln for ln in lines)
    assert not (small / "out.mp4").exists()


def test_read_only_output_disk_is_refused_before_the_run_in_one_line(
    two_box_model: Path, tmp_path: Path, tmpfs: Any
) -> None:
    ro = tmpfs(64, read_only=True)
    proc = start_cli(
        ["run", "--source", "synthetic:320x240@30,frames=10", "--model", str(two_box_model),
         "--save-mot", str(ro / "t.txt")],
        tmp_path,
    )  # fmt: skip
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode not in (0, 70)
    assert err.strip().count("\n") == 0 and err.startswith("error: --save-mot")
    assert "Read-only file system" in err and "Traceback" not in err
