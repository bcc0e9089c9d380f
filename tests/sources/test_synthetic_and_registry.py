"""The synthetic scene (deterministic, ground truth matches pixels) and URI resolution / error messages."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedet.errors import SourceError
from edgedet.sources import SCHEMES, SourceConfig, open_source, source_kind
from edgedet.sources.synthetic import SyntheticScene, SyntheticSpec, parse_synthetic


@pytest.mark.parametrize(
    ("uri", "spec"),
    [
        ("synthetic", SyntheticSpec()),
        ("synthetic:320x240", SyntheticSpec(width=320, height=240)),
        ("synthetic:640x480@15", SyntheticSpec(fps=15.0)),
        ("synthetic:@60", SyntheticSpec(fps=60.0)),
        ("synthetic:64x48@10,frames=5,objects=2,seed=7", SyntheticSpec(64, 48, 10.0, 5, 2, 7)),
        ("synthetic:live", SyntheticSpec(live=True)),
        ("synthetic:100x100,live", SyntheticSpec(100, 100, live=True)),
    ],
)
def test_parse_synthetic(uri: str, spec: SyntheticSpec) -> None:
    assert parse_synthetic(uri) == spec


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("synthetic:640by480", "bad synthetic size/rate in 'synthetic:640by480'"),
        ("synthetic:64x48,speed=3", "bad synthetic option 'speed=3'"),
        ("synthetic:8x8", "synthetic size 8x8 out of range"),
        ("synthetic:64x48,frames=0", "synthetic fps and frames must be positive"),
        ("synthetic:@0", "synthetic fps and frames must be positive"),
    ],
)
def test_bad_synthetic_specs(uri: str, message: str) -> None:
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_source(uri)


def test_synthetic_is_deterministic_and_moves() -> None:
    cfg = SourceConfig(max_frames=6)
    a = [f.image for f in open_source("synthetic:96x64@10,seed=3", cfg)]
    b = [f.image for f in open_source("synthetic:96x64@10,seed=3", cfg)]
    c = [f.image for f in open_source("synthetic:96x64@10,seed=4", cfg)]
    assert len(a) == 6 and a[0].shape == (64, 96, 3) and a[0].dtype == np.uint8
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[5])  # the boxes move
    frames = list(open_source("synthetic:96x64@10,frames=4", SourceConfig(loop=True, max_frames=9)))
    assert [f.source_index for f in frames] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert [f.timestamp_s for f in frames] == pytest.approx([k / 10 for k in range(9)])
    np.testing.assert_array_equal(frames[5].image, frames[1].image)


def test_synthetic_ground_truth_matches_the_pixels() -> None:
    scene = SyntheticScene(SyntheticSpec(200, 150, objects=3, seed=1))
    for i in (0, 17, 250):
        image = scene.render(i)
        gt = scene.boxes(i)
        assert len(gt) == 3 and list(gt.track_id) == [0, 1, 2]
        assert np.all(gt.xyxy[:, :2] >= 0) and np.all(gt.xyxy[:, 2] <= 200) and np.all(gt.xyxy[:, 3] <= 150)
        # the last-drawn box is on top: its inner pixels (off the border and diagonal) have its colour
        x1, y1, x2, y2 = gt.xyxy[-1].astype(int)
        assert tuple(image[y1 + 4, x2 - 5]) == scene.colors[-1]
        assert tuple(image[y2 - 2, x1 + 1]) == tuple(c // 3 for c in scene.colors[-1])  # the border is inside
        # and outside every box the background is untouched
        mask = np.zeros((150, 200), bool)
        for bx1, by1, bx2, by2 in gt.xyxy.astype(int):
            mask[by1:by2, bx1:bx2] = True
        np.testing.assert_array_equal(image[~mask], scene.background[~mask])


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("0", "camera"),
        ("12", "camera"),
        ("/dev/video2", "camera"),
        ("rtsp://10.0.0.5:8554/live", "rtsp"),
        ("RTSP://cam/stream", "rtsp"),
        ("http://cam.local/video.mjpg", "http"),
        ("https://cam.local/hls.m3u8", "https"),
        ("udp://@:5000", "udp"),
        ("v4l2src device=/dev/video0 ! videoconvert ! appsink", "gstreamer"),
        ("synthetic", "synthetic"),
        ("synthetic:640x480@30", "synthetic"),
        ("images/*.jpg", "glob"),
    ],
)
def test_source_kind(uri: str, kind: str) -> None:
    assert source_kind(uri) == kind


def test_source_kind_of_paths(tmp_path: Path) -> None:
    (tmp_path / "a.JPG").write_bytes(b"x")
    (tmp_path / "flight.mp4").write_bytes(b"x")
    (tmp_path / "odd name.mkv").write_bytes(b"x")
    assert source_kind(str(tmp_path)) == "folder"
    assert source_kind(str(tmp_path / "a.JPG")) == "image"
    assert source_kind(str(tmp_path / "flight.mp4")) == "video"
    assert source_kind(str(tmp_path / "odd name.mkv")) == "video"
    assert source_kind(f"file://{tmp_path / 'flight.mp4'}") == "video"


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(SourceError) as err:
        open_source("ftp://host/video.mp4")
    msg = str(err.value)
    assert msg.startswith("unknown source scheme 'ftp://' in 'ftp://host/video.mp4': valid are")
    for form in (
        "rtsp://",
        "http://",
        "udp://",
        "a camera index (0)",
        "/dev/videoN",
        "synthetic[:WxH]",
        "appsink",
    ):
        assert form in msg


def test_registry_is_an_explicit_dict_a_later_issue_extends() -> None:
    assert {"rtsp", "http", "https", "udp", "synthetic"} <= set(SCHEMES)
    assert not SCHEMES["synthetic"].url and SCHEMES["rtsp"].url


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="camera device paths are Linux's")
def test_missing_camera_says_what_to_try() -> None:
    index = next(i for i in range(20, 64) if not Path(f"/dev/video{i}").exists())
    with pytest.raises(SourceError) as err:
        open_source(str(index))
    assert str(err.value) == (
        f"no camera at index {index} (/dev/video{index} not found): check the cable / "
        "`v4l2-ctl --list-devices`, or try --source FILE or --source synthetic or --source demo"
    )


def test_gstreamer_pipeline_checks() -> None:
    with pytest.raises(SourceError, match="GStreamer pipeline must end in appsink, not 'autovideosink'"):
        open_source("videotestsrc ! videoconvert ! autovideosink")
    if "GStreamer:                   NO" not in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer; the missing-GStreamer message cannot be shown")
    with pytest.raises(SourceError, match=r"was built without GStreamer .* JetPack's OpenCV"):
        open_source("videotestsrc ! videoconvert ! appsink")


def test_unreachable_stream_is_retried_until_give_up_then_names_the_url() -> None:
    # Port 9 (discard) on loopback: connection refused on every attempt; the first open retries like a reopen.
    t = time.monotonic()
    with pytest.raises(SourceError) as err:
        open_source("rtsp://user:secret@127.0.0.1:9/live", SourceConfig(give_up_s=2, stall_timeout_s=1))
    assert 2.0 <= time.monotonic() - t < 3.0
    msg = str(err.value)
    assert msg.startswith("could not open rtsp://user:***@127.0.0.1:9/live within 2s (")
    assert "last error: open failed): check the URL" in msg
    assert "secret" not in msg and "rtsp_transport;tcp" in msg


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stall_timeout_s": 5.0, "give_up_s": 2.0}, "need 0 < stall_timeout_s < give_up_s"),
        ({"reconnect_backoff_s": 2.0, "reconnect_backoff_max_s": 1.0}, "need 0 < reconnect_backoff_s <="),
        ({"max_frames": 0}, "source max_frames=0 must be positive"),
        ({"fps": -1.0}, "source fps=-1.0 must be positive"),
    ],
)
def test_config_validation(kwargs: dict[str, float], message: str) -> None:
    from edgedet.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        SourceConfig(**kwargs)  # type: ignore[arg-type]
