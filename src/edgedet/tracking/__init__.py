"""Multi-object tracking behind the Tracker protocol (`edgedet.protocols.Tracker`), chosen by name.

Built in: `sort` (SORT with a vectorised Kalman step, lifetimes in seconds, track-only frames) and `bytetrack`
(the same with ByteTrack's second, low-score association). A tracker entry is a factory
`(TrackerConfig) -> Tracker`; other packages add theirs under the entry-point group `edgedet.trackers`.

Public: TrackerConfig, SortTracker (tracking.sort), ByteTracker (tracking.bytetrack), TRACKERS, make_tracker;
track_sequence (tracking.replay) for MOTChallenge det.txt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgedet.protocols import Tracker
from edgedet.registry import Registry
from edgedet.tracking.sort import SortTracker, TrackerConfig, inside_frame, tracker_config_from_flags
from edgedet.types import Detections

TrackerFactory = Callable[[TrackerConfig], Tracker]


def _adapt(name: str, obj: Any) -> TrackerFactory:
    if not callable(obj):
        raise TypeError(f"expected a factory (TrackerConfig) -> Tracker, got {obj!r}")
    return obj


TRACKERS: Registry[TrackerFactory] = Registry(
    "tracker",
    "edgedet.trackers",
    {
        "sort": "edgedet.tracking.sort:SortTracker",
        "bytetrack": "edgedet.tracking.bytetrack:ByteTracker",
    },
    contract="a tracker entry is a factory (TrackerConfig) -> object with update(), predict() and reset()",
    adapt=_adapt,
)


def step(
    tracker: Tracker, timestamp_s: float, dets: Detections | None = None, warp: Any = None
) -> Detections:
    """One frame of tracking: `update` with the detector's `dets` on a detector frame, `predict` when the detector
    skipped the frame (dets None). Every loop that drives a tracker (run, replay, the realtime replay) calls this,
    so a frame is never stepped twice or not at all."""
    if dets is None:
        return tracker.predict(timestamp_s, warp=warp)
    return tracker.update(dets, timestamp_s, warp=warp)


def make_tracker(name: str = "sort", config: TrackerConfig | None = None) -> Tracker:
    """A new tracker of the registered kind `name`; ConfigError lists the valid names."""
    return TRACKERS.get(name)(config if config is not None else TrackerConfig())


__all__ = [
    "TRACKERS",
    "SortTracker",
    "TrackerConfig",
    "TrackerFactory",
    "inside_frame",
    "make_tracker",
    "tracker_config_from_flags",
]
