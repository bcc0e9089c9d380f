"""`--source demo`: a held-out drone flight from `edgedet.scenes`, rendered on the fly, with exact ground truth.

Written `demo[:frames=N][,seed=S][,split=demo|val|test][,index=I]` (e.g. `demo:frames=300,split=test`); plain `demo` is 600 frames (20 s) at 30 FPS,
640x384, of the generator's "demo" split, which no training set contains. The scene is a simulation, so frames
are rendered in order; a helper thread renders a few frames ahead (like a camera's capture thread) so that
rendering overlaps inference instead of adding to it. Frames are stamped with media time (index / fps) and,
with `realtime`, released no faster than 30 FPS.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.errors import SourceError
from edgedet.sources.base import Pacer, Scheme, Source, SourceConfig, SourceStats
from edgedet.types import Frame

USAGE = "demo[:frames=N][,seed=S][,split=demo|val|test][,index=I]"
_SPLITS = ("demo", "val", "test")  # never "train": the demo must show frames the model has not seen
_PREFETCH = 4  # frames rendered ahead; bounded so a slow consumer does not pile up memory


@dataclass(frozen=True)
class DemoSourceSpec:
    """Parsed `demo,...` options: which flight (seed, split, index) and how many frames (the scene's default
    rate and size: 30 FPS, 640x384)."""

    frames: int = 600
    seed: int = 0
    split: str = "demo"
    index: int = 0


def parse_demo(uri: str) -> DemoSourceSpec:
    """`demo:frames=300,seed=1` -> DemoSourceSpec; SourceError naming the bad part otherwise."""
    head, _, rest = uri.strip().partition(":")
    if head != "demo":
        raise SourceError(f"{uri!r} is not a demo source: write {USAGE}")
    values: dict[str, Any] = {}
    for part in (p.strip() for p in rest.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if key in ("frames", "seed", "index") and eq and value.isdigit():
            values[key] = int(value)
        elif key == "split" and value in _SPLITS:
            values[key] = value
        else:
            raise SourceError(f"bad demo option {part!r} in {uri!r}: write {USAGE}")
    spec = DemoSourceSpec(**values)
    if spec.frames < 1:
        raise SourceError(f"demo frames={spec.frames} must be 1 or more: write {USAGE}")
    return spec


class DemoSource(Source):
    """Frames of one `DemoScene` flight, every one in order; timestamp_s = index / fps.

    `scene` is the `edgedet.scenes.DemoScene` behind it (iterate it for the ground truth of the same frames).
    With `config.loop` the flight replays from the start (same pixels: the scene is deterministic).
    """

    is_live = False

    def __init__(
        self,
        spec: DemoSourceSpec = DemoSourceSpec(),
        config: SourceConfig = SourceConfig(),
        *,
        name: str = "demo",
    ) -> None:
        from edgedet.scenes import DemoScene

        self.spec = spec
        self.scene = DemoScene(seed=spec.seed, frames=spec.frames, split=spec.split, index=spec.index)
        self.name = name
        self.fps = self.scene.config.fps
        self._config = config
        self._delivered = 0
        self._stop = threading.Event()

    def _frames(self) -> Iterator[npt.NDArray[np.uint8]]:
        while True:
            for image, _gt in self.scene:
                yield image
            if not self._config.loop:
                return

    def __iter__(self) -> Iterator[Frame]:
        limit = self._config.max_frames
        fps = self.scene.config.fps
        pacer = Pacer(fps) if self._config.realtime else None
        frames: queue.Queue[npt.NDArray[np.uint8] | BaseException | None] = queue.Queue(maxsize=_PREFETCH)

        def put(item: npt.NDArray[np.uint8] | BaseException | None) -> bool:
            while not self._stop.is_set():
                try:
                    frames.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def render() -> None:
            try:
                for image in self._frames():
                    if not put(image):
                        return
                put(None)
            except BaseException as exc:  # hand the failure to the consumer instead of dying silently
                put(exc)

        worker = threading.Thread(target=render, name="edgedet-demo-render", daemon=True)
        worker.start()
        try:
            while not self._stop.is_set() and (limit is None or self._delivered < limit):
                try:
                    item = frames.get(timeout=0.1)
                except queue.Empty:
                    continue  # re-check the stop flag: close() from another thread ends the iteration
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise SourceError(f"demo scene failed to render a frame: {item}") from item
                if pacer is not None:
                    pacer.wait()
                i = self._delivered
                yield Frame(image=item, index=i, timestamp_s=i / fps, source_index=i % self.spec.frames)
                self._delivered += 1
        finally:
            self._stop.set()
            worker.join(timeout=2.0)

    def stats(self) -> SourceStats:
        return SourceStats(delivered=self._delivered, frames_read=self._delivered)

    def close(self) -> None:
        self._stop.set()


def open_demo(uri: str, config: SourceConfig = SourceConfig()) -> Source:
    """The `demo` entry of `edgedet.sources.registry.SCHEMES`."""
    return DemoSource(parse_demo(uri), config, name=uri.strip())


__all__ = ["USAGE", "DemoSource", "DemoSourceSpec", "open_demo", "parse_demo"]


#: this source form in the source registry
SCHEME = Scheme(open_demo, USAGE, url=False)
