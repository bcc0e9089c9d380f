"""Telemetry for bench and long runs: this process's CPU% and RSS everywhere, Jetson power/temperatures/clocks
through jetson-stats (`jtop`) where it is installed and its service runs.

Where jtop is absent, Jetson fields are None and `jetson_status` says why ("not available: ..."); they are never
reported as zeros, because 0 W or 0 °C would read as a real measurement.

Process figures come from /proc/self/stat (utime + stime, in clock ticks) and /proc/self/statm (resident pages),
so psutil is not needed; off Linux CPU time falls back to `time.process_time()` and RSS is None.

    sampler = TelemetrySampler(interval_s=0.5).start()
    ... run the benchmark ...
    samples = sampler.stop()
    print(sampler.summary())
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

NOT_AVAILABLE = "not available"
_PROC_STAT = Path("/proc/self/stat")
_PROC_STATM = Path("/proc/self/statm")
# jtop marks a sensor that is switched off with -256 °C; anything this cold is not a reading.
_OFFLINE_TEMP_C = -200.0


# --------------------------------------------------------------------------------------------- process


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(utime, stime) in clock ticks from the text of /proc/<pid>/stat.

    The command name (field 2) is in parentheses and may itself contain spaces and ')', so fields are counted
    from the last ')'. utime and stime are fields 14 and 15 (1-based, proc(5)).
    """
    rest = text[text.rindex(")") + 1 :].split()
    # rest[0] is field 3 (state), so field n is rest[n - 3].
    return int(rest[14 - 3]), int(rest[15 - 3])


def parse_proc_statm(text: str, page_size: int) -> int:
    """Resident set size in bytes from /proc/<pid>/statm (field 2 = resident pages)."""
    return int(text.split()[1]) * page_size


def process_cpu_seconds() -> float:
    """CPU time (user + system) this process has used, in seconds."""
    try:
        utime, stime = parse_proc_stat(_PROC_STAT.read_text())
        return (utime + stime) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.process_time()


