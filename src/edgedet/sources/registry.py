"""`open_source(uri)`: turn what the user typed into a Source.

Resolution order (the first that matches wins):
1. contains `!`                          -> GStreamer pipeline (must end in appsink; needs OpenCV with GStreamer)
2. `scheme://...` or a registered name    -> SCHEMES[scheme] (rtsp/http/udp/...: FFmpeg network stream; csi;
   (`name` or `name:options`)               synthetic; demo; plugins of entry-point group `edgedet.sources`);
                                            an unknown `scheme://` lists the valid ones
3. digits                                -> camera index (`0`)
4. /dev/videoN                           -> V4L2 camera device
5. contains * ? [                        -> image glob, sorted by path
6. an existing folder / file             -> image folder (sorted by name) / image file / video file
"""

from __future__ import annotations

import glob
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2

from edgedet.errors import SourceError
from edgedet.registry import Registry
from edgedet.sources.base import Opener, Scheme, Source, SourceConfig
from edgedet.sources.files import IMAGE_SUFFIXES, ImageSequenceSource, VideoFileSource, image_folder
from edgedet.sources.live import LiveSource

# FFmpeg network streams: without these a stalled RTSP server blocks read() ~30 s (measured with PyPI's OpenCV).
FFMPEG_TIMEOUT_MS = 2000
NETWORK_HINT = (
    "check the URL, that the server is up and reachable from here (`ffprobe URL`), and the network link"
)
RTSP_TIP = "; over a lossy link try OPENCV_FFMPEG_CAPTURE_OPTIONS='rtsp_transport;tcp'"
GSTREAMER_HINT = (
    "check the pipeline runs on its own with `gst-launch-1.0` (ending in fakesink instead of appsink)"
)


_NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")


def _open_network(uri: str, config: SourceConfig) -> Source:
    parsed = urlparse(uri)
    if not parsed.netloc and parsed.scheme != "udp":
        raise SourceError(f"bad stream URL {uri!r}: expected {parsed.scheme}://HOST[:PORT]/PATH")

    def factory() -> Any:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            FFMPEG_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            FFMPEG_TIMEOUT_MS,
        ]
        return cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)

    hint = NETWORK_HINT + (RTSP_TIP if parsed.scheme.startswith("rtsp") else "")
    return LiveSource(factory, _redact(uri), config, hint=hint)


def _redact(uri: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    parsed = urlparse(uri)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return uri


def _adapt(name: str, obj: object) -> Scheme:
    """A plugin may register a Scheme, or a bare opener(uri, SourceConfig) -> Source (a `name[:options]` form)."""
    if isinstance(obj, Scheme):
        return obj
    if callable(obj):
        return Scheme(obj, f"{name}[:OPTIONS]", url=False)
    raise TypeError(f"expected a Scheme or an opener function, got {obj!r}")


NETWORK = {s: Scheme(_open_network, f"{s}://HOST[:PORT]/PATH", url=True) for s in _NETWORK_SCHEMES}

SCHEMES: Registry[Scheme] = Registry(
    "source scheme",
    "edgedet.sources",
    {
        **NETWORK,
        "csi": "edgedet.sources.csi:SCHEME",
        "synthetic": "edgedet.sources.synthetic:SCHEME",
        "demo": "edgedet.sources.demo:SCHEME",
    },
    contract="a source entry is an edgedet.sources.Scheme or a function opener(uri: str, config: SourceConfig) -> Source",
    adapt=_adapt,
)
"""Every `scheme://` and named source form, built in or from entry-point group `edgedet.sources`. Add one with
SCHEMES.register("name", Scheme(opener, "name[:options]", url=False)) or a "module:attribute" string."""


def _valid_forms() -> str:
    schemes = {k: SCHEMES[k] for k in SCHEMES}
    named = [s.usage for s in schemes.values() if not s.url]
    urls = ", ".join(f"{k}://" for k, s in schemes.items() if s.url)
    return (
        f"a camera index (0), /dev/videoN, a video or image file, an image folder or glob (images/*.jpg), "
        f"{urls}, a GStreamer pipeline ending in appsink, {', '.join(named)}"
    )


def _alternatives() -> str:
    named = " or ".join(f"--source {k}" for k in SCHEMES if not SCHEMES[k].url)
    return f"try --source FILE or {named}"


def _gstreamer_available() -> bool:
    return re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None


def _open_gstreamer(pipeline: str, config: SourceConfig) -> Source:
    last = pipeline.rsplit("!", 1)[-1].strip()
    if not last.startswith("appsink"):
        raise SourceError(
            f"GStreamer pipeline must end in appsink, not {last.split()[0] if last else 'nothing'!r}: "
            "end it with '! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false'"
        )
    if not _gstreamer_available():
        raise SourceError(
            f"this OpenCV {cv2.__version__} was built without GStreamer (PyPI's opencv-python wheels are), so a "
            "pipeline cannot run: on a Jetson use JetPack's OpenCV (`pip uninstall opencv-python "
            "opencv-python-headless` so it no longer shadows it), elsewhere build OpenCV with -DWITH_GSTREAMER=ON, "
            "or give an rtsp:// URL (read through FFmpeg)"
        )
    return LiveSource(
        lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER), pipeline, config, hint=GSTREAMER_HINT
    )


