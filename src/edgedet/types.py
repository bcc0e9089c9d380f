"""The two values that flow through the pipeline: a captured Frame and a set of Detections."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Frame:
    """One captured image.

    image: HxWx3 uint8, BGR (OpenCV's order).
    index: 0-based position in the source (for files, the frame number; for live sources, the count of
        frames delivered, so gaps from dropped frames show as jumps in `source_index`, not here).
    timestamp_s: capture time on the `time.monotonic()` clock for live sources; the media time
        (index / fps) for files, image folders and synthetic sources.
    source_index: the frame's index as the source numbered it (includes frames dropped before delivery).
    name: a file name for image folders (used for COCO image ids), else "".
    """

    image: npt.NDArray[np.uint8]
    index: int
    timestamp_s: float
    source_index: int = -1
    name: str = ""

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def _f32(a: Any, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32).reshape(shape))


@dataclass(frozen=True)
class Detections:
    """Parallel arrays, one row per detection.

    xyxy: (N, 4) float32, frame pixels, x1 y1 x2 y2.
    confidence: (N,) float32 in [0, 1].
    class_id: (N,) int32.
    track_id: (N,) int32, -1 where the detection belongs to no track.

    Indexing (bool mask, int array, slice) returns a new Detections; the arrays are never shared with the
    input in a way that lets one change the other.
    """

    xyxy: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]
    track_id: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))

    def __post_init__(self) -> None:
        n = int(np.asarray(self.xyxy).reshape(-1, 4).shape[0])
        object.__setattr__(self, "xyxy", _f32(self.xyxy, (n, 4)))
        object.__setattr__(self, "confidence", _f32(self.confidence, (n,)))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, dtype=np.int32).reshape(n))
        tid = np.asarray(self.track_id, dtype=np.int32)
        if tid.size == 0 and n > 0:
            tid = np.full(n, -1, np.int32)
        object.__setattr__(self, "track_id", tid.reshape(n))

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    @classmethod
    def unchecked(
        cls,
        xyxy: npt.NDArray[np.float32],
        confidence: npt.NDArray[np.float32],
        class_id: npt.NDArray[np.int32],
        track_id: npt.NDArray[np.int32],
    ) -> Detections:
        """Detections from new arrays already in its dtypes, shapes and C order,
        skipping the constructor's checks and copies: for the compiled per-frame paths (tracker, postprocess),
        where those were a large part of a frame's cost. The arrays are taken, not copied."""
        out = object.__new__(cls)
        object.__setattr__(out, "xyxy", xyxy)
        object.__setattr__(out, "confidence", confidence)
        object.__setattr__(out, "class_id", class_id)
        object.__setattr__(out, "track_id", track_id)
        return out

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Any) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1 if int(index) != -1 else None)
        return Detections(
            self.xyxy[index].copy(),
            self.confidence[index].copy(),
            self.class_id[index].copy(),
            self.track_id[index].copy(),
        )

    @property
    def xywh(self) -> npt.NDArray[np.float32]:
        """(N, 4) top-left x, y, width, height in frame pixels (MOTChallenge and COCO convention)."""
        out = self.xyxy.copy()
        out[:, 2:] -= out[:, :2]
        return out

    def with_track_ids(self, track_id: npt.ArrayLike) -> Detections:
        return Detections(self.xyxy, self.confidence, self.class_id, np.asarray(track_id, np.int32))

    @staticmethod
    def concatenate(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        return Detections(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.track_id for p in parts]),
        )


@dataclass(frozen=True)
class GroundPositions:
    """Where each detection of a FrameResult is on the ground: parallel to `FrameResult.detections` (row i is
    detection i), every array (N,) float64, NaN where that detection has no position (no pose for the frame,
    above the horizon, beyond the maximum range).

    lat, lon: WGS84 degrees. east_m, north_m: metres from the flight's home (take-off point) on the ground.
    sigma_m: horizontal 1-sigma radius (RMS) of the position from the pose's error model.
    range_m: (N,) distance camera -> ground point in metres (None: not known; not in the JSON lines).
    ground_alt_m: ellipsoidal height of the ground the points lie on (NaN: not known).
    Made by `edgedet.geo.GeoLocator`; read by the JSON-lines, GeoJSON and KML sinks and by the drone link.
    """

    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    east_m: npt.NDArray[np.float64]
    north_m: npt.NDArray[np.float64]
    sigma_m: npt.NDArray[np.float64]
    range_m: npt.NDArray[np.float64] | None = None
    ground_alt_m: float = math.nan

    FIELDS = ("lat", "lon", "east_m", "north_m", "sigma_m")

    def __len__(self) -> int:
        return int(np.asarray(self.lat).shape[0])

    def row(self, i: int) -> dict[str, float | None]:
        """Detection i's fields as a dict, None where there is no position (JSON has no NaN)."""
        out: dict[str, float | None] = {}
        for name in self.FIELDS:
            v = float(getattr(self, name)[i])
            out[name] = v if np.isfinite(v) else None
        return out


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline hands each sink for one frame.

    detections: in frame pixels; `track_id` set when tracking is on (-1 otherwise).
    detector_ran: False on track-only frames (boxes are the tracker's predictions).
    fps: achieved frames per second over the recent window (0.0 until known).
    stage_ms: per-stage latency of this frame in milliseconds (names: capture, preprocess, infer, postprocess,
        track, ...).
    geo: ground positions of the detections (None when no pose source is configured).
    """

    frame: Frame
    detections: Detections
    detector_ran: bool = True
    fps: float = 0.0
    stage_ms: Mapping[str, float] = field(default_factory=dict)
    geo: GroundPositions | None = None
