"""Sources read frame by frame with nothing dropped: video files and image folders/globs/single images."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edgedet.errors import SourceError
from edgedet.sources.base import Pacer, Source, SourceConfig, SourceStats
from edgedet.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}
)
DEFAULT_FPS = 30.0  # media rate assumed when a file or an image folder does not say


def _unreadable_video(path: Path, why: str) -> SourceError:
    return SourceError(
        f"cannot read video file {path}: {why}; check it plays (`ffprobe {path}`) or re-encode it "
        f"(`ffmpeg -i {path.name} -c:v libx264 out.mp4`)"
    )


class VideoFileSource(Source):
    """Every frame of a video file, in order.

    Frame.index: position in the delivered stream (with `loop`, it keeps counting over passes);
    Frame.source_index: frame number inside the file; Frame.timestamp_s: index / fps (media time).
    fps: the file's own rate (CAP_PROP_FPS), else config.fps, else 30.
    """

    is_live = False

    def __init__(
        self, path: str | Path, config: SourceConfig = SourceConfig(), *, name: str | None = None
    ) -> None:
        self.path = Path(path)
        self.name = name if name is not None else str(path)
        self._config = config
        if not self.path.is_file():
            raise SourceError(f"no such video file: {self.path}: check the path")
        self._cap = self._open()
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise _unreadable_video(self.path, "it opened but no frame decoded")
        self._first: npt.NDArray[np.uint8] | None = np.asarray(first, np.uint8)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        if not (math.isfinite(fps) and 0 < fps < 1000):
            fps = config.fps or DEFAULT_FPS
            log.warning("%s: the file states no frame rate; stamping frames at %g fps", self.name, fps)
        self.fps = fps
        self._rate = fps
        self._delivered = 0
        self._closed = False

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise _unreadable_video(
                self.path, "OpenCV could not open it (not a video, corrupt, or an unknown codec)"
            )
        return cap

    def __iter__(self) -> Iterator[Frame]:
        limit = self._config.max_frames
        pacer = Pacer(self._rate) if self._config.realtime else None
        in_file = 0
        while not self._closed and (limit is None or self._delivered < limit):
            if self._first is not None:
                image, self._first = self._first, None
            else:
                ok, raw = self._cap.read()
                if not ok or raw is None:
                    if not self._config.loop or in_file == 0:
                        return
                    self._cap.release()
                    self._cap = self._open()
                    in_file = 0
                    continue
                image = np.asarray(raw, np.uint8)
            if pacer is not None:
                pacer.wait()
            frame = Frame(
                image=image,
                index=self._delivered,
                timestamp_s=self._delivered / self._rate,
                source_index=in_file,
            )
            self._delivered += 1
            in_file += 1
            yield frame

    def stats(self) -> SourceStats:
        return SourceStats(delivered=self._delivered, frames_read=self._delivered)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """Decode one image file to HxWx3 uint8 BGR; SourceError if it is not an image OpenCV can decode."""
    try:
        data = np.fromfile(
            path, dtype=np.uint8
        )  # fromfile + imdecode also handles non-ASCII paths on Windows
    except OSError as exc:
        raise SourceError(
            f"cannot read image {path}: {exc.strerror}: check the file and its permissions"
        ) from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(
            f"cannot decode image {path}: not an image OpenCV reads (corrupt or unknown format)"
        )
    return np.ascontiguousarray(image, dtype=np.uint8)


class ImageSequenceSource(Source):
    """Image files in the given order (an image folder sorted by name, a glob, or one image).

    Frame.name: the file name; Frame.index and timestamp_s: position and position / fps (fps = config.fps,
    else 30); Frame.source_index: position in the list. An image that cannot be decoded raises SourceError
    naming it (a silently skipped image would shift every later COCO image id).
    """

    is_live = False

    def __init__(self, paths: list[Path], name: str, config: SourceConfig = SourceConfig()) -> None:
        if not paths:
            raise SourceError(
                f"no images in {name}: expected files ending in {', '.join(sorted(IMAGE_SUFFIXES))}"
            )
        self.paths = list(paths)
        self.name = name
        self._rate = config.fps or DEFAULT_FPS
        self.fps = self._rate
        self._config = config
        self._delivered = 0
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        limit = self._config.max_frames
        pacer = Pacer(self._rate) if self._config.realtime else None
        while not self._closed:
            for position, path in enumerate(self.paths):
                if self._closed or (limit is not None and self._delivered >= limit):
                    return
                image = read_image(path)
                if pacer is not None:
                    pacer.wait()
                frame = Frame(
                    image=image,
                    index=self._delivered,
                    timestamp_s=self._delivered / self._rate,
                    source_index=position,
                    name=path.name,
                )
                self._delivered += 1
                yield frame
            if not self._config.loop:
                return

    def stats(self) -> SourceStats:
        return SourceStats(delivered=self._delivered, frames_read=self._delivered)

    def close(self) -> None:
        self._closed = True


def image_folder(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by file name."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )
