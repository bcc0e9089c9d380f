"""Multi-object tracking: SORT with a vectorised Kalman step, lifetimes in seconds, track-only frames.

Public: TrackerConfig, SortTracker (tracking.sort); track_sequence (tracking.replay) for MOTChallenge det.txt.
"""

from __future__ import annotations

from edgedet.tracking.sort import SortTracker, TrackerConfig, tracker_config_from_flags

__all__ = ["SortTracker", "TrackerConfig", "tracker_config_from_flags"]
