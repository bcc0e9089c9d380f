"""A deterministic synthetic scene: coloured boxes moving over a textured background, with ground truth.

Written `synthetic[:WxH][@FPS][,frames=N][,objects=K][,seed=S][,live]`, e.g. `synthetic:640x480@30`.
Frame i is a pure function of (size, objects, seed, i), so two runs see identical pixels; `live` serves the
same scene through the live-capture machinery (a paced producer, newest frame wins, drops counted).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgedet.errors import SourceError
from edgedet.sources.base import Pacer, Scheme, Source, SourceConfig, SourceStats
from edgedet.sources.live import LiveSource
from edgedet.types import Detections, Frame

USAGE = "synthetic[:WxH][@FPS][,frames=N][,objects=K][,seed=S][,live]"
_SIZE_FPS = re.compile(r"^(?:(\d+)x(\d+))?(?:@(\d+(?:\.\d*)?))?$")


@dataclass(frozen=True)
class SyntheticSpec:
    """Parsed `synthetic:...` options. frames=None: endless."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    frames: int | None = None
    objects: int = 4
    seed: int = 0
    live: bool = False


def parse_synthetic(uri: str) -> SyntheticSpec:
    """`synthetic:640x480@30,frames=300` -> SyntheticSpec; SourceError naming the bad part otherwise."""
    head, _, rest = uri.partition(":")
    if head != "synthetic":
        raise SourceError(f"{uri!r} is not a synthetic source: write {USAGE}")
    parts = [p.strip() for p in rest.split(",")] if rest else []
    values: dict[str, Any] = {}
    if parts and "=" not in parts[0] and parts[0] != "live":
        m = _SIZE_FPS.match(parts.pop(0))
        if m is None:
            raise SourceError(f"bad synthetic size/rate in {uri!r}: write {USAGE}, e.g. synthetic:640x480@30")
        if m.group(1):
            values["width"], values["height"] = int(m.group(1)), int(m.group(2))
        if m.group(3):
            values["fps"] = float(m.group(3))
    for part in parts:
        key, eq, value = part.partition("=")
        if key == "live" and not eq:
            values["live"] = True
        elif key in ("frames", "objects", "seed") and value.isdigit():
            values[key] = int(value)
        else:
            raise SourceError(f"bad synthetic option {part!r} in {uri!r}: write {USAGE}")
    spec = SyntheticSpec(**values)
    if not (16 <= spec.width <= 8192 and 16 <= spec.height <= 8192):
        raise SourceError(f"synthetic size {spec.width}x{spec.height} out of range: use 16..8192 per side")
    if not spec.fps > 0 or (spec.frames is not None and spec.frames <= 0):
        raise SourceError(f"synthetic fps and frames must be positive in {uri!r}: write {USAGE}")
    return spec


