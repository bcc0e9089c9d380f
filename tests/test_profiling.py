from __future__ import annotations

import numpy as np

from edgedet.profiling import LatencyStats, RingBuffer, StageTimer, format_table


def test_ring_buffer_keeps_the_newest_in_order():
    rb = RingBuffer(4)
    for v in range(10):
        rb.append(float(v))
    assert rb.total_count == 10
    np.testing.assert_array_equal(rb.values(), [6, 7, 8, 9])


def test_stats_match_numpy_percentiles():
    x = np.random.default_rng(1).gamma(2.0, 3.0, size=1001)
    s = LatencyStats.of(x)
    assert s.p50_ms == np.percentile(x, 50)
    assert s.p99_ms == np.percentile(x, 99)
    assert s.max_ms == x.max() and s.count == 1001


def test_timer_discards_warmup():
    t = StageTimer(warmup=2)
    for v in [100.0, 90.0, 1.0, 2.0, 3.0]:
        t.add("infer", v)
    st = t.stats()["infer"]
    assert st.count == 3 and st.max_ms == 3.0
    t0 = StageTimer()
    with t0.stage("pre"):
        pass
    assert t0.stages == ["pre"] and t0.stats()["pre"].count == 1
    assert "infer" in format_table(t.stats())


def test_rate_meter_averages_the_interval_not_its_inverse() -> None:
    from edgedet.profiling import RateMeter

    r = RateMeter()
    r.tick(0)
    assert r.fps == 0.0  # one output: no rate yet
    r.tick(10_000_000)
    assert r.fps == 100.0
    r.tick(40_000_000)  # a 30 ms gap: interval 0.9 * 10 + 0.1 * 30 = 12 ms
    assert abs(r.fps - 1000 / 12) < 1e-9
