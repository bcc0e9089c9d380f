"""Frame-skip policies: decide, per frame, whether the detector runs or the tracker predicts alone.

Every policy answers `should_detect(timestamp_s)` and learns from `record(detected, frame_ms)`, where frame_ms
is the measured processing time of that frame (everything from preprocess to sinks). The first frame always runs
the detector.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

from edgedet.errors import ConfigError


class Scheduler(ABC):
    def __init__(self) -> None:
        self._since_detect = -1  # frames since the last detector run; -1 = never ran

    @property
    @abstractmethod
    def interval(self) -> int:
        """Current detect interval: the detector runs on one frame in `interval`."""

    def should_detect(self, timestamp_s: float) -> bool:
        if self._since_detect < 0 or self._since_detect + 1 >= self.interval:
            self._since_detect = 0
            return True
        self._since_detect += 1
        return False

    def record(self, detected: bool, frame_ms: float) -> None:  # noqa: B027 - optional hook
        """Feed back the measured time of a frame (policies that adapt use it)."""


class EveryN(Scheduler):
    """Run the detector on every N-th frame (N = 1: every frame)."""

    def __init__(self, n: int = 1) -> None:
        super().__init__()
        if n < 1:
            raise ConfigError(f"--detect-every must be 1 or more, got {n}")
        self._n = n

    @property
    def interval(self) -> int:
        return self._n


@dataclass
class _Ema:
    alpha: float
    value: float | None = None

    def update(self, x: float) -> float:
        self.value = x if self.value is None else self.alpha * x + (1 - self.alpha) * self.value
        return self.value


class TargetFps(Scheduler):
    """Choose the smallest detect interval N whose mean frame time holds `target_fps`.

    With d = mean detector-frame time and t = mean track-only frame time (both measured as the run goes, EMA),
    N frames take d + (N - 1) t, so N = ceil((d - t) / (1/F - t)) when t < 1/F. If even track-only frames are
    slower than the target, N = max_interval (the target cannot be held; the summary shows the achieved FPS).
    """

    def __init__(self, target_fps: float, max_interval: int = 10, alpha: float = 0.1) -> None:
        super().__init__()
        if not target_fps > 0 or not math.isfinite(target_fps):
            raise ConfigError(f"--target-fps must be a positive number, got {target_fps}")
        if max_interval < 1:
            raise ConfigError(f"max detect interval must be 1 or more, got {max_interval}")
        self.target_fps = target_fps
        self.max_interval = max_interval
        self._detect_ms = _Ema(alpha)
        self._track_ms = _Ema(alpha)
        self._interval = 1

    @property
    def interval(self) -> int:
        return self._interval

    def record(self, detected: bool, frame_ms: float) -> None:
        (self._detect_ms if detected else self._track_ms).update(frame_ms)
        self._interval = self._choose()

    def _choose(self) -> int:
        d = self._detect_ms.value
        if d is None:
            return 1
        budget = 1000.0 / self.target_fps
        if d <= budget:
            return 1
        # Until a track-only frame has been measured, assume it is cheap compared with the detector.
        t = self._track_ms.value if self._track_ms.value is not None else 0.05 * d
        if t >= budget:
            return self.max_interval
        n = math.ceil((d - t) / (budget - t) - 1e-9)
        return max(1, min(self.max_interval, n))


def make_scheduler(
    detect_every: int = 1, target_fps: float | None = None, max_interval: int = 10
) -> Scheduler:
    if target_fps is not None and detect_every != 1:
        raise ConfigError("--detect-every and --target-fps both set the skip policy: pass only one of them")
    if target_fps is not None:
        return TargetFps(target_fps, max_interval=max_interval)
    return EveryN(detect_every)
