"""The stage contracts: what a Source, a Backend, a Tracker and a Sink must provide to be wired by the pipeline.

These are structural (typing.Protocol): a plugin does not have to subclass anything, only to have these
members. The built-in classes (`sources.base.Source`, `backends.base.Backend`, `tracking.SortTracker`,
`sinks.base.Sink`) meet them; `isinstance(x, Sink)` checks that the members exist (not their signatures).
How to register one of your own: docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from edgedet.types import Detections, Frame, FrameResult

if TYPE_CHECKING:
    from edgedet.sources.base import SourceStats
    from edgedet.spec import ModelSpec

__all__ = ["Backend", "Sink", "Source", "Tracker"]


@runtime_checkable
class Source(Protocol):
    """An iterator of Frame (HxWx3 uint8 BGR, index, timestamp_s), iterated once.

    is_live: True for cameras and streams (newest frame wins; timestamp_s on time.monotonic()), False for files
    and generated scenes (every frame in order; media-time stamps). fps: nominal rate, None when unknown.
    stats(): a SourceStats snapshot (delivered, dropped, reconnects, stalls, downtime_s, ...). close():
    idempotent; ends an iteration in progress.
    """

    is_live: bool
    fps: float | None

    def __iter__(self) -> Iterator[Frame]: ...

    def stats(self) -> SourceStats: ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A loaded model: a context manager whose one verb, `infer`, maps a (B, 3, H, W) float32 tensor laid out as
    `spec` says to the raw outputs in the model's output order (possibly reused buffers: copy what you keep)."""

    spec: ModelSpec
    model_path: Path

    @property
    def description(self) -> str: ...

    def infer(self, tensor: npt.NDArray[np.float32]) -> Sequence[npt.NDArray[np.floating[Any]]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> Any: ...


@runtime_checkable
class Tracker(Protocol):
    """Gives detections identities across frames; lifetimes in seconds (timestamp_s of each frame).

    update(): a detector frame; returns the tracks to report now (Detections with track_id >= 0).
    predict(): a frame the detector skipped; returns the tracks' predicted boxes. warp: an optional 2x3 affine
    (previous frame -> this frame) from camera-motion compensation, applied to every track before matching.
    Exactly one of the two is called per frame. reset(): forget every track.
    """

    def update(self, dets: Detections, timestamp_s: float, warp: Any = None) -> Detections: ...

    def predict(self, timestamp_s: float, warp: Any = None) -> Detections: ...

    def reset(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Where results go. write() gets every FrameResult in order and must not raise for I/O trouble: count the
    frame in `lost_frames` instead (the run goes on). stop_requested: True asks the run to end (a closed window).
    close(): flush and release; idempotent. (The files a run wrote are listed from the sink requests, see
    `sinks.factory.SinkKind.writes_file`, not read from the sinks.)"""

    lost_frames: int
    stop_requested: bool

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...
