"""ByteTrack-style tracking (Zhang et al. 2022): SORT's filter and first association, plus a second pass that
matches the low-score detections to tracks the first pass left unmatched (they keep occluded objects alive
but never start tracks).

The association itself lives in `tracking.sort` (one implementation, one set of tests); this tracker is that
engine configured with the second pass on, registered as `--tracker bytetrack`.
"""

from __future__ import annotations

import dataclasses

from edgedet.tracking.sort import SortTracker, TrackerConfig

__all__ = ["ByteTracker"]


class ByteTracker(SortTracker):
    """SortTracker with `second_association` on (low_score_threshold <= score < score_threshold, matched at
    second_iou_threshold to tracks matched on the previous detector frame)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        super().__init__(dataclasses.replace(config or TrackerConfig(), second_association=True))
