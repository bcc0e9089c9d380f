"""Write errors mid-run (ENOSPC): the sink disables itself, logs, counts lost frames, and the run goes on.

Uses real failing writes: /dev/full (every write fails with ENOSPC) and tiny tmpfs mounts that fill up.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.sinks import CocoSink, JsonLinesSink, MotSink, VideoSink

from .conftest import MakeResult

DEV_FULL = Path("/dev/full")


def _dets(n: int) -> dict[str, object]:
    xy = np.arange(n * 2, dtype=np.float32).reshape(n, 2) * 3.0
    return {
        "xyxy": np.hstack([xy, xy + 10]),
        "confidence": np.full(n, 0.5),
        "class_id": np.zeros(n, np.int32),
        "track_id": np.arange(n),
    }


def _require_dev_full() -> None:
    if not DEV_FULL.exists():
        pytest.skip("/dev/full is not available here")
    try:
        with open(DEV_FULL, "wb", buffering=0) as f:
            f.write(b"x")
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            return
        pytest.skip(f"/dev/full cannot be opened: {exc}")
    pytest.skip("/dev/full accepted a write")


@pytest.mark.parametrize("sink_type", [MotSink, JsonLinesSink])
def test_dev_full_disables_sink_counts_lost_frames_and_never_raises(
    sink_type: type[MotSink] | type[JsonLinesSink], make_result: MakeResult, caplog: pytest.LogCaptureFixture
) -> None:
    _require_dev_full()
    sink = sink_type(DEV_FULL)
    with caplog.at_level(logging.WARNING, logger="edgedet.sinks"):
        for i in range(5):
            sink.write(make_result(i, **_dets(3)))
        sink.close()
    assert sink.failed
    assert sink.lost_frames == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning, not one per frame
    message = warnings[0].getMessage()
    assert str(DEV_FULL) in message and "at frame 0" in message and "No space left on device" in message
    assert "free some space" in message


def test_full_tmpfs_leaves_whole_mot_lines_and_counts_the_rest(
    tmpfs: Callable[..., Path], make_result: MakeResult
) -> None:
    root = tmpfs(8)  # 8 KiB: two pages
    path = root / "mot.txt"
    n_frames, per_frame = 200, 7  # ~50 bytes a line: the disk fills in the middle of some frame's block
    with MotSink(path, tracking=True) as sink:
        for i in range(n_frames):
            sink.write(make_result(i, **_dets(per_frame)))
    assert sink.failed
    text = path.read_text()
    assert text.endswith("\n")
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape[1] == 10
    # Whole frames only, in order: frames 1..k with all their rows, and everything after k counted as lost.
    frames_kept = rows.shape[0] // per_frame
    assert rows.shape[0] == frames_kept * per_frame
    np.testing.assert_array_equal(rows[:, 0], np.repeat(np.arange(1, frames_kept + 1), per_frame))
    assert 0 < frames_kept < n_frames
    assert sink.lost_frames == n_frames - frames_kept


def test_full_tmpfs_keeps_the_last_coco_checkpoint(
    tmpfs: Callable[..., Path], make_result: MakeResult
) -> None:
    root = tmpfs(16)
    path = root / "dets.json"
    sink = CocoSink(path, checkpoint_s=1e9, checkpoint_frames=1, fsync=False, clock=lambda: 0.0)
    good = 0
    for i in range(400):
        sink.write(make_result(i, **_dets(4)))
        if not sink.failed:
            good = i + 1
    assert sink.failed
    # The checkpoint that failed was the tmp file; the file on disk is the previous one, complete.
    saved = json.loads(path.read_text())
    assert len(saved) == good * 4
    assert sorted({d["image_id"] for d in saved}) == list(range(good))
    assert sink.lost_frames == 400 - good
    assert not [p for p in os.listdir(root) if p.endswith(".tmp")]
    sink.close()
    assert len(json.loads(path.read_text())) == good * 4


def test_nearly_full_disk_stops_video_early_and_keeps_it_readable(
    tmpfs: Callable[..., Path], make_result: MakeResult, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmpfs(2048)
    path = root / "v.mp4"
    rng = np.random.default_rng(0)
    n = 120
    with caplog.at_level(logging.WARNING, logger="edgedet.sinks"), VideoSink(path, fps=30.0) as sink:
        for i in range(n):
            result = make_result(i, **_dets(2))
            # Noise does not compress: the 2 MiB disk nears full (1 MiB reserve) within a few dozen frames.
            result.frame.image[:] = rng.integers(0, 256, result.frame.image.shape, dtype=np.uint8)
            sink.write(result)
    assert sink.failed
    assert 0 < sink.frames_written < n
    assert sink.lost_frames == n - sink.frames_written
    assert any("disk nearly full" in r.getMessage() for r in caplog.records)
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == sink.frames_written
