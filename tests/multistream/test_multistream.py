"""Several streams through one model: batching, per-stream state and outputs, a dead stream beside live ones."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.helpers.batch_model import brightness_model, expected_cx

from edgedet.cli import main
from edgedet.config import RunConfig, build_config
from edgedet.errors import ConfigError, SourceError
from edgedet.multistream import MultiStreamRunner, StreamParts, build_multistream, read_streams_file
from edgedet.scheduler import EveryN
from edgedet.sources.base import SourceStats
from edgedet.types import Frame, FrameResult

LEVELS = {"a": [40, 60, 80, 100, 120, 140], "b": [230, 210, 190, 170, 150, 130]}


def _folder(root: Path, name: str, levels: list[int]) -> Path:
    folder = root / name
    folder.mkdir()
    for i, v in enumerate(levels):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((64, 64, 3), v, np.uint8))  # png: exact pixels
    return folder


def _read_json(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _cfg(model: Path, tmp_path: Path, **kw) -> RunConfig:
    return build_config(
        RunConfig, None, model=str(model), save_json=str(tmp_path / "out" / "{stream}.jsonl"), conf=0.5, **kw
    )


@pytest.mark.parametrize("batch", ["batch", 1, 4])
def test_each_stream_gets_its_own_frames_answers_batched_or_not(tmp_path, batch):
    model = brightness_model(tmp_path / "m.onnx", batch=batch)
    srcs = [str(_folder(tmp_path, k, v)) for k, v in LEVELS.items()]
    runner = build_multistream(_cfg(model, tmp_path, track=False), srcs, batch_window_s=0.5)
    summary = runner.run()
    for name, levels in zip(("s0", "s1"), LEVELS.values(), strict=True):
        rows = _read_json(tmp_path / "out" / f"{name}.jsonl")
        assert len(rows) == len(levels)
        for row, v in zip(rows, levels, strict=True):
            (det,) = row["detections"]
            x1, _y1, x2, _y2 = det["xyxy"]
            assert (x1 + x2) / 2 == pytest.approx(expected_cx(np.full((64, 64, 3), v, np.uint8)), abs=0.01)
    assert summary.frames == 12 and summary.inferred_frames == 12
    if batch == 1:
        assert summary.infer_calls == 12 and "batch 1" in summary.batch_note
    else:  # both folders are ready together: one call per pair of frames (a fixed batch 4 padded); the first
        # frame may go alone when the other folder opens after it (a stream not yet open is not waited for)
        assert summary.infer_calls in (6, 7) and summary.batch_note == ""


def test_skipped_frames_stay_out_of_the_batch(tmp_path):
    model = brightness_model(tmp_path / "m.onnx")
    srcs = [str(_folder(tmp_path, k, v)) for k, v in LEVELS.items()]
    runner = build_multistream(
        _cfg(model, tmp_path, detect_every=3, track_min_hits=0), srcs, batch_window_s=0.5
    )
    summary = runner.run()
    assert [s.detector_runs for s in summary.streams] == [2, 2]
    assert [s.track_only_frames for s in summary.streams] == [4, 4]
    assert summary.inferred_frames == 4 and summary.infer_calls in (2, 3, 4)
    rows = _read_json(tmp_path / "out" / "s0.jsonl")
    assert [r["detector_ran"] for r in rows] == [True, False, False, True, False, False]


def test_a_stream_that_never_opens_does_not_stop_the_others(tmp_path):
    model = brightness_model(tmp_path / "m.onnx")
    good = str(_folder(tmp_path, "a", LEVELS["a"]))
    runner = build_multistream(_cfg(model, tmp_path), [str(tmp_path / "missing.mp4"), good])
    summary = runner.run()
    dead, live = summary.streams
    assert dead.failed and "missing.mp4" in dead.status and dead.frames == 0
    assert live.status == "ended" and live.frames == 6
    assert len(_read_json(tmp_path / "out" / "s1.jsonl")) == 6
    assert not (tmp_path / "out" / "s0.jsonl").exists()
    assert "[s0]" in summary.format() and "failed" in summary.format()


class _DiesAfter:
    """A live-like Source that delivers `n` frames, then fails as a camera that gave up does."""

    is_live = True
    fps = 50.0

    def __init__(self, n: int, value: int) -> None:
        self.n, self.value, self.closed = n, value, threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        import time

        for i in range(self.n):
            if self.closed.is_set():
                return
            time.sleep(0.02)
            yield Frame(np.full((64, 64, 3), self.value, np.uint8), i, time.monotonic())
        raise SourceError("camera gone for 30 s: gave up")

    def stats(self) -> SourceStats:
        return SourceStats(delivered=self.n)

    def close(self) -> None:
        self.closed.set()


class _Collect:
    lost_frames = 0
    stop_requested = False

    def __init__(self) -> None:
        self.results: list[FrameResult] = []

    def write(self, result: FrameResult) -> None:
        self.results.append(result)

    def close(self) -> None:
        pass


def test_a_stream_that_dies_mid_run_leaves_the_others_running(tmp_path):
    from edgedet.detector import open_detector

    det = open_detector(brightness_model(tmp_path / "m.onnx"))
    sinks = {"dies": _Collect(), "lives": _Collect()}
    streams = [
        (name, name, (lambda n=n, v=v: _DiesAfter(n, v)),
         (lambda _src, name=name: StreamParts(None, [sinks[name]], None, [])), EveryN(1))
        for name, n, v in (("dies", 5, 50), ("lives", 40, 200))
    ]  # fmt: skip
    summary = MultiStreamRunner(det, streams).run()
    dies, lives = summary.streams
    assert dies.status == "failed: camera gone for 30 s: gave up" and dies.frames == 5
    assert lives.status.startswith("failed") and lives.frames == 40  # it delivered every frame it had
    assert len(sinks["lives"].results) == 40
    cx = [r.detections.xyxy[0, [0, 2]].mean() for r in sinks["lives"].results]
    assert cx == pytest.approx([expected_cx(np.full((64, 64, 3), 200, np.uint8))] * 40, abs=0.01)


def test_outputs_need_the_stream_placeholder(tmp_path):
    model = brightness_model(tmp_path / "m.onnx")
    cfg = build_config(RunConfig, None, model=str(model), save_mot=str(tmp_path / "t.txt"))
    with pytest.raises(ConfigError, match=r"put \{stream\} in it"):
        build_multistream(cfg, ["a", "b"])


def test_streams_file(tmp_path):
    f = tmp_path / "cams.streams"
    f.write_text("# two cameras\nrtsp://a/1\n\n  rtsp://b/2  \n")
    assert read_streams_file(f) == ["rtsp://a/1", "rtsp://b/2"]
    (tmp_path / "empty.streams").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="lists no source"):
        read_streams_file(tmp_path / "empty.streams")


def test_cli_streams_file_and_json_summary(tmp_path, capsys):
    model = brightness_model(tmp_path / "m.onnx")
    f = tmp_path / "two.streams"
    f.write_text(
        "\n".join(str(_folder(tmp_path, k, v)) for k, v in LEVELS.items()) + f"\n{tmp_path}/nope.mp4\n"
    )
    out = tmp_path / "summary.json"
    rc = main(["run", "--source", str(f), "--model", str(model), "--no-track",
               "--save-mot", str(tmp_path / "mot" / "{stream}.txt"), "--json", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads(out.read_text())
    assert [s["status"] for s in report["streams"]][:2] == ["ended", "ended"]
    assert report["streams"][2]["status"].startswith("failed: no such file")
    assert [s["frames"] for s in report["streams"]] == [6, 6, 0]
    assert len((tmp_path / "mot" / "s1.txt").read_text().splitlines()) == 6
    text = capsys.readouterr().out
    assert "3 streams" in text and "[s2]" in text


def test_cli_one_failed_stream_of_one_is_an_error(tmp_path, capsys):
    model = brightness_model(tmp_path / "m.onnx")
    rc = main(["run", "--source", str(tmp_path / "x.mp4"), "--source", str(tmp_path / "y.mp4"),
               "--model", str(model)])  # fmt: skip
    assert rc == 1


def test_demo_run_folder_gets_one_subfolder_per_stream(tmp_path):
    model = brightness_model(tmp_path / "m.onnx")
    cfg = build_config(
        RunConfig, None, model=str(model), source="demo:frames=3", run_dir=str(tmp_path / "run")
    )
    runner = build_multistream(cfg, ["demo:frames=3", "demo:frames=3,seed=5"])
    summary = runner.run()
    assert [s.frames for s in summary.streams] == [3, 3]
    for name in ("s0", "s1"):
        assert sorted(p.name for p in (tmp_path / "run" / name).iterdir()) == [
            "detections.jsonl",
            "tracks.txt",
            "video.mp4",
        ]


def test_demo_source_closed_from_another_thread_ends_its_iteration():
    """The batcher closes a stream's source from its own thread (max frames, Ctrl-C): the reader must return."""
    import time

    from edgedet.sources import SourceConfig, open_source

    src = open_source("demo", SourceConfig(realtime=False))  # unpaced: the reader waits on the renderer
    got: list[int] = []
    t = threading.Thread(target=lambda: got.extend(f.index for f in src), daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    src.close()
    t.join(timeout=5)
    assert got and not t.is_alive()
