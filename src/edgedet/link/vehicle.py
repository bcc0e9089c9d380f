"""The vehicle's latest attitude, position and gimbal attitude, as read from MAVLink, with their times.

This module has no MAVLink dependency: the MAVLink component writes into a `VehicleState`, and anything else
(the ground-positions work, a sink, a test) reads `latest()` from any thread. Units are SI and named: angles in
radians, positions in degrees of latitude/longitude and metres, speeds in m/s.

Times: `received_s` is `time.monotonic()` when the message arrived here, the clock `Frame.timestamp_s` uses for
live sources, so a frame can be matched with the attitude nearest its capture; `time_boot_ms` is the sender's
own clock, as it stamped the message.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class Attitude:
    """ATTITUDE: the vehicle's roll, pitch, yaw (rad, yaw from north, clockwise) and their rates (rad/s)."""

    roll_rad: float
    pitch_rad: float
    yaw_rad: float
    rollspeed_rad_s: float
    pitchspeed_rad_s: float
    yawspeed_rad_s: float
    time_boot_ms: int
    received_s: float


@dataclass(frozen=True)
class GlobalPosition:
    """GLOBAL_POSITION_INT: WGS84 position, altitude above mean sea level and above home, velocity (NED, m/s),
    heading (rad, NaN when the vehicle does not know it)."""

    lat_deg: float
    lon_deg: float
    alt_msl_m: float
    alt_rel_m: float
    vn_m_s: float
    ve_m_s: float
    vd_m_s: float
    heading_rad: float
    time_boot_ms: int
    received_s: float


@dataclass(frozen=True)
class GimbalAttitude:
    """The camera gimbal's attitude as a quaternion (w, x, y, z) and as roll/pitch/yaw (rad).

    frame: "vehicle" when yaw is relative to the vehicle's heading, "earth" when relative to north.
    source: the MAVLink message it came from (GIMBAL_DEVICE_ATTITUDE_STATUS, MOUNT_ORIENTATION, MOUNT_STATUS).
    """

    q_wxyz: tuple[float, float, float, float]
    roll_rad: float
    pitch_rad: float
    yaw_rad: float
    frame: str
    source: str
    time_boot_ms: int
    received_s: float


@dataclass(frozen=True)
class VehicleSnapshot:
    """The latest of each, or None where nothing has arrived yet."""

    attitude: Attitude | None = None
    position: GlobalPosition | None = None
    gimbal: GimbalAttitude | None = None


class VehicleState:
    """Thread-safe holder of the vehicle messages: `update_*` add one, `latest()` returns the newest of each,
    `at(t)` the one of each received nearest to monotonic time `t` (from the last `history` of each kind, about
    6 s at ArduPilot's default 10 Hz), for matching a frame's capture time."""

    def __init__(self, history: int = 64) -> None:
        self._lock = threading.Lock()
        self._snap = VehicleSnapshot()
        self._attitudes: deque[Attitude] = deque(maxlen=history)
        self._positions: deque[GlobalPosition] = deque(maxlen=history)
        self._gimbals: deque[GimbalAttitude] = deque(maxlen=history)
        self.messages = 0

    def latest(self) -> VehicleSnapshot:
        with self._lock:
            return self._snap

    def at(self, time_s: float) -> VehicleSnapshot:
        """The sample of each kind whose `received_s` is nearest `time_s` (None where none has arrived)."""
        with self._lock:
            return VehicleSnapshot(
                _nearest(self._attitudes, time_s),
                _nearest(self._positions, time_s),
                _nearest(self._gimbals, time_s),
            )

    def update_attitude(self, value: Attitude) -> None:
        with self._lock:
            self._attitudes.append(value)
            self._snap = VehicleSnapshot(value, self._snap.position, self._snap.gimbal)
            self.messages += 1

    def update_position(self, value: GlobalPosition) -> None:
        with self._lock:
            self._positions.append(value)
            self._snap = VehicleSnapshot(self._snap.attitude, value, self._snap.gimbal)
            self.messages += 1

    def update_gimbal(self, value: GimbalAttitude) -> None:
        with self._lock:
            self._gimbals.append(value)
            self._snap = VehicleSnapshot(self._snap.attitude, self._snap.position, value)
            self.messages += 1


_T = TypeVar("_T", Attitude, GlobalPosition, GimbalAttitude)


def _nearest(samples: deque[_T], time_s: float) -> _T | None:
    if not samples:
        return None
    return min(samples, key=lambda s: abs(s.received_s - time_s))


def quaternion_to_euler(q_wxyz: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """(w, x, y, z) -> (roll, pitch, yaw) in radians, aerospace ZYX order (as MAVLink's attitude messages)."""
    w, x, y, z = q_wxyz
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def euler_to_quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(roll, pitch, yaw) radians, ZYX order -> (w, x, y, z)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


__all__ = [
    "Attitude",
    "GimbalAttitude",
    "GlobalPosition",
    "VehicleSnapshot",
    "VehicleState",
    "euler_to_quaternion",
    "quaternion_to_euler",
]
