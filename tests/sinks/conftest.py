"""Fixtures for the sink tests: FrameResult factories and tiny real filesystems (tmpfs) that fill up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgedet.types import Detections, Frame, FrameResult

MakeResult = Callable[..., FrameResult]


def _make_result(
    index: int,
    xyxy: Any = (),
    confidence: Any = (),
    class_id: Any = (),
    track_id: Any = None,
    *,
    name: str = "",
    hw: tuple[int, int] = (240, 320),
    detector_ran: bool = True,
    fps: float = 0.0,
    fill: int = 128,
) -> FrameResult:
    dets = Detections(
        np.asarray(xyxy, np.float32).reshape(-1, 4),
        np.asarray(confidence, np.float32),
        np.asarray(class_id, np.int32),
        np.asarray([] if track_id is None else track_id, np.int32),
    )
    image = np.full((*hw, 3), fill, np.uint8)
    frame = Frame(image, index=index, timestamp_s=index / 30.0, source_index=index + 100, name=name)
    return FrameResult(
        frame, dets, detector_ran=detector_ran, fps=fps, stage_ms={"infer": 1.5, "track": 0.25}
    )


@pytest.fixture
def make_result() -> MakeResult:
    """make_result(index, xyxy, confidence, class_id, track_id=None, name=, hw=, detector_ran=, fps=)."""
    return _make_result
