"""End to end through the real CLI and pipeline on a real RTSP server: drop + restart, a dead server, a stall.

The scene (rtsp_scene_server.py): a moving red ball and a static green square, detected by a blob-detector
ONNX (tests/helpers/blob_model.py) that really looks at the pixels. The square never moves, so its track ID
must survive an outage shorter than --track-max-age-s; the ball restarts from the centre when the server
restarts (new media), so only "one ID per continuous segment" is meaningful for it.

Measured numbers (reconnect time, frames lost in the gap) are printed; run with -s to see them.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgedet.config import RunConfig
from edgedet.pipeline import build_pipeline
from edgedet.types import FrameResult

from .conftest import SceneServer, count_lines, start_cli, wait_for

pytestmark = pytest.mark.slow

FPS = 30.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "a partial last line"
    return [json.loads(line) for line in text.splitlines()]


def read_mot(path: Path) -> np.ndarray:
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape[1] == 10
    return rows


def gap_of(records: list[dict[str, Any]]) -> tuple[int, float]:
    """(index of the first record after the longest gap, that gap in seconds)."""
    ts = np.array([r["timestamp_s"] for r in records])
    assert np.all(np.diff(ts) > 0), "capture timestamps must increase"
    k = int(np.argmax(np.diff(ts)))
    return k + 1, float(ts[k + 1] - ts[k])


def ids_of(records: list[dict[str, Any]], class_id: int) -> list[int]:
    return [
        d["track_id"]
        for r in records
        for d in r["detections"]
        if d["class_id"] == class_id and d["track_id"] >= 0
    ]


def check_outputs(tmp: Path, frames: int | None = None) -> list[dict[str, Any]]:
    records = read_jsonl(tmp / "run.jsonl")
    if frames is not None:
        assert len(records) == frames
    assert [r["index"] for r in records] == list(range(len(records)))
    mot = read_mot(tmp / "tracks.txt")
    assert set(mot[:, 0].astype(int)) <= {r["index"] + 1 for r in records}
    coco = json.loads((tmp / "dets.json").read_text())
    assert isinstance(coco, list) and all(
        {"image_id", "bbox", "score", "category_id"} <= set(d) for d in coco
    )
    return records


def cli_args(url: str, model: Path, *extra: str) -> list[str]:
    return [
        "run", "--source", url, "--model", str(model), "--save-mot", "tracks.txt", "--save-json", "run.jsonl",
        "--save-coco", "dets.json", "--json", "summary.json", "--stall-timeout-s", "1", *extra,
    ]  # fmt: skip


def test_cli_server_restart_reconnects_keeps_static_id_and_writes_valid_outputs(
    scene_server: SceneServer, scene_model: Path, tmp_path: Path
) -> None:
    down_s = 2.0
    proc = start_cli(
        cli_args(scene_server.url, scene_model, "--max-frames", "150", "--give-up-s", "20",
                 "--track-max-age-s", "8"),
        tmp_path,
    )  # fmt: skip
    jsonl = tmp_path / "run.jsonl"
    wait_for(lambda: count_lines(jsonl) >= 60, 30, "60 frames before the drop", proc)
    scene_server.kill()
    threading.Timer(down_s, scene_server.start).start()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped_by"] == "max frames" and summary["frames"] == 150
    assert summary["reconnects"] >= 1
    records = check_outputs(tmp_path, frames=150)
    k, gap_s = gap_of(records)
    lost = round(gap_s * FPS) - 1
    print(f"\nCLI restart: reconnect gap {gap_s:.2f}s (server down {down_s}s), ~{lost} frames lost, "
          f"reconnects {summary['reconnects']}, dropped {summary['dropped_frames']}")  # fmt: skip
    assert down_s < gap_s < down_s + 1.0 + 4.0  # down, then a backoff step and an RTSP connect + probe
    before, after = records[:k], records[k:]
    # The static square: one ID for the whole run, across the outage.
    square_ids = ids_of(records, 1)
    assert len(square_ids) >= 0.9 * len(records) and set(square_ids) == {square_ids[0]}
    # The ball: detected and tracked in each continuous segment, with one ID once the connect burst is over.
    # Each (re)connect hands over ~1 s of frames FFmpeg buffered, read ~0.1 ms apart and stamped with the
    # read time: the ball jumps ~30 px per "0 s" frame, the Kalman velocity explodes and the ID switches once
    # or twice in the first second (a live.py issue, reported; see test_connect_burst_* below).
    for segment in (before, after):
        ball = ids_of(segment, 0)
        assert len(ball) >= 0.8 * len(segment)
        settled = ids_of(segment[30:], 0)
        assert len(settled) >= 0.9 * len(segment[30:]) and len(set(settled)) == 1, ids_of(segment, 0)
        print(f"ball ids in a segment of {len(segment)} frames: {sorted(set(ball))}")
    # the ball box follows the ball: it moves, and it stays ball-sized
    boxes = np.array([d["xyxy"] for r in before for d in r["detections"] if d["class_id"] == 0])
    size = boxes[:, 2:] - boxes[:, :2]
    assert np.ptp(boxes[:, 0]) > 10 and np.all((size > 30) & (size < 50))


def test_pipeline_restart_counts_downtime_and_lost_frames(
    scene_server: SceneServer, scene_model: Path, tmp_path: Path
) -> None:
    """In process, to read SourceStats (downtime_s, lost_during_gaps), which RunSummary does not carry."""
    down_s = 2.0
    pipeline = build_pipeline(
        RunConfig(
            source=scene_server.url, model=str(scene_model), stall_timeout_s=1.0, give_up_s=20.0,
            max_frames=120, save_json=str(tmp_path / "run.jsonl"), track_max_age_s=8.0,
        )
    )  # fmt: skip

    class KillAt:
        lost_frames = 0
        stop_requested = False

        def write(self, result: FrameResult) -> None:
            if result.frame.index == 45:
                scene_server.kill()
                threading.Timer(down_s, scene_server.start).start()

        def close(self) -> None:
            pass

    pipeline.sinks.append(KillAt())
    summary = pipeline.run()
    stats = pipeline.source.stats()
    records = read_jsonl(tmp_path / "run.jsonl")
    _, gap_s = gap_of(records)
    print(f"\npipeline restart: gap {gap_s:.2f}s, SourceStats downtime_s {stats.downtime_s:.2f}, "
          f"lost_during_gaps {stats.lost_during_gaps}, reconnects {stats.reconnects}, "
          f"read_failures {stats.read_failures}, dropped {stats.dropped}")  # fmt: skip
    assert summary.frames == 120 and summary.reconnects == stats.reconnects >= 1
    assert stats.read_failures >= 1
    # Downtime runs from the last frame before the failure to the first after: the gap the consumer saw.
    assert abs(stats.downtime_s - gap_s) < 0.15
    assert round(stats.downtime_s * FPS) - 2 <= stats.lost_during_gaps <= round(stats.downtime_s * FPS)


def test_cli_server_that_never_returns_ends_with_one_line_error_after_give_up(
    scene_server: SceneServer, scene_model: Path, tmp_path: Path
) -> None:
    give_up_s = 4.0
    proc = start_cli(cli_args(scene_server.url, scene_model, "--give-up-s", str(give_up_s)), tmp_path)
    jsonl = tmp_path / "run.jsonl"
    wait_for(lambda: count_lines(jsonl) >= 30, 30, "30 frames", proc)
    scene_server.kill()
    killed = time.monotonic()
    _out, err = proc.communicate(timeout=give_up_s + 20)
    ended_after = time.monotonic() - killed
    print(f"\nnever returns: run ended {ended_after:.2f}s after the kill (give up {give_up_s}s)")
    assert proc.returncode not in (0, 70), (proc.returncode, err)  # an EdgedetError's code, not a crash
    assert "Traceback" not in err and "internal error" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0]
    assert "no frame for" in errors[0] and "gave up after" in errors[0] and scene_server.url in errors[0]
    assert give_up_s - 0.5 < ended_after < give_up_s + 4.0
    records = check_outputs(tmp_path)
    assert len(records) >= 30


def test_cli_stall_without_close_is_caught_by_the_watchdog(
    scene_server: SceneServer, scene_model: Path, tmp_path: Path
) -> None:
    stall_s = 3.0
    proc = start_cli(
        cli_args(scene_server.url, scene_model, "--max-frames", "100", "--give-up-s", "20"), tmp_path
    )
    jsonl = tmp_path / "run.jsonl"
    wait_for(lambda: count_lines(jsonl) >= 40, 30, "40 frames", proc)
    scene_server.signal(signal.SIGUSR1)  # the connection stays open; no more frames
    threading.Timer(stall_s, scene_server.signal, args=(signal.SIGUSR2,)).start()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    records = check_outputs(tmp_path, frames=100)
    _, gap_s = gap_of(records)
    print(f"\nstall: gap {gap_s:.2f}s (stalled {stall_s}s), stalls {summary['stalls']}, "
          f"reconnects {summary['reconnects']}")  # fmt: skip
    assert summary["stalls"] >= 1 and summary["reconnects"] >= 1
    assert stall_s - 0.5 < gap_s < stall_s + 1.0 + 4.0


def test_connect_burst_frames_are_not_delivered_with_collapsed_timestamps(
    scene_server: SceneServer, scene_model: Path, tmp_path: Path
) -> None:
    proc = start_cli(
        cli_args(scene_server.url, scene_model, "--max-frames", "45", "--give-up-s", "20"), tmp_path
    )
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    records = read_jsonl(tmp_path / "run.jsonl")
    ts = np.array([r["timestamp_s"] for r in records])
    src = np.array([r["source_index"] for r in records])
    # stream time between delivered frames (source_index steps / 30 fps) vs their timestamps
    stream_dt = np.diff(src) / FPS
    assert np.all(np.diff(ts) >= 0.5 * stream_dt), list(
        zip(np.diff(ts).round(4), stream_dt.round(4), strict=True)
    )
    ball = ids_of(records, 0)
    assert len(set(ball)) == 1, ball
