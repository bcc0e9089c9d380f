"""Telemetry: /proc parsing against the kernel's own other views, jtop data shapes, "not available" not zeros."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import pytest

from edgedet.telemetry import (
    NOT_AVAILABLE,
    TelemetrySampler,
    jetson_fields,
    parse_proc_stat,
    parse_proc_statm,
    process_cpu_seconds,
    process_rss_bytes,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux-only")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234 (python3) R 1 1234 1234 0 -1 4194304 5000 0 0 0 150 25 0 0 20 0 3 0 100 1000 200", (150, 25)),
        # a command name with spaces and ')' must not shift the fields
        ("77 (my (odd) name) S 1 77 77 0 -1 0 0 0 0 0 9 4 0 0 20 0 1 0 5 10 2", (9, 4)),
    ],
)
def test_parse_proc_stat(text: str, expected: tuple[int, int]) -> None:
    assert parse_proc_stat(text) == expected


def test_parse_proc_statm() -> None:
    assert parse_proc_statm("30000 2500 800 10 0 4000 0\n", 4096) == 2500 * 4096


@linux_only
def test_process_cpu_seconds_agrees_with_os_times() -> None:
    end = time.process_time() + 0.2
    while time.process_time() < end:  # burn some CPU so the numbers are not all zero
        pass
    t = os.times()
    ours = process_cpu_seconds()
    tick = 1 / os.sysconf("SC_CLK_TCK")
    assert abs(ours - (t.user + t.system)) <= 3 * tick
    assert ours >= 0.2 - 3 * tick


@linux_only
def test_process_rss_agrees_with_proc_status_and_grows_with_allocation() -> None:
    def vm_rss() -> int:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    before = process_rss_bytes()
    assert before is not None
    assert abs(before - vm_rss()) <= 4 << 20
    block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
    after = process_rss_bytes()
    assert after is not None and after - before >= 60 << 20
    del block


def test_off_linux_fallbacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import edgedet.telemetry as tel

    monkeypatch.setattr(tel, "_PROC_STAT", tmp_path / "missing-stat")
    monkeypatch.setattr(tel, "_PROC_STATM", tmp_path / "missing-statm")
    assert process_rss_bytes() is None
    assert abs(process_cpu_seconds() - time.process_time()) < 0.05


# jtop 4.x `jetson.stats` / `.cpu` / `.gpu` / `.memory` on an Orin Nano (values as jtop reports: mW, °C, kHz).
ORIN_STATS = {
    "time": "2025-01-01 00:00:00",
    "uptime": "1 day",
    "CPU1": 35,
    "CPU2": "OFF",
    "RAM": 0.41,
    "GPU": 87.5,
    "Temp cpu": 51.2,
    "Temp gpu": 49.8,
    "Temp soc0": 50.1,
    "Temp cv0": -256.0,  # jtop's "sensor offline"
    "Power VDD_IN": 7352,
    "Power VDD_CPU_GPU_CV": 2810,
    "Power TOT": 7352,
    "jetson_clocks": "ON",
    "nvp model": "15W",
}
ORIN_CPU = {
    "total": {"user": 20.0},
    "cpu": [
        {"online": True, "freq": {"min": 115200, "max": 1510400, "cur": 1510400}},
        {"online": True, "freq": {"min": 115200, "max": 1510400, "cur": 1190400}},
        {"online": False, "freq": {"min": 115200, "max": 1510400, "cur": 0}},
    ],
}
ORIN_GPU = {
    "gpu": {
        "type": "integrated",
        "freq": {"min": 306000, "max": 624750, "cur": 624750},
        "status": {"load": 87.5},
    }
}
ORIN_MEMORY = {"RAM": {"tot": 7620000}, "EMC": {"cur": 2133000, "max": 2133000, "online": True}}


@pytest.mark.parametrize(
    ("stats", "cpu", "gpu", "memory", "expected"),
    [
        (
            ORIN_STATS,
            ORIN_CPU,
            ORIN_GPU,
            ORIN_MEMORY,
            {
                "power_w": 7.352,
                "temperatures_c": {"cpu": 51.2, "gpu": 49.8, "soc0": 50.1},
                "power_mode": "15W",
                "jetson_clocks": True,
                "gpu_load_percent": 87.5,
                "clocks_mhz": {"cpu": 1350.4, "gpu": 624.75, "emc": 2133.0},
            },
        ),
        (
            {"Power TOT": 10500, "jetson_clocks": "OFF", "nvp model": "MAXN"},
            None,
            None,
            None,
            {
                "power_w": 10.5,
                "temperatures_c": {},
                "power_mode": "MAXN",
                "jetson_clocks": False,
                "gpu_load_percent": None,
                "clocks_mhz": {},
            },
        ),
        (
            {},  # jtop without power sensors: nothing is invented
            None,
            None,
            None,
            {
                "power_w": None,
                "temperatures_c": {},
                "power_mode": None,
                "jetson_clocks": None,
                "gpu_load_percent": None,
                "clocks_mhz": {},
            },
        ),
    ],
)
def test_jetson_fields(stats: dict, cpu: Any, gpu: Any, memory: Any, expected: dict) -> None:
    got = jetson_fields(stats, cpu, gpu, memory)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value)
        elif isinstance(value, dict):
            assert got[key] == pytest.approx(value)
        else:
            assert got[key] == value


class FakeJtop:
    """A jtop stand-in (jetson-stats is not installed here): fixed data, records close()."""

    def __init__(self) -> None:
        self.stats = dict(ORIN_STATS)
        self.cpu, self.gpu, self.memory = ORIN_CPU, ORIN_GPU, ORIN_MEMORY
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_sampler_without_jtop_reports_not_available_not_zeros() -> None:
    try:
        import jtop  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("jetson-stats is installed here")
    sampler = TelemetrySampler(interval_s=0.02).start()
    end = time.monotonic() + 0.15
    while time.monotonic() < end:
        pass
    samples = sampler.stop()
    assert len(samples) >= 3
    assert not sampler.jetson_available
    assert sampler.jetson_status.startswith(f"{NOT_AVAILABLE}: jetson-stats is not installed")
    assert all(s.power_w is None and not s.temperatures_c and s.power_mode is None for s in samples)
    assert samples[0].cpu_percent is None and all(s.cpu_percent is not None for s in samples[1:])
    summary = sampler.summary()
    for key in (
        "power_w_mean",
        "power_w_max",
        "temperature_c_max",
        "power_mode",
        "jetson_clocks",
        "clocks_mhz_mean",
    ):
        assert summary[key] == NOT_AVAILABLE
    # A busy loop on one thread: this process used most of one core.
    assert 5.0 < summary["process_cpu_percent_mean"] < 400.0
    assert summary["process_rss_mb_max"] > 10.0
    assert [s.t_s for s in samples] == sorted(s.t_s for s in samples)


def test_sampler_with_jtop_data_and_close() -> None:
    fake = FakeJtop()
    with TelemetrySampler(interval_s=0.02, jtop_factory=lambda interval: (fake, "available")) as sampler:
        time.sleep(0.1)
        fake.stats["Power TOT"] = 9000
        fake.stats["Temp gpu"] = 60.0
        time.sleep(0.1)
    assert fake.closed and sampler.jetson_available is False
    summary = sampler.summary()
    assert summary["jetson"] == "available"
    assert summary["power_w_max"] == 9.0
    assert 7.352 < summary["power_w_mean"] < 9.0
    assert summary["temperature_c_max"] == {"cpu": 51.2, "gpu": 60.0, "soc0": 50.1}
    assert summary["power_mode"] == "15W" and summary["jetson_clocks"] == "ON"
    assert summary["clocks_mhz_mean"] == {"cpu": 1350.4, "emc": 2133.0, "gpu": 624.75}


def test_jtop_connection_failure_and_lost_service() -> None:
    status = f"{NOT_AVAILABLE}: jtop could not connect (The jetson_stats.service is not active)"
    sampler = TelemetrySampler(interval_s=1.0, jtop_factory=lambda interval: (None, status)).start()
    sampler.stop()
    assert sampler.summary()["jetson"] == status

    class Lost(FakeJtop):
        @property
        def stats(self) -> dict:
            raise EOFError("Lost connection with jtop server")

        @stats.setter
        def stats(self, value: dict) -> None:
            pass

    sampler = TelemetrySampler(interval_s=1.0, jtop_factory=lambda interval: (Lost(), "available")).start()
    samples = sampler.stop()
    assert sampler.jetson_status.startswith(f"{NOT_AVAILABLE}: jtop stopped answering")
    assert all(s.power_w is None for s in samples) and all(s.rss_bytes is not None for s in samples)


def test_sampler_rejects_bad_interval_and_double_start() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        TelemetrySampler(interval_s=0)
    sampler = TelemetrySampler(interval_s=1.0, use_jtop=False).start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            sampler.start()
    finally:
        sampler.stop()
    assert sampler.summary()["jetson"] == f"{NOT_AVAILABLE}: disabled"
