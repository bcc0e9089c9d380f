"""Stage timing and latency reports (p50/p90/p99/max, fps) with bounded memory for long runs."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


class RingBuffer:
    """The last `capacity` float samples (older ones are overwritten), so a long flight does not grow memory."""

    def __init__(self, capacity: int = 65536) -> None:
        self._data = np.zeros(capacity, np.float64)
        self._count = 0

    def append(self, value: float) -> None:
        self._data[self._count % self._data.size] = value
        self._count += 1

    @property
    def total_count(self) -> int:
        return self._count

    def values(self) -> npt.NDArray[np.float64]:
        """Samples kept, oldest first."""
        n = min(self._count, self._data.size)
        if self._count <= self._data.size:
            return self._data[:n].copy()
        start = self._count % self._data.size
        return np.concatenate([self._data[start:], self._data[:start]])


@dataclass(frozen=True)
class LatencyStats:
    """Latency summary of one stage in milliseconds; `count` includes samples no longer kept."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ms: npt.NDArray[np.float64], count: int | None = None) -> LatencyStats:
        if samples_ms.size == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        p50, p90, p99 = np.percentile(samples_ms, [50, 90, 99])
        return cls(
            int(count if count is not None else samples_ms.size),
            float(samples_ms.mean()),
            float(p50),
            float(p90),
            float(p99),
            float(samples_ms.max()),
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "mean_ms": round(self.mean_ms, 4),
            "p50_ms": round(self.p50_ms, 4),
            "p90_ms": round(self.p90_ms, 4),
            "p99_ms": round(self.p99_ms, 4),
            "max_ms": round(self.max_ms, 4),
        }


class StageTimer:
    """Collects per-stage latencies with perf_counter_ns; the first `warmup` samples of each stage are dropped."""

    def __init__(self, warmup: int = 0, capacity: int = 65536) -> None:
        self.warmup = warmup
        self._capacity = capacity
        self._samples: dict[str, RingBuffer] = {}
        self._seen: dict[str, int] = {}

    def add(self, stage: str, elapsed_ms: float) -> None:
        seen = self._seen.get(stage, 0)
        self._seen[stage] = seen + 1
        if seen < self.warmup:
            return
        buf = self._samples.get(stage)
        if buf is None:
            buf = self._samples[stage] = RingBuffer(self._capacity)
        buf.append(elapsed_ms)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter_ns()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter_ns() - t0) / 1e6)

    @property
    def stages(self) -> list[str]:
        return list(self._samples)

    def samples_ms(self, stage: str) -> npt.NDArray[np.float64]:
        buf = self._samples.get(stage)
        return buf.values() if buf is not None else np.zeros(0)

    def stats(self) -> dict[str, LatencyStats]:
        return {name: LatencyStats.of(buf.values(), buf.total_count) for name, buf in self._samples.items()}


class RateMeter:
    """Output frame rate, as an exponential moving average of the interval between outputs (weight 0.1).

    Averages the interval, not its inverse: a mean of 1/dt over mixed detector and track-only frames overstates
    the rate. `fps` is 0.0 until two outputs were seen."""

    def __init__(self) -> None:
        self.fps = 0.0
        self._interval_ns = 0.0
        self._prev_ns: int | None = None

    def tick(self, t_ns: int) -> None:
        """An output at `t_ns` (perf_counter_ns)."""
        if self._prev_ns is not None:
            dt_ns = float(max(t_ns - self._prev_ns, 1))
            self._interval_ns = dt_ns if self._interval_ns == 0.0 else 0.9 * self._interval_ns + 0.1 * dt_ns
            self.fps = 1e9 / self._interval_ns
        self._prev_ns = t_ns


def format_table(stats: Mapping[str, LatencyStats], title: str = "latency (ms)") -> str:
    """A plain-text table (the CLI may render it with Rich instead)."""
    lines = [f"{title:<16}{'count':>8}{'mean':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"]
    for name, s in stats.items():
        lines.append(
            f"{name:<16}{s.count:>8}{s.mean_ms:>9.2f}{s.p50_ms:>9.2f}{s.p90_ms:>9.2f}{s.p99_ms:>9.2f}{s.max_ms:>9.2f}"
        )
    return "\n".join(lines)
