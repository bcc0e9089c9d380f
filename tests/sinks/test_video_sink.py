"""VideoSink: the mp4 reads back with OpenCV with the right frame count, size, rate and box colours."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.errors import SinkError
from edgedet.sinks import VideoSink
from edgedet.sinks.draw import PALETTE

from .conftest import MakeResult


def _read_back(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"OpenCV cannot open {path}"
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames, fps


def test_video_reads_back_with_frame_count_size_fps_and_colour(
    tmp_path: Path, make_result: MakeResult
) -> None:
    path = tmp_path / "out" / "video.mp4"
    n = 12
    with VideoSink(path, fps=15.0, class_names=("person",)) as sink:
        for i in range(n):
            sink.write(make_result(i, [[60, 80, 200, 220]], [0.9], [0], [5], hw=(240, 320), fps=15.0))
    assert sink.frames_written == n and sink.lost_frames == 0
    frames, fps = _read_back(path)
    assert len(frames) == n
    assert frames[0].shape == (240, 320, 3)
    assert fps == pytest.approx(15.0)
    # The box's left edge (2 px wide) in track 5's colour survives lossy compression within a few levels;
    # the grey background stays grey.
    edge = frames[-1][140:160, 60:62].reshape(-1, 3).astype(int).mean(axis=0)
    np.testing.assert_allclose(edge, PALETTE[5], atol=25)
    np.testing.assert_allclose(frames[-1][150, 130].astype(int), [128, 128, 128], atol=6)


def test_frames_of_another_size_are_resized_not_dropped(tmp_path: Path, make_result: MakeResult) -> None:
    path = tmp_path / "video.mp4"
    with VideoSink(path, fps=10.0) as sink:
        for i in range(6):
            sink.write(make_result(i, hw=(240, 320) if i % 2 == 0 else (120, 200)))
    frames, _ = _read_back(path)
    assert len(frames) == 6
    assert {f.shape for f in frames} == {(240, 320, 3)}


@pytest.mark.parametrize("name", ["video.txt", "video"])
def test_suffix_opencv_cannot_write_fails_at_open(tmp_path: Path, name: str) -> None:
    with pytest.raises(SinkError, match=r"use a \.mp4 path"):
        VideoSink(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_unknown_codec_fails_at_open_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="cannot write 'zzzz' video"):
        VideoSink(tmp_path / "v.mp4", fourcc="zzzz")
    assert list(tmp_path.iterdir()) == []  # the probe file is removed


def test_close_without_frames_writes_nothing_and_does_not_raise(tmp_path: Path) -> None:
    sink = VideoSink(tmp_path / "v.mp4")
    sink.close()
    sink.close()
    assert not (tmp_path / "v.mp4").exists()
    assert sink.lost_frames == 0
