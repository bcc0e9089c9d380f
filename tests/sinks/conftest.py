"""Fixtures for the sink tests: FrameResult factories and tiny real filesystems (tmpfs) that fill up."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
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


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """mount(size_kb, read_only=False) -> a fresh tmpfs of that size (root on Linux only, else skip)."""
    mounted: list[Path] = []

    def mount(size_kb: int, read_only: bool = False) -> Path:
        if not sys.platform.startswith("linux") or os.geteuid() != 0:
            pytest.skip("mounting a tiny tmpfs needs root on Linux")
        target = tmp_path / f"fs{len(mounted)}"
        target.mkdir()
        opts = f"size={size_kb}k" + (",ro" if read_only else "")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount tmpfs here: {proc.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
