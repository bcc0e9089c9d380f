"""Image sinks: an annotated video file and a live OpenCV window."""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.errors import SinkError
from edgedet.sinks.base import DEFAULT_VIDEO_FPS, Sink, check_output_path
from edgedet.sinks.draw import draw_detections
from edgedet.types import FrameResult

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")


def _annotate(result: FrameResult, class_names: Sequence[str]) -> npt.NDArray[np.uint8]:
    fps = result.fps if result.fps > 0 else None
    return draw_detections(result.frame.image, result.detections, class_names, fps, result.detector_ran)


class VideoSink(Sink):
    """Annotated video through cv2.VideoWriter (fourcc 'mp4v'), readable by OpenCV and players after close().

    The frame size is taken from the first frame (later frames of another size are resized to it); `fps` is
    the rate written into the container. The writer is tried once at open time (on a scratch file next to the
    output) so a missing codec or container fails before the run starts.
    The MP4 index is written at close(), so the sink stops early when the free space on the output's
    filesystem drops below `reserve_bytes` (which must cover FFmpeg's 256 KiB write buffer) plus an estimate of
    the index and a few frames. The frames so far stay readable, instead of the encoder failing on a full disk
    and leaving a file without an index that no player opens.
    """

    flag = "--save-video"

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = DEFAULT_VIDEO_FPS,
        class_names: Sequence[str] = (),
        fourcc: str = "mp4v",
        reserve_bytes: int = 1024 * 1024,
    ) -> None:
        super().__init__()
        self.path = check_output_path(path, self.flag)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise SinkError(
                f"{self.flag} {self.path}: OpenCV picks the container from the extension and "
                f"'{self.path.suffix}' is not one it writes with {fourcc}: use a .mp4 path"
            )
        if not fps > 0:
            raise SinkError(f"{self.flag}: frame rate {fps} is not positive: pass a rate such as 30")
        self.fps = float(fps)
        self.class_names = tuple(class_names)
        self.fourcc = fourcc
        self.reserve_bytes = int(reserve_bytes)
        self.frames_written = 0
        self._writer: Any = None
        self._size_wh: tuple[int, int] | None = None
        self._warned_resize = False
        self._probe()

    def describe(self) -> str:
        return str(self.path)

    def _open_writer(self, path: Path, size_wh: tuple[int, int]) -> Any:
        import cv2

        return cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*self.fourcc), self.fps, size_wh)

    def _probe(self) -> None:
        probe = self.path.with_name(f".{self.path.stem}.probe{self.path.suffix}")
        writer = self._open_writer(probe, (64, 64))
        try:
            ok = bool(writer.isOpened())
        finally:
            writer.release()
            probe.unlink(missing_ok=True)
        if not ok:
            raise SinkError(
                f"{self.flag} {self.path}: this OpenCV cannot write '{self.fourcc}' video (cv2.VideoWriter did not "
                "open; its build has no FFmpeg video writer?): use PyPI's opencv-python(-headless) or an OpenCV "
                "built with FFmpeg"
            )

    def _free_bytes(self) -> int | None:
        if not hasattr(os, "statvfs"):
            return None
        st = os.statvfs(self.path.parent)
        return int(st.f_bavail) * int(st.f_frsize)

    def _check_space(self) -> None:
        free = self._free_bytes()
        if free is None:
            return
        size = self.path.stat().st_size if self.frames_written else 0
        avg_frame = size / self.frames_written if self.frames_written else 0.0
        # Not yet on disk: FFmpeg's write buffer (256 KiB in OpenCV's builds; the file grows in steps of it) and
        # the encoder's last frames; still to come at close: the index, a few tens of bytes per frame.
        needed = self.reserve_bytes + 4 * avg_frame + 64 * self.frames_written
        if free < needed:
            raise OSError(
                errno.ENOSPC,
                f"disk nearly full ({free} bytes left); stopped after {self.frames_written} frames so the "
                "video stays readable",
            )

    def _write(self, result: FrameResult) -> None:
        import cv2

        image = _annotate(result, self.class_names)
        h, w = image.shape[:2]
        try:
            if self._writer is None:
                self._size_wh = (w, h)
                self._check_space()
                self._writer = self._open_writer(self.path, (w, h))
                if not self._writer.isOpened():
                    self._writer = None
                    raise OSError(errno.EIO, f"cv2.VideoWriter could not open {self.path} at {w}x{h}")
            elif (w, h) != self._size_wh:
                if not self._warned_resize:
                    logger.warning(
                        "%s: frame size changed from %s to %dx%d; resizing to the first size",
                        self.flag,
                        "x".join(map(str, self._size_wh or ())),
                        w,
                        h,
                    )
                    self._warned_resize = True
                image = np.asarray(cv2.resize(image, self._size_wh, interpolation=cv2.INTER_AREA), np.uint8)
                self._check_space()
            else:
                self._check_space()
            # OpenCV 5 returns False when the frame was not written; 4.x returns None (no status to check).
            if self._writer.write(image) is False:
                raise OSError(errno.EIO, "cv2.VideoWriter.write reported a failed frame")
        except cv2.error as exc:
            raise OSError(errno.EIO, f"OpenCV error: {exc}") from exc
        self.frames_written += 1

    def _release(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.release()

    def _close(self) -> None:
        if self._writer is None and self.frames_written == 0:
            logger.info("%s: no frames were written, so %s was not created", self.flag, self.path)
        self._release()

    def _abandon(self) -> int:
        # Releasing writes the MP4 index, so the frames written so far stay playable.
        self._release()
        return 0


# Summary lines of cv2.getBuildInformation() that name a GUI backend, for builds without a "GUI:" line.
_GUI_BACKEND_LINE = re.compile(r"^\s*(GTK\+?[^:]*|QT|Qt|Win32 UI|Cocoa|WAYLAND|Wayland|Framebuffer):\s*(\S+)")


def opencv_has_gui(build_info: str) -> bool | None:
    """Whether an OpenCV build has a GUI backend, from cv2.getBuildInformation(); None when it cannot tell."""
    for line in build_info.splitlines():
        m = re.match(r"^\s*GUI:\s*(\S+)", line)
        if m:
            return m.group(1).upper() != "NONE"
    found = [m.group(2).upper() for m in map(_GUI_BACKEND_LINE.match, build_info.splitlines()) if m]
    if not found:
        return None
    return any(v.startswith("YES") or v.startswith("ON") for v in found)


_SHOW_FIX_OPENCV = (
    "pip install opencv-python instead of opencv-python-headless, or on Jetson use JetPack's OpenCV"
)


def display_problem(
    build_info: str | None = None,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """Why an OpenCV window cannot open here, as the one-line SinkError message; None when it can.

    Checks the OpenCV build for a GUI backend (PyPI's opencv-python-headless has none) and, on Linux, that
    $DISPLAY or $WAYLAND_DISPLAY is set. Arguments default to this process's OpenCV, platform and environment.
    """
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if opencv_has_gui(build_info) is False:
        return (
            "--show needs a display and OpenCV with GUI support, and this OpenCV was built without a GUI "
            f"({_SHOW_FIX_OPENCV}); use --save-video instead"
        )
    if platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return (
            "--show needs a display and OpenCV with GUI support, and no display is set ($DISPLAY and "
            "$WAYLAND_DISPLAY are empty: run it on the desktop, or over ssh -X); use --save-video instead"
        )
    return None


class DisplaySink(Sink):
    """An OpenCV window showing annotated frames (cv2.imshow + waitKey(1)).

    Pressing 'q' or Esc, or closing the window, sets `stop_requested`. Opening raises SinkError when this
    OpenCV has no GUI or there is no display (see `display_problem`).
    """

    flag = "--show"

    def __init__(self, class_names: Sequence[str] = (), window_name: str = "edgedet") -> None:
        super().__init__()
        problem = display_problem()
        if problem:
            raise SinkError(problem)
        import cv2

        self.class_names = tuple(class_names)
        self.window_name = window_name
        try:
            cv2.namedWindow(window_name, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise SinkError(
                f"--show could not open a window ({str(exc).strip().splitlines()[-1]}): check the display, or "
                "use --save-video instead"
            ) from exc

    def describe(self) -> str:
        return f"window '{self.window_name}'"

    def _write(self, result: FrameResult) -> None:
        import cv2

        try:
            cv2.imshow(self.window_name, _annotate(result, self.class_names))
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), ord("Q"), 27):
                self.stop_requested = True
            elif cv2.getWindowProperty(self.window_name, cv2.WND_PROP_VISIBLE) < 1:
                self.stop_requested = True  # the user closed the window
        except cv2.error as exc:
            raise OSError(errno.EIO, f"OpenCV window error: {exc}") from exc

    def _close(self) -> None:
        import cv2

        try:
            cv2.destroyWindow(self.window_name)
            cv2.waitKey(1)  # lets the GUI thread process the destroy event
        except cv2.error:
            pass

    def _abandon(self) -> int:
        self._close()
        return 0
