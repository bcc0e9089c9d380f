"""MotSink and JsonLinesSink: read the files back and compare numbers; a killed writer leaves whole lines."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgedet.sinks import JsonLinesSink, MotSink

from .conftest import MakeResult

# Three frames: (index, xyxy, confidence, class_id, track_id)
FRAMES: list[tuple[Any, ...]] = [
    (0, [[10.5, 20.25, 110.5, 220.75], [200, 30, 260, 90]], [0.91, 0.42], [0, 2], [1, -1]),
    (1, [[12, 21, 112, 222], [201, 31, 262, 92], [5, 5, 6, 6]], [0.88, 0.47, 0.3], [0, 2, 1], [1, 7, -1]),
    (3, [], [], [], []),
    (4, [[300.125, 100, 310.875, 140.5]], [0.999], [1], [7]),
]


def _write_all(sink: MotSink | JsonLinesSink, make_result: MakeResult) -> None:
    with sink:
        for index, xyxy, conf, cls, tid in FRAMES:
            sink.write(make_result(index, xyxy, conf, cls, tid))


def _expected_mot_rows(tracked_only: bool, one_based: bool = True) -> list[list[float]]:
    off = 1 if one_based else 0
    rows = []
    for index, xyxy, conf, _cls, tid in FRAMES:
        for (x1, y1, x2, y2), c, t in zip(xyxy, conf, tid, strict=True):
            if tracked_only and t < 0:
                continue
            rows.append(
                [index + 1, t if tracked_only else -1, x1 + off, y1 + off, x2 - x1, y2 - y1, c, -1, -1, -1]
            )
    return rows


@pytest.mark.parametrize(("tracking", "one_based"), [(True, True), (False, True), (True, False)])
def test_mot_file_round_trips(
    tmp_path: Path, make_result: MakeResult, tracking: bool, one_based: bool
) -> None:
    path = tmp_path / "sub" / "mot.txt"  # parent directory is created
    sink = MotSink(path, tracking=tracking, one_based=one_based)
    _write_all(sink, make_result)
    got = np.loadtxt(path, delimiter=",", ndmin=2)
    want = np.asarray(_expected_mot_rows(tracked_only=tracking, one_based=one_based))
    assert got.shape == want.shape == (4 if tracking else 6, 10)
    np.testing.assert_array_equal(got[:, :2], want[:, :2])
    np.testing.assert_allclose(got[:, 2:6], want[:, 2:6], atol=0.005)
    np.testing.assert_allclose(got[:, 6], want[:, 6], atol=5e-5)
    np.testing.assert_array_equal(got[:, 7:], -1)
    assert sink.lost_frames == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_mot_file_reads_with_motmetrics(tmp_path: Path, make_result: MakeResult) -> None:
    mm_io = pytest.importorskip("motmetrics.io")
    path = tmp_path / "mot.txt"
    _write_all(MotSink(path, tracking=True), make_result)
    df = mm_io.loadtxt(str(path), fmt="mot15-2D")
    # motmetrics indexes by (FrameId, Id) and converts MOTChallenge's 1-based X, Y back to 0-based pixels.
    assert sorted(df.index.tolist()) == [(1, 1), (2, 1), (2, 7), (5, 7)]
    row = df.loc[(5, 7)]
    assert row["X"] == pytest.approx(300.125, abs=0.006)
    assert row["Y"] == pytest.approx(100.0, abs=0.006)
    assert row["Width"] == pytest.approx(10.75, abs=0.006)
    assert row["Height"] == pytest.approx(40.5, abs=0.006)
    assert row["Confidence"] == pytest.approx(0.999, abs=5e-5)


def test_mot_auto_mode_switches_to_tracked_rows_at_first_track(
    tmp_path: Path, make_result: MakeResult
) -> None:
    path = tmp_path / "mot.txt"
    with MotSink(path) as sink:
        sink.write(make_result(0, [[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0, 0]))  # no tracks yet
        sink.write(make_result(1, [[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0, 0], [4, -1]))
        sink.write(make_result(2, [[0, 0, 10, 10]], [0.9], [0], [-1]))  # tracked run: untracked rows dropped
    got = np.loadtxt(path, delimiter=",", ndmin=2)
    np.testing.assert_array_equal(got[:, :2], [[1, -1], [1, -1], [2, 4]])


def test_json_lines_round_trip(tmp_path: Path, make_result: MakeResult) -> None:
    path = tmp_path / "out.jsonl"
    names = ("person", "bicycle", "car")
    with JsonLinesSink(path, class_names=names) as sink:
        for index, xyxy, conf, cls, tid in FRAMES:
            sink.write(make_result(index, xyxy, conf, cls, tid, detector_ran=index != 1, fps=12.5))
    lines = path.read_text().splitlines()
    assert len(lines) == len(FRAMES)
    for line, (index, xyxy, conf, cls, tid) in zip(lines, FRAMES, strict=True):
        rec = json.loads(line)
        assert rec["index"] == index
        assert rec["source_index"] == index + 100
        assert rec["timestamp_s"] == pytest.approx(index / 30.0, abs=1e-6)
        assert rec["detector_ran"] is (index != 1)
        assert rec["fps"] == 12.5
        assert rec["stage_ms"] == {"infer": 1.5, "track": 0.25}
        dets = rec["detections"]
        assert len(dets) == len(xyxy)
        for d, box, c, k, t in zip(dets, xyxy, conf, cls, tid, strict=True):
            np.testing.assert_allclose(d["xyxy"], box, atol=0.005)
            assert d["confidence"] == pytest.approx(c, abs=5e-6)
            assert d["class_id"] == k
            assert d["class_name"] == names[k]
            assert d["track_id"] == t


def test_json_lines_null_for_unknown_class_and_non_finite(tmp_path: Path, make_result: MakeResult) -> None:
    path = tmp_path / "out.jsonl"
    with JsonLinesSink(path, class_names=("person",)) as sink:
        sink.write(make_result(0, [[np.nan, 1, 2, np.inf]], [0.5], [3], fps=math.nan))
    rec = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert rec["fps"] is None
    assert rec["detections"][0]["xyxy"] == [None, 1.0, 2.0, None]
    assert rec["detections"][0]["class_name"] is None


_KILL_SCRIPT = """
import sys, numpy as np
from edgedet.sinks import SinkConfig, open_sinks
from edgedet.types import Detections, Frame, FrameResult
mot, jsonl, coco = sys.argv[1:4]
sinks = open_sinks(SinkConfig(save_mot=mot, save_json=jsonl, save_coco=coco, class_names=("a", "b")), 30.0)
rng = np.random.default_rng(0)
image = np.zeros((8, 8, 3), np.uint8)
n = 400  # ~20 kB of MOT text and ~50 kB of JSON per frame: many write(2) calls if they were buffered
i = 0
while True:
    xy = rng.uniform(0, 500, (n, 2)).astype(np.float32)
    dets = Detections(np.hstack([xy, xy + 20]), rng.uniform(0, 1, n), rng.integers(0, 2, n), np.arange(n))
    for s in sinks:
        s.write(FrameResult(Frame(image, i, i / 30.0, i, f"{i}.jpg"), dets))
    i += 1
    if i == 3:
        print("ready", flush=True)
"""


@pytest.mark.parametrize("kill_after_s", [0.05, 0.23, 0.41])
def test_killed_writer_leaves_whole_lines_and_a_valid_coco_checkpoint(
    tmp_path: Path, kill_after_s: float
) -> None:
    mot, jsonl, coco = tmp_path / "m.txt", tmp_path / "j.jsonl", tmp_path / "c.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(mot), str(jsonl), str(coco)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(kill_after_s)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    mot_text = mot.read_text()
    assert mot_text.endswith("\n")
    rows = np.loadtxt(mot, delimiter=",", ndmin=2)
    assert rows.shape[1] == 10 and rows.shape[0] % 400 == 0  # whole frames only
    json_lines = jsonl.read_text()
    assert json_lines.endswith("\n")
    records = [json.loads(line) for line in json_lines.splitlines()]
    assert [r["index"] for r in records] == list(range(len(records)))
    assert len(records) >= 3
    coco_items = json.loads(coco.read_text())  # the last checkpoint always parses
    assert isinstance(coco_items, list)
