"""The drone's pose at a frame's capture time, from telemetry samples (a log file, the demo scene, MAVLink).

Telemetry comes as samples at their own rates: position (lat, lon, altitude above home), vehicle attitude
(roll, pitch, yaw) and the gimbal's attitude (a quaternion). Each stream is kept as its own series and
interpolated at the frame's time, so a 10 Hz GPS and a 50 Hz attitude both land on a 30 FPS frame.

Telemetry latency: a sample stamped at time s describes the state at s - latency (it was stamped when it
arrived, late). `pose_at(t)` therefore reads the series at t + latency_s.

JSON-lines log (`telemetry.jsonl`, one object per line; times on the frames' clock: media time for files, i.e.
seconds from the first frame; `time.monotonic()` for live cameras):

    {"home": {"lat": 47.3977, "lon": 8.5456, "alt_m": 488.0}}                      optional, first line
    {"t": 0.02, "lat": 47.39771, "lon": 8.54559, "alt_rel_m": 41.2,
     "roll_deg": 1.2, "pitch_deg": -3.0, "yaw_deg": 87.5,
     "gimbal_q": [w, x, y, z]  |  "gimbal_roll_deg": 0, "gimbal_pitch_deg": -78.0, "gimbal_yaw_deg": 87.5,
     "gimbal_yaw_frame": "earth" | "vehicle"}

A line may carry any subset (a position-only line, an attitude-only line); fields missing from every line
make that stream absent. Without a home line, home is the first position sample on the ground.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgedet.errors import DataError
from edgedet.geo.camera import Mount
from edgedet.geo.geodesy import GeoReference
from edgedet.geo.rotation import FRD_FROM_OPTICAL, euler_to_matrix, euler_to_quaternion, quaternion_to_matrix

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Pose:
    """The drone at one instant.

    lat_deg, lon_deg: WGS84 position of the camera. alt_rel_m: height above home (the take-off ground).
    roll/pitch/yaw_deg: vehicle attitude, MAVLink ATTITUDE convention (NED, Z-Y-X; yaw clockwise from north).
    gimbal_q: the gimbal's attitude (w, x, y, z), FRD -> NED, or None (no gimbal report).
    gimbal_yaw_relative: True when gimbal_q's yaw is relative to the vehicle's heading (MAVLink's default
    unless GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME is set).
    """

    time_s: float
    lat_deg: float
    lon_deg: float
    alt_rel_m: float
    roll_deg: float = 0.0
    pitch_deg: float = 0.0
    yaw_deg: float = 0.0
    gimbal_q: tuple[float, float, float, float] | None = None
    gimbal_yaw_relative: bool = False

    def vehicle_rotation(self) -> F64:
        """R with v_ned = R @ v_frd of the vehicle body."""
        return euler_to_matrix(
            math.radians(self.roll_deg), math.radians(self.pitch_deg), math.radians(self.yaw_deg)
        )

    def camera_rotation(self, mount: Mount) -> F64:
        """R with v_ned = R @ v_optical: where the camera looks. ValueError when a gimbal mount has no gimbal
        attitude in the telemetry."""
        if mount.kind == "body":
            offset = euler_to_matrix(
                math.radians(mount.roll_deg), math.radians(mount.pitch_deg), math.radians(mount.yaw_deg)
            )
            return self.vehicle_rotation() @ offset @ FRD_FROM_OPTICAL
        if self.gimbal_q is None:
            raise ValueError("the telemetry has no gimbal attitude: use mount 'body' with offset angles")
        r = quaternion_to_matrix(self.gimbal_q)
        if self.gimbal_yaw_relative:
            r = euler_to_matrix(0.0, 0.0, math.radians(self.yaw_deg)) @ r
        return r @ FRD_FROM_OPTICAL


class PoseSource(Protocol):
    """Anything that gives the pose at a frame's capture time (seconds, the frames' clock), or None when it
    cannot (no telemetry yet, a gap, past the end). `home` is the origin of local east/north metres."""

    @property
    def home(self) -> GeoReference | None: ...

    def pose_at(self, time_s: float) -> Pose | None: ...


@dataclass
class _Series:
    t: F64  # (N,) ascending
    v: F64  # (N, k)

    def at(self, time_s: float, max_gap_s: float, max_extrapolate_s: float) -> F64 | None:
        t = self.t
        n = len(t)
        if n == 0:
            return None
        if time_s <= t[0]:
            return self.v[0].copy() if t[0] - time_s <= max_extrapolate_s else None
        if time_s >= t[-1]:
            return self.v[-1].copy() if time_s - t[-1] <= max_extrapolate_s else None
        j = int(np.searchsorted(t, time_s, side="right"))
        t0, t1 = t[j - 1], t[j]
        if t1 - t0 > max_gap_s:
            return None
        a = (time_s - t0) / (t1 - t0) if t1 > t0 else 0.0
        return (1 - a) * self.v[j - 1] + a * self.v[j]


def _series(rows: list[tuple[float, list[float]]]) -> _Series:
    if not rows:
        return _Series(np.zeros(0), np.zeros((0, 1)))
    rows.sort(key=lambda r: r[0])
    t = np.array([r[0] for r in rows], np.float64)
    v = np.array([r[1] for r in rows], np.float64)
    return _Series(t, v)


class TelemetryTrack:
    """Telemetry samples interpolated at any time: the file and demo pose sources, and the store behind a live
    one. Positions and angles are interpolated linearly (angles unwrapped; the gimbal quaternion normalised
    after a sign-aligned linear blend, fine for the small steps between samples).

    latency_s: how late samples are stamped (see the module docstring). max_gap_s: no pose across a gap in a
    stream longer than this (a telemetry dropout). max_extrapolate_s: hold the first/last sample this long
    beyond either end.
    """

    def __init__(
        self,
        records: Iterable[Mapping[str, Any]],
        home: GeoReference | None = None,
        latency_s: float = 0.0,
        max_gap_s: float = 1.0,
        max_extrapolate_s: float = 0.2,
    ) -> None:
        pos: list[tuple[float, list[float]]] = []
        att: list[tuple[float, list[float]]] = []
        gim: list[tuple[float, list[float]]] = []
        relative = False
        for i, rec in enumerate(records):
            if "home" in rec and home is None:
                h = rec["home"]
                home = GeoReference(
                    float(h["lat"]), float(h["lon"]), float(h.get("alt_m", 0.0)), "alt_m" in h
                )
                continue
            t = rec.get("t", rec.get("time_s"))
            if t is None:
                raise DataError(
                    f'telemetry record {i + 1} has no time: add "t" (seconds on the frames\' clock)'
                )
            t = float(t)
            try:
                if "lat" in rec and "lon" in rec:
                    alt = rec.get("alt_rel_m", rec.get("relative_alt_m"))
                    if alt is None:
                        raise DataError(
                            f"telemetry record {i + 1} has lat/lon but no alt_rel_m (height above home)"
                        )
                    pos.append((t, [float(rec["lat"]), float(rec["lon"]), float(alt)]))
                if all(k in rec for k in ("roll_deg", "pitch_deg", "yaw_deg")):
                    att.append((t, [float(rec["roll_deg"]), float(rec["pitch_deg"]), float(rec["yaw_deg"])]))
                if "gimbal_q" in rec:
                    q = np.asarray(rec["gimbal_q"], np.float64).reshape(4)
                    gim.append((t, list(q / np.linalg.norm(q))))
                elif all(k in rec for k in ("gimbal_roll_deg", "gimbal_pitch_deg", "gimbal_yaw_deg")):
                    q = euler_to_quaternion(
                        math.radians(float(rec["gimbal_roll_deg"])),
                        math.radians(float(rec["gimbal_pitch_deg"])),
                        math.radians(float(rec["gimbal_yaw_deg"])),
                    )
                    gim.append((t, list(q)))
                if rec.get("gimbal_yaw_frame") == "vehicle":
                    relative = True
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"telemetry record {i + 1} has a bad value ({exc}): numbers are expected"
                ) from exc
        if not pos:
            raise DataError("the telemetry has no position (lat, lon, alt_rel_m): ground positions need one")
        self._pos = _series(pos)
        self._att = _series(att)
        if len(self._att.t):
            self._att.v[:, 2] = np.degrees(np.unwrap(np.radians(self._att.v[:, 2])))
        self._gim = _series(gim)
        if len(self._gim.t) > 1:  # q and -q are one rotation: keep neighbours on the same side for blending
            v = self._gim.v
            for j in range(1, len(v)):
                if float(v[j] @ v[j - 1]) < 0:
                    v[j] = -v[j]
        self.gimbal_yaw_relative = relative
        if home is None:
            lat, lon, _ = self._pos.v[0]
            home = GeoReference(float(lat), float(lon), 0.0, height_known=False)
        self._home = home
        self.latency_s = float(latency_s)
        self.max_gap_s = float(max_gap_s)
        self.max_extrapolate_s = float(max_extrapolate_s)

    @property
    def home(self) -> GeoReference:
        return self._home

    @property
    def has_gimbal(self) -> bool:
        return len(self._gim.t) > 0

    @property
    def time_range_s(self) -> tuple[float, float]:
        return float(self._pos.t[0]), float(self._pos.t[-1])

    def pose_at(self, time_s: float) -> Pose | None:
        t = float(time_s) + self.latency_s
        gap, ext = self.max_gap_s, self.max_extrapolate_s
        p = self._pos.at(t, gap, ext)
        if p is None:
            return None
        a = self._att.at(t, gap, ext) if len(self._att.t) else np.zeros(3)
        if a is None:
            return None
        q: tuple[float, float, float, float] | None = None
        if len(self._gim.t):
            g = self._gim.at(t, gap, ext)
            if g is None:
                return None
            g = g / np.linalg.norm(g)
            q = (float(g[0]), float(g[1]), float(g[2]), float(g[3]))
        yaw = (float(a[2]) + 180.0) % 360.0 - 180.0
        return Pose(
            float(time_s),
            float(p[0]),
            float(p[1]),
            float(p[2]),
            float(a[0]),
            float(a[1]),
            yaw,
            q,
            self.gimbal_yaw_relative,
        )


def read_telemetry(
    path: str | Path, latency_s: float = 0.0, home: GeoReference | None = None, **kwargs: float
) -> TelemetryTrack:
    """A TelemetryTrack from a JSON-lines log (format in the module docstring). DataError names the bad line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"--telemetry {p} does not exist: pass the flight's telemetry.jsonl")
    records: list[dict[str, Any]] = []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise DataError(f"--telemetry {p} line {n} is not JSON ({exc}): one object per line") from exc
            if not isinstance(rec, dict):
                raise DataError(f"--telemetry {p} line {n} is not a JSON object")
            records.append(rec)
    return TelemetryTrack(records, home=home, latency_s=latency_s, **kwargs)


def write_telemetry(
    path: str | Path, records: Sequence[Mapping[str, Any]], home: GeoReference | None
) -> None:
    """Write records (dicts in the log format) as JSON lines, a home line first when given."""
    with open(Path(path), "w", encoding="utf-8") as fh:
        if home is not None:
            fh.write(
                json.dumps({"home": {"lat": home.lat_deg, "lon": home.lon_deg, "alt_m": home.height_m}})
                + "\n"
            )
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