def _bounce(
    start: npt.NDArray[np.float64], velocity: npt.NDArray[np.float64], t: float, span: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Position at time t of points moving at `velocity` inside [0, span], reflecting off the walls."""
    period = 2.0 * span
    m = np.mod(start + velocity * t, period)
    return np.where(m <= span, m, period - m)


class SyntheticScene:
    """Renders frame i of the scene (HxWx3 uint8 BGR) and its ground truth boxes."""

    def __init__(self, spec: SyntheticSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        w, h = spec.width, spec.height
        # Texture: smooth colour blobs plus fine grain, so detectors and optical flow see structure.
        coarse = rng.integers(40, 200, size=(max(2, h // 32), max(2, w // 32), 3), dtype=np.uint8)
        smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        grain = rng.integers(-12, 13, size=(h, w, 1), dtype=np.int16)
        self.background = np.clip(smooth + grain, 0, 255).astype(np.uint8)
        k = spec.objects
        short = min(w, h)
        self.sizes = np.stack(
            [rng.uniform(0.08, 0.25, k) * short, rng.uniform(0.08, 0.25, k) * short], axis=1
        )
        self.span = np.array([w, h], np.float64)[None, :] - self.sizes  # top-left corner stays inside
        self.start = rng.uniform(0, 1, (k, 2)) * self.span
        speed = (
            rng.uniform(0.5, 2.0, k) * short / spec.fps / 4.0
        )  # px per frame: a quarter screen per 0.5-2 s
        angle = rng.uniform(0, 2 * np.pi, k)
        self.velocity = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]
        self.colors = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(k)]

    def boxes(self, i: int) -> Detections:
        """Ground truth of frame i: xyxy in pixels (as drawn), confidence 1, class 0, track_id = object number."""
        top_left = np.round(_bounce(self.start, self.velocity, float(i), self.span))
        xyxy = np.concatenate([top_left, top_left + np.round(self.sizes)], axis=1)
        k = self.spec.objects
        return Detections(
            xyxy.astype(np.float32),
            np.ones(k, np.float32),
            np.zeros(k, np.int32),
            np.arange(k, dtype=np.int32),
        )

    def render(self, i: int) -> npt.NDArray[np.uint8]:
        image = self.background.copy()
        for (x1, y1, x2, y2), color in zip(self.boxes(i).xyxy.astype(int), self.colors, strict=True):
            cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, thickness=-1)
            dark = tuple(c // 3 for c in color)
            # Border and diagonal stay inside [x1, x2) x [y1, y2), so the ground truth box is the drawn extent.
            cv2.rectangle(image, (x1 + 1, y1 + 1), (x2 - 2, y2 - 2), dark, thickness=2)
            cv2.line(image, (x1 + 1, y1 + 1), (x2 - 2, y2 - 2), dark, thickness=2)  # shows orientation
        return image


class SyntheticSource(Source):
    """Frames of a SyntheticScene, every one in order; timestamp_s = index / fps; source_index = scene frame."""

    is_live = False

    def __init__(
        self, spec: SyntheticSpec, config: SourceConfig = SourceConfig(), *, name: str = "synthetic"
    ) -> None:
        self.spec = spec
        self.scene = SyntheticScene(spec)
        self.name = name
        self.fps = spec.fps
        self._config = config
        self._delivered = 0
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        limit = self._config.max_frames
        length = self.spec.frames
        pacer = Pacer(self.spec.fps) if self._config.realtime else None
        while not self._closed and (limit is None or self._delivered < limit):
            i = self._delivered
            if length is not None and i >= length:
                if not self._config.loop:
                    return
                i %= length
            image = self.scene.render(i)
            if pacer is not None:
                pacer.wait()
            frame = Frame(
                image=image,
                index=self._delivered,
                timestamp_s=self._delivered / self.spec.fps,
                source_index=i,
            )
            self._delivered += 1
            yield frame

    def stats(self) -> SourceStats:
        return SourceStats(delivered=self._delivered, frames_read=self._delivered)

    def close(self) -> None:
        self._closed = True


class SyntheticCapture:
    """A capture-like producer of the scene at its frame rate on the monotonic clock (like a camera).

    read() blocks until the next frame is due and returns the scene frame for the current time, so a reader
    that falls behind skips frames exactly as a real camera's would be lost.
    """

    def __init__(self, scene: SyntheticScene, t0: float) -> None:
        self._scene = scene
        self._period_s = 1.0 / scene.spec.fps
        self._t0 = t0
        self._last = -1
        self._open = True

    def read(self) -> tuple[bool, npt.NDArray[np.uint8] | None]:
        if not self._open:
            return False, None
        now = time.monotonic()
        i = int((now - self._t0) / self._period_s)
        if i <= self._last:
            i = self._last + 1
            time.sleep(max(0.0, self._t0 + i * self._period_s - now))
        self._last = i
        frames = self._scene.spec.frames
        return True, self._scene.render(i % frames if frames else i)

    def isOpened(self) -> bool:
        return self._open

    def release(self) -> None:
        self._open = False

    def get(self, prop: int) -> float:
        return self._scene.spec.fps if prop == cv2.CAP_PROP_FPS else 0.0


def open_synthetic(uri: str, config: SourceConfig = SourceConfig()) -> Source:
    spec = parse_synthetic(uri)
    if not spec.live:
        return SyntheticSource(spec, config, name=uri)
    scene = SyntheticScene(spec)
    t0 = time.monotonic()
    return LiveSource(
        lambda: SyntheticCapture(scene, t0), uri, config, fps=spec.fps, hint="synthetic live source"
    )


#: this source form in the source registry
SCHEME = Scheme(open_synthetic, USAGE, url=False)
