"""Jetson camera pipelines: exact GStreamer strings, URI parsing, and the OpenCV-without-GStreamer error."""

from __future__ import annotations

import cv2
import pytest

from edgedet.errors import ConfigError, SourceError
from edgedet.sources.base import SourceConfig
from edgedet.sources.csi import (
    APPSINK,
    CsiOptions,
    csi_pipeline,
    open_csi,
    open_v4l2_gstreamer,
    opencv_has_gstreamer,
    parse_csi_uri,
    v4l2_pipeline,
)

TAIL = "videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1 sync=false"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            CsiOptions(),
            "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1,"
            f"format=NV12 ! nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! {TAIL}",
        ),
        (
            CsiOptions(sensor_id=1, sensor_mode=4, width=1280, height=720, fps=60, flip=2),
            "nvarguscamerasrc sensor-id=1 sensor-mode=4 ! video/x-raw(memory:NVMM),width=1280,height=720,"
            f"framerate=60/1,format=NV12 ! nvvidconv flip-method=2 ! video/x-raw,format=BGRx ! {TAIL}",
        ),
        (
            CsiOptions(width=3264, height=2464, fps=21, flip="vertical-flip", out_width=816, out_height=616),
            "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=3264,height=2464,framerate=21/1,"
            f"format=NV12 ! nvvidconv flip-method=6 ! video/x-raw,width=816,height=616,format=BGRx ! {TAIL}",
        ),
        (
            CsiOptions(fps=29.97),
            "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1920,height=1080,"
            f"framerate=30000/1001,format=NV12 ! nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! {TAIL}",
        ),
    ],
)
def test_csi_pipeline(options: CsiOptions, expected: str) -> None:
    assert csi_pipeline(options) == expected
    assert csi_pipeline(options).endswith(APPSINK)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("/dev/video0",), f"v4l2src device=/dev/video0 ! video/x-raw ! {TAIL}"),
        (
            ("/dev/video1", 1280, 720, 30),
            f"v4l2src device=/dev/video1 ! video/x-raw,width=1280,height=720,framerate=30/1 ! {TAIL}",
        ),
        (
            ("/dev/video2", 1920, 1080, 30, "mjpeg"),
            f"v4l2src device=/dev/video2 ! image/jpeg,width=1920,height=1080,framerate=30/1 ! jpegdec ! {TAIL}",
        ),
        (
            ("/dev/video0", None, None, 15),
            f"v4l2src device=/dev/video0 ! video/x-raw,framerate=15/1 ! {TAIL}",
        ),
    ],
)
def test_v4l2_pipeline(args: tuple, expected: str) -> None:
    assert v4l2_pipeline(*args) == expected


@pytest.mark.parametrize(
    ("uri", "config", "expected"),
    [
        ("csi://0", SourceConfig(), CsiOptions()),
        ("csi://1", SourceConfig(width=1280, height=720, fps=60), CsiOptions(1, None, 1280, 720, 60.0)),
        (
            "csi://0?sensor_mode=2&flip=rotate-180&fps=30",
            SourceConfig(fps=60),
            CsiOptions(0, 2, 1920, 1080, 30.0, 2),
        ),
        (
            "csi://0?width=1640&height=1232&out-width=820&out_height=616",
            SourceConfig(),
            CsiOptions(0, None, 1640, 1232, 30.0, 0, 820, 616),
        ),
    ],
)
def test_parse_csi_uri(uri: str, config: SourceConfig, expected: CsiOptions) -> None:
    assert parse_csi_uri(uri, config) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("csi://front", "bad CSI sensor id 'front'"),
        ("csi://0?exposure=3", "unknown CSI option 'exposure'"),
        ("csi://0?fps=fast", "CSI option fps='fast'"),
        ("csi://0?flip=9", "flip must be 0..7"),
        ("csi://0?flip=mirror", "unknown flip 'mirror'"),
        ("csi://0?out_width=640", "out_width and out_height go together"),
        ("csi://0?width=0", "csi width must be positive"),
        ("rtsp://cam/0", "not a CSI camera URI"),
    ],
)
def test_parse_csi_uri_errors(uri: str, message: str) -> None:
    with pytest.raises(SourceError, match=message.replace("?", r"\?").replace("(", r"\(")):
        parse_csi_uri(uri)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: v4l2_pipeline("/dev/video0", format="h264"), "unknown v4l2 format 'h264'"),
        (lambda: v4l2_pipeline("video0"), "must look like /dev/videoN"),
        (lambda: v4l2_pipeline("/dev/video0", width=-1), "camera width must be positive"),
        (lambda: v4l2_pipeline("/dev/video0", fps=0), "camera fps must be positive"),
    ],
)
def test_v4l2_pipeline_errors(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()  # type: ignore[operator]


# Video I/O sections as OpenCV prints them (JetPack 6's OpenCV 4.8 and a PyPI wheel).
JETPACK_INFO = """
  Video I/O:
    FFMPEG:                      YES
      avcodec:                   YES (58.54.100)
    GStreamer:                   YES (1.20.3)
    v4l/v4l2:                    YES (linux/videodev2.h)
"""
PYPI_INFO = """
  Video I/O:
    DC1394:                      NO
    FFMPEG:                      YES
    GStreamer:                   NO
    v4l/v4l2:                    YES (linux/videodev2.h)
"""


@pytest.mark.parametrize(("info", "expected"), [(JETPACK_INFO, True), (PYPI_INFO, False), ("", False)])
def test_opencv_has_gstreamer_parses_build_info(info: str, expected: bool) -> None:
    assert opencv_has_gstreamer(info) is expected


def test_opencv_has_gstreamer_reads_the_installed_cv2() -> None:
    info = cv2.getBuildInformation()
    assert opencv_has_gstreamer() is ("GStreamer:" in info and opencv_has_gstreamer(info))


def test_open_csi_without_gstreamer_says_so_plainly() -> None:
    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(SourceError) as info:
        open_csi("csi://0?sensor_mode=2")
    msg = str(info.value)
    assert "CSI camera csi://0?sensor_mode=2 needs OpenCV with GStreamer" in msg
    assert f"this OpenCV {cv2.__version__} was built without it" in msg
    assert "JetPack's OpenCV" in msg and "\n" not in msg
    with pytest.raises(SourceError, match="camera /dev/video0 through GStreamer needs OpenCV with GStreamer"):
        open_v4l2_gstreamer("/dev/video0")
