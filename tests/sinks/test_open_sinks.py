"""open_sinks: the sinks a config asks for; every output is checked before anything is opened."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edgedet.errors import ConfigError, SinkError
from edgedet.sinks import CocoSink, JsonLinesSink, MotSink, SinkConfig, VideoSink, display_problem, open_sinks
from edgedet.sinks.base import check_output_path, resolve_fps

from .conftest import MakeResult


def test_opens_each_requested_sink_in_order(tmp_path: Path, make_result: MakeResult) -> None:
    cfg = SinkConfig(
        save_video=str(tmp_path / "a" / "v.mp4"),
        save_mot=str(tmp_path / "b" / "m.txt"),
        save_json=str(tmp_path / "c" / "j.jsonl"),
        save_coco=str(tmp_path / "d" / "c.json"),
        class_names=("x",),
    )
    sinks = open_sinks(cfg, source_fps=12.0)
    assert [type(s) for s in sinks] == [VideoSink, MotSink, JsonLinesSink, CocoSink]
    assert isinstance(sinks[0], VideoSink) and sinks[0].fps == 12.0
    for s in sinks:
        s.write(make_result(0, [[1, 2, 3, 4]], [0.5], [0], [1]))
        s.close()
        assert s.lost_frames == 0
    for p in ("a/v.mp4", "b/m.txt", "c/j.jsonl", "d/c.json"):
        assert (tmp_path / p).stat().st_size > 0


def test_nothing_requested_opens_nothing() -> None:
    assert open_sinks(SinkConfig(), None) == []


@pytest.mark.parametrize(
    ("video_fps", "source_fps", "expected"),
    [(None, 25.0, 25.0), (10.0, 25.0, 10.0), (None, None, 30.0), (None, 0.0, 30.0), (None, math.nan, 30.0)],
)
def test_resolve_fps(video_fps: float | None, source_fps: float | None, expected: float) -> None:
    assert resolve_fps(video_fps, source_fps) == expected


@pytest.mark.parametrize("bad", [0.0, -5.0, math.nan, math.inf])
def test_bad_video_fps_is_a_config_error(tmp_path: Path, bad: float) -> None:
    with pytest.raises(ConfigError, match="--video-fps"):
        open_sinks(SinkConfig(save_video=str(tmp_path / "v.mp4"), video_fps=bad), 30.0)


def test_two_outputs_sharing_a_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--save-mot and --save-json both write"):
        open_sinks(
            SinkConfig(save_mot=str(tmp_path / "x.txt"), save_json=str(tmp_path / "." / "x.txt")), None
        )


def _read_only_dir(tmpfs: Callable[..., Path]) -> Path:
    return tmpfs(64, read_only=True)


def _under_a_file(tmp: Path) -> Path:
    (tmp / "f").write_text("")
    return tmp / "f" / "out.txt"


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda tmp, fs: tmp, "is a directory: pass a file path inside it"),
        (lambda tmp, fs: _under_a_file(tmp), "a file is in the way"),
        (lambda tmp, fs: _read_only_dir(fs) / "out.txt", "is not writable"),
        (lambda tmp, fs: _read_only_dir(fs) / "sub" / "out.txt", "cannot create directory"),
    ],
    ids=["directory", "parent-is-file", "read-only-fs", "read-only-parent"],
)
def test_unwritable_path_fails_at_open_naming_path(
    tmp_path: Path,
    tmpfs: Callable[..., Path],
    setup: Callable[[Path, Callable[..., Path]], Path],
    match: str,
) -> None:
    bad = setup(tmp_path, tmpfs)
    with pytest.raises(SinkError, match=match) as info:
        check_output_path(bad, "--save-mot")
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_a_bad_path_fails_before_any_other_file_is_created(tmp_path: Path) -> None:
    cfg = SinkConfig(
        save_mot=str(tmp_path / "m.txt"), save_coco=str(tmp_path), save_video=str(tmp_path / "v.mp4")
    )
    with pytest.raises(SinkError, match="--save-coco"):
        open_sinks(cfg, None)
    assert list(tmp_path.iterdir()) == []


def test_bad_video_suffix_fails_before_other_files(tmp_path: Path) -> None:
    cfg = SinkConfig(save_mot=str(tmp_path / "m.txt"), save_video=str(tmp_path / "v.gif"))
    with pytest.raises(SinkError, match=r"use a \.mp4 path"):
        open_sinks(cfg, None)
    assert list(tmp_path.iterdir()) == []


def test_show_without_gui_fails_before_other_files(tmp_path: Path) -> None:
    if display_problem() is None:
        pytest.skip("this machine can show a window")
    with pytest.raises(SinkError, match="--show needs a display"):
        open_sinks(SinkConfig(show=True, save_mot=str(tmp_path / "m.txt")), None)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_overwritten_not_appended(tmp_path: Path, make_result: MakeResult) -> None:
    path = tmp_path / "m.txt"
    path.write_text("old,line\n")
    with MotSink(path, tracking=False) as sink:
        sink.write(make_result(0, [[0, 0, 1, 1]], [0.5], [0]))
    assert path.read_text().splitlines() == ["1,-1,1.00,1.00,1.00,1.00,0.5000,-1,-1,-1"]


def test_writes_after_close_are_counted_not_raised(tmp_path: Path, make_result: MakeResult) -> None:
    sinks = open_sinks(
        SinkConfig(save_mot=str(tmp_path / "m.txt"), save_json=str(tmp_path / "j.jsonl")), None
    )
    for s in sinks:
        s.write(make_result(0, [[0, 0, 1, 1]], [0.5], [0], [1]))
        s.close()
        s.write(make_result(1, [[0, 0, 1, 1]], [0.5], [0], [1]))
        s.write(make_result(2, [[0, 0, 1, 1]], [0.5], [0], [1]))
        assert s.lost_frames == 2
    assert len((tmp_path / "m.txt").read_text().splitlines()) == 1
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 1


def test_context_manager_closes_on_error(tmp_path: Path, make_result: MakeResult) -> None:
    path = tmp_path / "c.json"
    with pytest.raises(RuntimeError), CocoSink(path, checkpoint_frames=10**6, checkpoint_s=1e9) as sink:
        sink.write(make_result(0, [[0, 0, 1, 1]], [0.5], [0], [1]))
        raise RuntimeError("pipeline stage failed")
    assert sink.closed
    assert len(json.loads(path.read_text())) == 1


def test_import_does_not_load_opencv() -> None:
    # Nothing happens at import time: OpenCV (and any GUI backend) loads when a sink first needs it.
    code = "import sys, edgedet.sinks; assert 'cv2' not in sys.modules, 'cv2 imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
