"""Telemetry logs: interpolation at frame times, angle wrap, latency, gaps, bad files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgedet.errors import DataError
from edgedet.geo import TelemetryTrack, read_telemetry, write_telemetry
from edgedet.geo.geodesy import GeoReference
from edgedet.geo.rotation import euler_to_quaternion, quaternion_to_matrix


def _rec(t, lat=47.0, lon=8.0, alt=40.0, yaw=0.0, **kw):
    return {
        "t": t,
        "lat": lat,
        "lon": lon,
        "alt_rel_m": alt,
        "roll_deg": 0.0,
        "pitch_deg": 0.0,
        "yaw_deg": yaw,
        **kw,
    }


def test_linear_interpolation_and_yaw_across_north():
    track = TelemetryTrack(
        [_rec(0.0, lat=47.0, alt=40.0, yaw=170.0), _rec(1.0, lat=47.001, alt=50.0, yaw=-170.0)]
    )
    p = track.pose_at(0.25)
    assert p is not None
    assert p.lat_deg == pytest.approx(47.00025) and p.alt_rel_m == pytest.approx(42.5)
    assert p.yaw_deg == pytest.approx(175.0)  # through 180, not back through 0
    assert track.pose_at(0.75).yaw_deg == pytest.approx(-175.0)
    assert track.home == GeoReference(47.0, 8.0, 0.0, height_known=False)  # no home line: height unknown


def test_latency_reads_later_samples():
    """A record stamped t describes the state at t - latency: the pose at frame time t comes from stamp t + L."""
    recs = [_rec(k * 0.1, alt=float(k)) for k in range(11)]
    on_time = TelemetryTrack(recs)
    late = TelemetryTrack(recs, latency_s=0.05)
    assert on_time.pose_at(0.5).alt_rel_m == pytest.approx(5.0)
    assert late.pose_at(0.5).alt_rel_m == pytest.approx(5.5)


def test_gaps_ends_and_separate_streams():
    recs = [_rec(0.0), _rec(0.1), _rec(5.0)]
    track = TelemetryTrack(recs, max_gap_s=1.0, max_extrapolate_s=0.2)
    assert track.pose_at(0.05) is not None
    assert track.pose_at(2.0) is None  # inside a 4.9 s dropout
    assert track.pose_at(5.15) is not None and track.pose_at(5.3) is None
    assert track.pose_at(-0.3) is None
    # position at 10 Hz, attitude at 50 Hz, gimbal quaternion alone: each interpolated on its own times
    mixed = [{"t": k * 0.1, "lat": 47.0, "lon": 8.0, "alt_rel_m": 30.0 + k} for k in range(5)]
    mixed += [{"t": k * 0.02, "roll_deg": 0.0, "pitch_deg": 0.0, "yaw_deg": 2.0 * k} for k in range(21)]
    q0 = euler_to_quaternion(0.0, math.radians(-80.0), 0.0)
    q1 = -euler_to_quaternion(0.0, math.radians(-70.0), 0.0)  # the same rotation written with the other sign
    mixed += [{"t": 0.0, "gimbal_q": q0.tolist()}, {"t": 0.4, "gimbal_q": q1.tolist()}]
    p = TelemetryTrack(mixed).pose_at(0.2)
    assert p.alt_rel_m == pytest.approx(32.0) and p.yaw_deg == pytest.approx(20.0)
    r = quaternion_to_matrix(p.gimbal_q)
    pitch = math.degrees(math.asin(-r[2, 0]))
    assert pitch == pytest.approx(-75.0, abs=0.05)


def test_file_round_trip_and_bad_lines(tmp_path):
    path = tmp_path / "telemetry.jsonl"
    home = GeoReference(47.1, 8.2, 400.0)
    write_telemetry(
        path, [_rec(0.0, gimbal_q=[1, 0, 0, 0]), _rec(1.0, alt=41.0, gimbal_q=[1, 0, 0, 0])], home
    )
    track = read_telemetry(path, latency_s=0.0)
    assert track.home == home and track.has_gimbal
    assert track.pose_at(0.5).alt_rel_m == pytest.approx(40.5)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_rec(0.0)) + "\n{not json\n")
    with pytest.raises(DataError, match="line 2 is not JSON"):
        read_telemetry(bad)
    bad.write_text(json.dumps({"t": 0.0, "roll_deg": 1.0, "pitch_deg": 0.0, "yaw_deg": 0.0}) + "\n")
    with pytest.raises(DataError, match="no position"):
        read_telemetry(bad)
    bad.write_text(json.dumps({"lat": 1.0}) + "\n")
    with pytest.raises(DataError, match="no time"):
        read_telemetry(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_telemetry(tmp_path / "nope.jsonl")
    assert np.isfinite(track.time_range_s).all()