def _open_camera(target: int | str, uri: str, config: SourceConfig) -> Source:
    if isinstance(target, int):
        device = f"/dev/video{target}"
        what = f"camera at index {target}"
    else:
        device, what = target, f"camera {target}"
    on_linux = sys.platform.startswith("linux")
    if on_linux and not Path(device).exists():
        raise SourceError(
            f"no {what} ({device} not found): check the cable / `v4l2-ctl --list-devices`, or {_alternatives()}"
        )
    hint = (
        f"check {device} is not in use by another program (`fuser {device}`), that you may open it (the "
        "'video' group), and the cable / `v4l2-ctl --list-devices`"
        if on_linux
        else f"check the camera is connected and not in use by another program, or {_alternatives()}"
    )
    api = cv2.CAP_V4L2 if on_linux else cv2.CAP_ANY

    def factory() -> Any:
        cap = cv2.VideoCapture(target, api)
        if cap.isOpened():
            # A driver-side queue of old frames is exactly the lag we avoid: ask for one buffer.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if config.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
            if config.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
            if config.fps:
                cap.set(cv2.CAP_PROP_FPS, config.fps)
        return cap

    return LiveSource(factory, uri, config, fps=config.fps, hint=hint)


def source_kind(uri: str) -> str:
    """What `uri` names, without opening it: gstreamer, a SCHEMES key, camera, glob, folder, image, video.

    SourceError when it matches nothing (unknown scheme, missing path).
    """
    text = uri.strip()
    if not text:
        raise SourceError(f"empty source: give one of {_valid_forms()}")
    if "!" in text:
        return "gstreamer"
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if m:
        scheme = m.group(1).lower()
        if scheme == "file":
            return source_kind(urlparse(text).path)
        if scheme in SCHEMES and SCHEMES[scheme].url:
            return scheme
        raise SourceError(f"unknown source scheme {scheme + '://'!r} in {uri!r}: valid are {_valid_forms()}")
    name = text.split(":", 1)[0]
    if name in SCHEMES and not SCHEMES[name].url:
        return name
    if text.isdigit():
        return "camera"
    if re.fullmatch(r"/dev/video\d+", text):
        return "camera"
    if any(c in text for c in "*?["):
        return "glob"
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
    raise SourceError(
        f"no such file or folder: {uri!r} (nor a camera, URL or named source): give {_valid_forms()}"
    )


def open_source(uri: str, config: SourceConfig = SourceConfig()) -> Source:
    """Open what the user typed (`--source X` / `--camera X`) as a Source; SourceError says what to try."""
    kind = source_kind(uri)
    text = uri.strip()
    if kind == "gstreamer":
        return _open_gstreamer(text, config)
    if kind in SCHEMES:
        return SCHEMES[kind].opener(text, config)
    if text.lower().startswith("file://"):
        text = urlparse(text).path
    if kind == "camera":
        return _open_camera(int(text) if text.isdigit() else text, text, config)
    if kind == "glob":
        pattern = str(Path(text).expanduser())
        matched = sorted(Path(p) for p in glob.glob(pattern))
        images = [p for p in matched if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise SourceError(
                f"no images match {text!r} ({len(matched)} paths matched, none an image file): check the pattern"
            )
        return ImageSequenceSource(images, text, config)
    path = Path(text).expanduser()
    if kind == "folder":
        return ImageSequenceSource(image_folder(path), text, config)
    if kind == "image":
        return ImageSequenceSource([path], text, config)
    return VideoFileSource(path, config, name=text)


__all__ = ["NETWORK", "SCHEMES", "Opener", "Scheme", "open_source", "source_kind"]
