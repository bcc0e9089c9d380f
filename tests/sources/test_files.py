"""Video files and image folders: every frame, in order, media-time stamps; bad inputs -> SourceError."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import shared_path

from edgedet.errors import SourceError
from edgedet.sources import SourceConfig, open_source


def write_clip(path: Path, n: int, fps: float = 25.0, hw: tuple[int, int] = (48, 64)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (hw[1], hw[0]))
    assert writer.isOpened()
    for k in range(n):
        image = np.full((*hw, 3), 6 * k, np.uint8)
        cv2.putText(image, str(k), (4, hw[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        writer.write(image)
    writer.release()
    return path


def reference_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        out.append(image)
    cap.release()
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("files") / "clip.mp4", 25)


def test_video_file_delivers_every_frame_in_order(clip: Path) -> None:
    ref = reference_frames(clip)
    assert len(ref) == 25
    with open_source(str(clip)) as src:
        frames = list(src)
        stats = src.stats()
    assert not src.is_live and src.fps == 25.0
    assert len(frames) == 25 and stats.delivered == 25 and stats.dropped == 0
    for k, frame in enumerate(frames):
        assert (frame.index, frame.source_index) == (k, k)
        assert frame.timestamp_s == pytest.approx(k / 25.0)
        np.testing.assert_array_equal(frame.image, ref[k])


def test_shared_real_clip_frame_count() -> None:
    path = shared_path("video", "people_indoor_640x368.mp4")
    with open_source(str(path)) as src:
        frames = list(src)
    assert len(frames) == 156  # README: 156 frames, 24 fps, 640x368
    assert src.fps == 24.0 and frames[0].hw == (368, 640)
    assert frames[-1].timestamp_s == pytest.approx(155 / 24)


def test_loop_restarts_and_keeps_counting(clip: Path) -> None:
    with open_source(str(clip), SourceConfig(loop=True, max_frames=60)) as src:
        frames = list(src)
    ref = reference_frames(clip)
    assert [f.index for f in frames] == list(range(60))
    assert [f.source_index for f in frames] == [k % 25 for k in range(60)]
    assert np.all(np.diff([f.timestamp_s for f in frames]) > 0)
    np.testing.assert_array_equal(frames[50].image, ref[0])


def test_realtime_paces_to_the_media_rate(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "fast.mp4", 10, fps=50.0)
    t = time.monotonic()
    with open_source(str(path), SourceConfig(realtime=True)) as src:
        n = sum(1 for _ in src)
    assert n == 10
    assert time.monotonic() - t >= 9 / 50 - 0.005  # frame 9 is due 0.18 s after frame 0


def test_max_frames_and_close_end_iteration(clip: Path) -> None:
    with open_source(str(clip), SourceConfig(max_frames=5)) as src:
        assert len(list(src)) == 5
    src = open_source(str(clip))
    it = iter(src)
    next(it)
    src.close()
    assert list(it) == []


def make_images(folder: Path, names: list[str]) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for k, name in enumerate(names):
        image = np.zeros((20, 30, 3), np.uint8)
        image[:, :, k % 3] = 40 * (k + 1)
        assert cv2.imwrite(str(folder / name), image)
        images[name] = image
    return images


def test_image_folder_sorted_by_name_with_names(tmp_path: Path) -> None:
    names = ["c.png", "a.png", "b10.png", "b2.png"]  # written out of order
    images = make_images(tmp_path / "imgs", names)
    (tmp_path / "imgs" / "labels.txt").write_text("not an image")
    with open_source(str(tmp_path / "imgs"), SourceConfig(fps=10)) as src:
        frames = list(src)
    assert [f.name for f in frames] == ["a.png", "b10.png", "b2.png", "c.png"]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.timestamp_s for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    for f in frames:
        np.testing.assert_array_equal(f.image, images[f.name])  # PNG is lossless


@pytest.mark.parametrize(
    ("pattern", "expect"),
    [("*.png", ["a.png", "b.png"]), ("b*", ["b.jpg", "b.png"]), ("?.jpg", ["b.jpg"])],
)
def test_image_glob(tmp_path: Path, pattern: str, expect: list[str]) -> None:
    make_images(tmp_path, ["b.png", "a.png", "b.jpg"])
    with open_source(str(tmp_path / pattern)) as src:
        assert [f.name for f in src] == expect


def test_single_image_file_and_loop(tmp_path: Path) -> None:
    images = make_images(tmp_path, ["one.png"])
    with open_source(str(tmp_path / "one.png")) as src:
        frames = list(src)
    assert len(frames) == 1 and frames[0].name == "one.png"
    np.testing.assert_array_equal(frames[0].image, images["one.png"])
    with open_source(str(tmp_path / "one.png"), SourceConfig(loop=True, max_frames=3)) as src:
        assert [(f.index, f.source_index) for f in src] == [(0, 0), (1, 0), (2, 0)]


@pytest.mark.parametrize(
    ("setup", "uri", "message"),
    [
        ("none", "missing.mp4", "no such file or folder: '{d}/missing.mp4'"),
        ("empty_dir", "empty", "no images in {d}/empty: expected files ending in"),
        ("none", "*.jpg", "no images match '{d}/*.jpg' (0 paths matched"),
        ("garbage_mp4", "bad.mp4", "cannot read video file {d}/bad.mp4: OpenCV could not open it"),
        ("text_png", "bad.png", "cannot decode image {d}/bad.png: not an image OpenCV reads"),
        ("empty_file", "zero.avi", "cannot read video file {d}/zero.avi"),
    ],
)
def test_bad_inputs_raise_one_line_source_error(tmp_path: Path, setup: str, uri: str, message: str) -> None:
    if setup == "empty_dir":
        (tmp_path / "empty").mkdir()
    elif setup == "garbage_mp4":
        (tmp_path / "bad.mp4").write_bytes(b"this is not a video" * 50)
    elif setup == "text_png":
        (tmp_path / "bad.png").write_text("not a png")
    elif setup == "empty_file":
        (tmp_path / "zero.avi").write_bytes(b"")
    with pytest.raises(SourceError) as err:
        src = open_source(str(tmp_path / uri))
        list(src)  # an image is decoded when it is reached
    msg = str(err.value)
    assert msg.startswith(message.format(d=tmp_path)), msg
    assert "\n" not in msg
