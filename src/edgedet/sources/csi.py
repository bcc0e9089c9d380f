"""Jetson cameras through GStreamer: CSI sensors (`csi://0`) via nvarguscamerasrc, and V4L2 devices via v4l2src.

Every pipeline ends in `appsink drop=1 max-buffers=1 sync=false`: the sink keeps one buffer and drops older
ones, and does not pace to the clock, so frames never queue inside GStreamer (the live reader thread then keeps
only the newest frame, as for every live source).

`csi://SENSOR_ID[?sensor_mode=N&flip=M&width=W&height=H&fps=F&out_width=W2&out_height=H2]`: query options win
over `SourceConfig` width/height/fps. The sensor mode picks the sensor's native resolution/rate
(`nvarguscamerasrc sensor-id=0 ! fakesink` lists them in its log); nvvidconv does flip/scale in hardware
before the BGR conversion, so asking for a smaller `out_width`/`out_height` is cheaper than resizing later.

These need OpenCV built with GStreamer (JetPack's OpenCV is; PyPI's opencv-python wheels are not):
`opencv_has_gstreamer()` reads `cv2.getBuildInformation()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qsl, urlparse

from edgedet.errors import ConfigError, SourceError
from edgedet.sources.base import Scheme, Source, SourceConfig

APPSINK = "appsink drop=1 max-buffers=1 sync=false"

# nvvidconv flip-method values (0..7) and the names the GStreamer element documents for them.
FLIP_METHODS: dict[str, int] = {
    "none": 0,
    "counterclockwise": 1,
    "rotate-180": 2,
    "clockwise": 3,
    "horizontal-flip": 4,
    "upper-right-diagonal": 5,
    "vertical-flip": 6,
    "upper-left-diagonal": 7,
}
V4L2_FORMATS = ("raw", "mjpeg")
CSI_USAGE = "csi://SENSOR_ID[?sensor_mode=N&flip=0..7&width=W&height=H&fps=F&out_width=W&out_height=H]"
CSI_HINT = (
    "check the sensor with `gst-launch-1.0 nvarguscamerasrc sensor-id=0 num-buffers=30 ! fakesink`, that "
    "nvargus-daemon runs (`sudo systemctl restart nvargus-daemon`), and in Docker that /tmp/argus_socket is "
    "mounted and the container runs with --runtime nvidia"
)
V4L2_HINT = (
    "check the device with `v4l2-ctl --list-formats-ext -d DEVICE` (the width/height/fps must be a listed mode; "
    "use format=mjpeg for cameras that only reach their rate compressed)"
)

_GSTREAMER_LINE = re.compile(r"^\s*GStreamer:\s*(\S.*)$", re.MULTILINE)


def opencv_has_gstreamer(build_info: str | None = None) -> bool:
    """True when OpenCV's Video I/O section says `GStreamer: YES (...)`.

    build_info: the text of `cv2.getBuildInformation()` (read from the installed cv2 when None).
    """
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    m = _GSTREAMER_LINE.search(build_info)
    return m is not None and m.group(1).strip().upper().startswith("YES")


def _no_gstreamer_message(what: str) -> str:
    import cv2

    return (
        f"{what} needs OpenCV with GStreamer, and this OpenCV {cv2.__version__} was built without it "
        "(`cv2.getBuildInformation()` says GStreamer: NO; PyPI's opencv-python wheels never have it): on a "
        "Jetson use JetPack's OpenCV (`pip uninstall opencv-python opencv-python-headless` in the venv, which "
        "must be made with --system-site-packages), see deploy/jetson/README.md"
    )


def _framerate(fps: float) -> str:
    """GStreamer fraction for a frame rate: 30 -> "30/1", 29.97 -> "30000/1001"."""
    if not fps > 0:
        raise ConfigError(f"camera fps must be positive, got {fps}")
    if abs(fps - round(fps)) < 1e-6:
        return f"{round(fps)}/1"
    # NTSC-style rates (23.976, 29.97, 59.94) are N*1000/1001 exactly; cameras advertise them that way.
    ntsc = round(fps * 1001 / 1000)
    if abs(ntsc * 1000 / 1001 - fps) < 0.006:
        return f"{ntsc * 1000}/1001"
    frac = Fraction(fps).limit_denominator(1000)
    return f"{frac.numerator}/{frac.denominator}"


def _flip_method(flip: int | str) -> int:
    if isinstance(flip, str) and not flip.strip().isdigit():
        key = flip.strip().lower()
        if key not in FLIP_METHODS:
            raise ConfigError(f"unknown flip {flip!r}: use 0..7 or one of {', '.join(FLIP_METHODS)}")
        return FLIP_METHODS[key]
    value = int(flip)
    if not 0 <= value <= 7:
        raise ConfigError(f"flip must be 0..7 (nvvidconv flip-method), got {value}")
    return value


@dataclass(frozen=True)
class CsiOptions:
    """What to ask nvarguscamerasrc for.

    sensor_id: which CSI camera (0, 1, ...). sensor_mode: the sensor's mode index (None: let Argus choose
    from width/height/fps). width, height, fps: capture size (pixels) and rate (frames/s).
    flip: nvvidconv flip-method 0..7. out_width, out_height: size delivered to edgedet after nvvidconv
    (None: same as capture).
    """

    sensor_id: int = 0
    sensor_mode: int | None = None
    width: int = 1920
    height: int = 1080
    fps: float = 30.0
    flip: int | str = 0  # 0..7 or a FLIP_METHODS name
    out_width: int | None = None
    out_height: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "height", "out_width", "out_height"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"csi {name} must be positive, got {value}")
        if self.sensor_id < 0 or (self.sensor_mode is not None and self.sensor_mode < 0):
            raise ConfigError("csi sensor_id and sensor_mode must be 0 or more")
        if (self.out_width is None) != (self.out_height is None):
            raise ConfigError("csi out_width and out_height go together: give both or neither")
        _flip_method(self.flip)
        _framerate(self.fps)


def csi_pipeline(options: CsiOptions = CsiOptions()) -> str:
    """The GStreamer pipeline string that OpenCV opens with cv2.CAP_GSTREAMER for a CSI camera.

    NVMM (GPU) buffers in NV12 from Argus -> nvvidconv (flip, scale, to BGRx in CPU memory) -> videoconvert
    (BGRx -> BGR, what OpenCV wants) -> appsink that keeps only the newest frame.
    """
    o = options
    src = f"nvarguscamerasrc sensor-id={o.sensor_id}"
    if o.sensor_mode is not None:
        src += f" sensor-mode={o.sensor_mode}"
    caps = f"video/x-raw(memory:NVMM),width={o.width},height={o.height},framerate={_framerate(o.fps)},format=NV12"
    out = "video/x-raw,format=BGRx"
    if o.out_width is not None and o.out_height is not None:
        out = f"video/x-raw,width={o.out_width},height={o.out_height},format=BGRx"
    return (
        f"{src} ! {caps} ! nvvidconv flip-method={_flip_method(o.flip)} ! {out} ! "
        f"videoconvert ! video/x-raw,format=BGR ! {APPSINK}"
    )


def v4l2_pipeline(
    device: str = "/dev/video0",
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    format: str = "raw",
) -> str:
    """A GStreamer pipeline for a V4L2 camera (USB/UVC): v4l2src -> [jpegdec] -> BGR -> appsink (newest only).

    format: "raw" (the camera's uncompressed YUV) or "mjpeg" (many USB cameras reach full rate only as MJPEG).
    Unset width/height/fps are left for the camera to choose.
    """
    if format not in V4L2_FORMATS:
        raise ConfigError(f"unknown v4l2 format {format!r}: choose one of {', '.join(V4L2_FORMATS)}")
    if not re.fullmatch(r"/dev/video\d+", device):
        raise ConfigError(f"v4l2 device must look like /dev/videoN, got {device!r}")
    fields = []
    for name, value in (("width", width), ("height", height)):
        if value is not None:
            if value <= 0:
                raise ConfigError(f"camera {name} must be positive, got {value}")
            fields.append(f"{name}={value}")
    if fps is not None:
        fields.append(f"framerate={_framerate(fps)}")
    media = "image/jpeg" if format == "mjpeg" else "video/x-raw"
    caps = ",".join([media, *fields])
    decode = " ! jpegdec" if format == "mjpeg" else ""
    return f"v4l2src device={device} ! {caps}{decode} ! videoconvert ! video/x-raw,format=BGR ! {APPSINK}"


def parse_csi_uri(uri: str, config: SourceConfig = SourceConfig()) -> CsiOptions:
    """CsiOptions from `csi://0?sensor_mode=2&flip=2` (+ SourceConfig width/height/fps where the URI is silent)."""
    parsed = urlparse(uri.strip())
    if parsed.scheme.lower() != "csi":
        raise SourceError(f"not a CSI camera URI: {uri!r}; write {CSI_USAGE}")
    sensor = (parsed.netloc or parsed.path.strip("/")) or "0"
    if not sensor.isdigit():
        raise SourceError(f"bad CSI sensor id {sensor!r} in {uri!r}: write {CSI_USAGE}")
    query: dict[str, Any] = {}
    allowed = ("sensor_mode", "flip", "width", "height", "fps", "out_width", "out_height")
    for key, value in parse_qsl(parsed.query, keep_blank_values=True):
        k = key.replace("-", "_")
        if k not in allowed:
            raise SourceError(f"unknown CSI option {key!r} in {uri!r}: valid are {', '.join(allowed)}")
        try:
            query[k] = value if k == "flip" else float(value) if k == "fps" else int(value)
        except ValueError:
            raise SourceError(f"CSI option {key}={value!r} in {uri!r} is not a number") from None
    defaults = CsiOptions()
    try:
        return CsiOptions(
            sensor_id=int(sensor),
            sensor_mode=query.get("sensor_mode"),
            width=query.get("width", config.width or defaults.width),
            height=query.get("height", config.height or defaults.height),
            fps=query.get("fps", config.fps or defaults.fps),
            flip=_flip_method(query.get("flip", 0)),
            out_width=query.get("out_width"),
            out_height=query.get("out_height"),
        )
    except ConfigError as exc:
        raise SourceError(f"{uri!r}: {exc}") from None


def open_csi(uri: str, config: SourceConfig = SourceConfig()) -> Source:
    """Open `csi://...` as a live source (an `Opener` for the sources registry). SourceError without GStreamer."""
    import cv2

    from edgedet.sources.live import LiveSource

    options = parse_csi_uri(uri, config)
    if not opencv_has_gstreamer():
        raise SourceError(_no_gstreamer_message(f"CSI camera {uri}"))
    pipeline = csi_pipeline(options)
    return LiveSource(
        lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER), uri, config, fps=options.fps, hint=CSI_HINT
    )


def open_v4l2_gstreamer(device: str, config: SourceConfig = SourceConfig(), format: str = "raw") -> Source:
    """Open /dev/videoN through GStreamer (v4l2src) as a live source; SourceError when OpenCV lacks GStreamer."""
    import cv2

    from edgedet.sources.live import LiveSource

    if not opencv_has_gstreamer():
        raise SourceError(
            _no_gstreamer_message(f"camera {device} through GStreamer")
            + "; or open it through OpenCV's V4L2 backend (--camera /dev/videoN without GStreamer)"
        )
    pipeline = v4l2_pipeline(device, config.width, config.height, config.fps, format)
    return LiveSource(
        lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER), device, config, fps=config.fps, hint=V4L2_HINT
    )


__all__ = [
    "APPSINK",
    "CSI_USAGE",
    "FLIP_METHODS",
    "CsiOptions",
    "csi_pipeline",
    "open_csi",
    "open_v4l2_gstreamer",
    "opencv_has_gstreamer",
    "parse_csi_uri",
    "v4l2_pipeline",
]


#: this source form in the source registry
SCHEME = Scheme(open_csi, CSI_USAGE, url=True)
