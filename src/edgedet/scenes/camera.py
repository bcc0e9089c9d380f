"""The drone camera: a smooth random flight over the world and the ground-plane homography it sees through.

The path is a sum of a few slow sinusoids per parameter, so it is smooth, bounded for any length of flight and
can be evaluated at any time without stepping (frame i of a sequence does not depend on how it was reached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CameraPose:
    """Where the drone is and how the camera points.

    center_xy: ground point below the drone, world px. yaw_rad: direction of "up in the image" on the ground,
    0 = world -y (north), positive clockwise. altitude_m: height above ground. tilt_rad: camera pitch away from
    straight down (0 = nadir), towards the image top.
    """

    center_xy: tuple[float, float]
    yaw_rad: float
    altitude_m: float
    tilt_rad: float


def focal_px(width: int, hfov_deg: float) -> float:
    """Pinhole focal length in output pixels for a horizontal field of view."""
    return (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)


def homography(
    pose: CameraPose, size_hw: tuple[int, int], hfov_deg: float, px_per_m: float
) -> npt.NDArray[np.float64]:
    """3x3 float64 mapping world px (x, y, 1) on the ground plane to output pixels (u, v, w).

    Pinhole camera at `altitude_m` above `center_xy`, looking down and pitched forward by `tilt_rad`; the
    principal point is the image centre.
    """
    h_out, w_out = size_hw
    f = focal_px(w_out, hfov_deg)
    alt = pose.altitude_m * px_per_m  # altitude in world px so the ground stays in world px
    s, c = math.sin(pose.tilt_rad), math.cos(pose.tilt_rad)
    cx, cy = pose.center_xy
    cy_, sy_ = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
    # world -> (right, ahead) ground coordinates relative to the drone
    to_ground = np.array(
        [
            [cy_, sy_, -(cx * cy_ + cy * sy_)],
            [sy_, -cy_, -(cx * sy_ - cy * cy_)],
            [0.0, 0.0, 1.0],
        ]
    )
    # ground (right r, ahead a) -> image, for camera axes x=(1,0,0), y=(0,-c,-s), z=(0,s,-c) and point (r,a,-alt)
    k = np.array(
        [
            [f, w_out / 2.0 * s, w_out / 2.0 * c * alt],
            [0.0, -f * c + h_out / 2.0 * s, f * s * alt + h_out / 2.0 * c * alt],
            [0.0, s, c * alt],
        ]
    )
    return k @ to_ground


@dataclass(frozen=True)
class _Wave:
    amp: npt.NDArray[np.float64]
    omega: npt.NDArray[np.float64]
    phase: npt.NDArray[np.float64]

    def __call__(self, t: float) -> float:
        return float(np.sum(self.amp * np.sin(self.omega * t + self.phase)))

    def rate(self, t: float) -> float:
        return float(np.sum(self.amp * self.omega * np.cos(self.omega * t + self.phase)))


def _wave(rng: np.random.Generator, amps: list[float], periods_s: tuple[float, float]) -> _Wave:
    n = len(amps)
    period = rng.uniform(*periods_s, n)
    return _Wave(np.asarray(amps, np.float64), 2 * np.pi / period, rng.uniform(0, 2 * np.pi, n))


class CameraPath:
    """A random smooth flight. `pose(t)` is a pure function of the time in seconds.

    speed_mps is the typical ground speed; the drone also hovers, speeds up and turns as the waves add up.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        world_size: int,
        px_per_m: float,
        altitude_m: tuple[float, float],
        tilt_deg: tuple[float, float],
        hfov_deg: float,
        speed_mps: float = 6.0,
    ) -> None:
        self.altitude_m = altitude_m
        self.tilt_deg = tilt_deg
        # Keep the whole view inside the world: the farthest visible ground point is at most
        # alt * tan(tilt + half-diagonal fov) from the drone.
        half_diag = math.atan(math.tan(math.radians(hfov_deg) / 2) * math.hypot(1, 0.6))
        reach_m = altitude_m[1] * math.tan(min(math.radians(tilt_deg[1]) + half_diag, math.radians(80)))
        margin = reach_m * px_per_m + 8
        room = max(world_size / 2 - margin, 0.0)
        self.center0 = (
            world_size / 2 + rng.uniform(-0.2, 0.2) * room,
            world_size / 2 + rng.uniform(-0.2, 0.2) * room,
        )
        amp_px = 0.8 * room
        # wave periods chosen so that amplitude * omega gives about speed_mps
        omega = speed_mps * px_per_m / max(amp_px * 0.55, 1.0)
        period = 2 * np.pi / omega
        shares = [0.55, 0.3, 0.15]
        self.x = _wave(rng, [amp_px * a for a in shares], (period * 0.7, period * 1.4))
        self.y = _wave(rng, [amp_px * a for a in shares], (period * 0.7, period * 1.4))
        self.yaw0 = float(rng.uniform(0, 2 * np.pi))
        self.yaw = _wave(rng, [0.7, 0.35], (30.0, 70.0))
        self.alt = _wave(rng, [0.6, 0.4], (15.0, 40.0))
        self.tilt = _wave(rng, [0.7, 0.3], (20.0, 50.0))
        # high-frequency vibration (gimbal not perfect): tiny yaw and position jitter
        self.jx = _wave(rng, [0.2 * px_per_m, 0.1 * px_per_m], (0.15, 0.4))
        self.jy = _wave(rng, [0.2 * px_per_m, 0.1 * px_per_m], (0.15, 0.4))
        self.margin = margin

    def pose(self, t: float) -> CameraPose:
        lo, hi = self.altitude_m
        alt = lo + (hi - lo) * (0.5 + 0.5 * self.alt(t))
        tlo, thi = self.tilt_deg
        tilt = math.radians(tlo + (thi - tlo) * (0.5 + 0.5 * self.tilt(t)))
        cx = self.center0[0] + self.x(t) + self.jx(t)
        cy = self.center0[1] + self.y(t) + self.jy(t)
        return CameraPose((cx, cy), self.yaw0 + self.yaw(t), alt, tilt)