def process_rss_bytes() -> int | None:
    """Resident memory of this process in bytes, or None where /proc is not there (macOS, Windows)."""
    try:
        return parse_proc_statm(_PROC_STATM.read_text(), os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


# --------------------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class TelemetrySample:
    """One reading.

    t_s: time.monotonic() of the reading. cpu_percent: this process's CPU use since the previous sample
    (100 = one core busy; can exceed 100 with several threads); None for the first sample.
    rss_bytes: resident memory. The Jetson fields are None where jtop is not available:
    power_w: total board input power (W); temperatures_c: sensor name -> °C; power_mode: nvpmodel name
    ("MAXN", "15W"); jetson_clocks: True when jetson_clocks pins the clocks; gpu_load_percent: GPU busy %;
    clocks_mhz: "cpu" (mean over online cores), "gpu", "emc" -> current frequency in MHz.
    """

    t_s: float
    cpu_percent: float | None
    rss_bytes: int | None
    power_w: float | None = None
    temperatures_c: Mapping[str, float] = field(default_factory=dict)
    power_mode: str | None = None
    jetson_clocks: bool | None = None
    gpu_load_percent: float | None = None
    clocks_mhz: Mapping[str, float] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _khz_to_mhz(freq: Any) -> float | None:
    """jtop reports frequencies as {'cur': kHz, ...} (or a bare number of kHz)."""
    cur = freq.get("cur") if isinstance(freq, Mapping) else freq
    khz = _number(cur)
    return None if khz is None else khz / 1000.0


def jetson_fields(
    stats: Mapping[str, Any], cpu: Any = None, gpu: Any = None, memory: Any = None
) -> dict[str, Any]:
    """TelemetrySample's Jetson fields from jtop 4.x data.

    stats: `jetson.stats` (flat dict: 'Power TOT' in mW, 'Temp <sensor>' in °C, 'nvp model', 'jetson_clocks'
    'ON'/'OFF', 'GPU' load %). cpu / gpu / memory: `jetson.cpu`, `jetson.gpu`, `jetson.memory` for clocks
    (frequencies in kHz); any may be None. Missing keys give None / empty, never zeros.
    """
    power_mw = _number(stats.get("Power TOT"))
    temps: dict[str, float] = {}
    for key, value in stats.items():
        if isinstance(key, str) and key.startswith("Temp "):
            t = _number(value)
            if t is not None and t > _OFFLINE_TEMP_C:
                temps[key[5:].lower()] = t
    mode = stats.get("nvp model")
    jc = stats.get("jetson_clocks")
    clocks: dict[str, float] = {}
    if isinstance(cpu, Mapping):
        cores = [
            _khz_to_mhz(c.get("freq"))
            for c in cpu.get("cpu", [])
            if isinstance(c, Mapping) and c.get("online", True)
        ]
        cores_mhz = [c for c in cores if c is not None]
        if cores_mhz:
            clocks["cpu"] = sum(cores_mhz) / len(cores_mhz)
    if isinstance(gpu, Mapping):
        for g in gpu.values():
            mhz = _khz_to_mhz(g.get("freq")) if isinstance(g, Mapping) else None
            if mhz is not None:
                clocks["gpu"] = mhz
                break
    if isinstance(memory, Mapping) and isinstance(memory.get("EMC"), Mapping):
        mhz = _khz_to_mhz(memory["EMC"])
        if mhz is not None:
            clocks["emc"] = mhz
    return {
        "power_w": None if power_mw is None else power_mw / 1000.0,
        "temperatures_c": temps,
        "power_mode": None if mode is None else str(mode),
        "jetson_clocks": None if jc is None else str(jc).upper() in ("ON", "TRUE", "1"),
        "gpu_load_percent": _number(stats.get("GPU")),
        "clocks_mhz": clocks,
    }


def _open_jtop(interval_s: float) -> tuple[Any | None, str]:
    """(started jtop instance, "available") or (None, "not available: why")."""
    try:
        from jtop import jtop
    except ImportError:
        return (
            None,
            f"{NOT_AVAILABLE}: jetson-stats is not installed (on a Jetson: sudo pip3 install jetson-stats)",
        )
    try:
        handle = jtop(interval=interval_s)
        handle.start()
    except Exception as exc:  # JtopException when jtop.service is not running / no access to its socket
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, (
            f"{NOT_AVAILABLE}: jtop could not connect ({first}); run `sudo systemctl restart jtop.service` and, "
            "in Docker, mount /run/jtop.sock"
        )
    return handle, "available"


class TelemetrySampler:
    """Sample process CPU%/RSS (and Jetson telemetry via jtop when present) on a background thread.

    interval_s: seconds between samples. use_jtop: try jetson-stats (set False to skip it).
    jtop_factory: for tests and embedding, a callable returning (jtop-like object or None, status) instead
    of opening the real jtop; the object needs `.stats` and optionally `.cpu`, `.gpu`, `.memory`, `.close()`.
    """

    def __init__(
        self,
        interval_s: float = 0.5,
        use_jtop: bool = True,
        jtop_factory: Callable[[float], tuple[Any | None, str]] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._use_jtop = use_jtop
        self._jtop_factory = jtop_factory or _open_jtop
        self._jtop: Any | None = None
        self.jetson_status = f"{NOT_AVAILABLE}: not started" if use_jtop else f"{NOT_AVAILABLE}: disabled"
        self._samples: list[TelemetrySample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prev: tuple[float, float] | None = None  # (monotonic, cpu seconds) of the previous sample

    @property
    def jetson_available(self) -> bool:
        return self._jtop is not None

    @property
    def samples(self) -> list[TelemetrySample]:
        """A copy of the samples so far (safe to call while running)."""
        with self._lock:
            return list(self._samples)

    def start(self) -> TelemetrySampler:
        """Open jtop if wanted, take a first sample at once, then sample every interval_s until stop()."""
        if self._thread is not None:
            raise RuntimeError("TelemetrySampler already started")
        if self._use_jtop:
            self._jtop, self.jetson_status = self._jtop_factory(self.interval_s)
            if self._jtop is None:
                log.info("jetson telemetry %s", self.jetson_status)
        self._stop.clear()
        self.sample_now()
        self._thread = threading.Thread(target=self._loop, name="edgedet-telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[TelemetrySample]:
        """Take a last sample, stop the thread, close jtop; return all samples."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5 * self.interval_s + 1.0)
            self.sample_now()
        handle, self._jtop = self._jtop, None
        if handle is not None and hasattr(handle, "close"):
            try:
                handle.close()
            except Exception as exc:  # closing a lost jtop connection must not fail the benchmark
                log.debug("closing jtop failed: %s", exc)
        return self.samples

    def __enter__(self) -> TelemetrySampler:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample_now()
            except Exception as exc:  # a telemetry hiccup must never end a run; note it and go on
                log.warning("telemetry sample failed: %s", exc)

    def sample_now(self) -> TelemetrySample:
        """Take one sample now and append it (the thread calls this; callers may too)."""
        now = time.monotonic()
        cpu_s = process_cpu_seconds()
        cpu_percent: float | None = None
        with self._lock:
            prev, self._prev = self._prev, (now, cpu_s)
        if prev is not None and now > prev[0]:
            cpu_percent = 100.0 * (cpu_s - prev[1]) / (now - prev[0])
        jetson: dict[str, Any] = {}
        handle = self._jtop
        if handle is not None:
            try:
                jetson = jetson_fields(
                    handle.stats,
                    getattr(handle, "cpu", None),
                    getattr(handle, "gpu", None),
                    getattr(handle, "memory", None),
                )
            except Exception as exc:  # jtop lost its service mid-run: keep process figures, mark Jetson ones
                self.jetson_status = f"{NOT_AVAILABLE}: jtop stopped answering ({exc})"
                self._jtop = None
        sample = TelemetrySample(now, cpu_percent, process_rss_bytes(), **jetson)
        with self._lock:
            self._samples.append(sample)
        return sample

    def summary(self) -> dict[str, Any]:
        """Figures for a bench report: means and maxima over the samples; "not available" where unmeasured."""
        samples = self.samples

        def stat(values: list[float | None], how: str) -> float | str:
            vals = [v for v in values if v is not None]
            if not vals:
                return NOT_AVAILABLE
            return round(max(vals) if how == "max" else sum(vals) / len(vals), 3)

        temps: dict[str, list[float | None]] = {}
        for s in samples:
            for name, t in s.temperatures_c.items():
                temps.setdefault(name, []).append(t)
        modes = sorted({s.power_mode for s in samples if s.power_mode is not None})
        clocks: dict[str, list[float | None]] = {}
        for s in samples:
            for name, mhz in s.clocks_mhz.items():
                clocks.setdefault(name, []).append(mhz)
        jc = [s.jetson_clocks for s in samples if s.jetson_clocks is not None]
        return {
            "samples": len(samples),
            "duration_s": round(samples[-1].t_s - samples[0].t_s, 3) if len(samples) > 1 else 0.0,
            "process_cpu_percent_mean": stat([s.cpu_percent for s in samples], "mean"),
            "process_rss_mb_max": stat(
                [None if s.rss_bytes is None else s.rss_bytes / 2**20 for s in samples], "max"
            ),
            "jetson": self.jetson_status,
            "power_w_mean": stat([s.power_w for s in samples], "mean"),
            "power_w_max": stat([s.power_w for s in samples], "max"),
            "temperature_c_max": {k: stat(v, "max") for k, v in sorted(temps.items())} or NOT_AVAILABLE,
            "power_mode": ", ".join(modes) if modes else NOT_AVAILABLE,
            "jetson_clocks": ("ON" if all(jc) else "OFF" if not any(jc) else "changed")
            if jc
            else NOT_AVAILABLE,
            "gpu_load_percent_mean": stat([s.gpu_load_percent for s in samples], "mean"),
            "clocks_mhz_mean": {k: stat(v, "mean") for k, v in sorted(clocks.items())} or NOT_AVAILABLE,
        }


__all__ = [
    "NOT_AVAILABLE",
    "TelemetrySample",
    "TelemetrySampler",
    "jetson_fields",
    "parse_proc_stat",
    "parse_proc_statm",
    "process_cpu_seconds",
    "process_rss_bytes",
]
