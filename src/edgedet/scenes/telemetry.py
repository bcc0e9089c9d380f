"""A scene's flight as telemetry: the exact pose of the camera as a drone would report it, and the same with
realistic errors and latency (for measuring how ground positions degrade).

The camera rides a gimbal: its earth-frame attitude is roll 0, pitch = tilt - 90 deg (tilt away from nadir),
yaw = the scene's heading; the drone's own attitude is level with the same heading. Records use the
`edgedet.geo.pose` JSON-lines format, times in seconds of media time (frame i is at i / fps).

Noise (TelemetryNoise): each error is a smooth first-order Gauss-Markov process (a slowly wandering bias, as
GPS and attitude-estimator errors are) with the given standard deviation and correlation time, plus a little
white noise per record. The attitude
error is the autopilot's and also enters the gimbal's earth-frame attitude (which is built on it); the gimbal
adds its own. Latency: a noisy record is stamped `latency_ms` after the instant it describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError
from edgedet.scenes.scene import DemoScene


@dataclass(frozen=True)
class TelemetryNoise:
    """1-sigma errors: gps_m per horizontal axis, alt_m of the height above home, attitude_deg and
    gimbal_deg per axis, each a smooth wandering error with correlation time *_tau_s; *_jitter_* small white
    noise on every record on top (receiver and estimator noise); latency_ms how late records are stamped."""

    gps_m: float = 1.5
    alt_m: float = 0.0
    attitude_deg: float = 0.5
    gimbal_deg: float = 0.3
    latency_ms: float = 50.0
    gps_tau_s: float = 30.0
    alt_tau_s: float = 10.0
    attitude_tau_s: float = 3.0
    gimbal_tau_s: float = 3.0
    gps_jitter_m: float = 0.02
    attitude_jitter_deg: float = 0.02
    gimbal_jitter_deg: float = 0.01


REALISTIC = TelemetryNoise()


def _wander(
    rng: np.random.Generator, times: npt.NDArray[np.float64], sigma: float, tau_s: float, dims: int
) -> npt.NDArray[np.float64]:
    """(len(times), dims) slowly wandering errors: a stationary first-order Gauss-Markov process (std `sigma`,
    correlation time `tau_s`) drawn at knots tau/8 apart (at least 0.1 s) and joined by a cubic spline, so the
    error is smooth from one sample to the next, as a GPS or attitude estimate's error is (sampled directly at
    50 Hz it would add a random-walk jitter of ~2 deg/s, which no autopilot's attitude shows)."""
    from scipy.interpolate import CubicSpline

    n = len(times)
    if sigma <= 0 or n == 0:
        return np.zeros((n, dims))
    step = max(tau_s / 8.0, 0.1)
    knots = np.arange(times[0] - step, times[-1] + 2 * step, step)
    a = math.exp(-step / tau_s) if tau_s > 0 else 0.0
    v = np.zeros((len(knots), dims))
    v[0] = rng.standard_normal(dims) * sigma
    w = rng.standard_normal((len(knots), dims)) * sigma * math.sqrt(1 - a * a)
    for k in range(1, len(knots)):
        v[k] = a * v[k - 1] + w[k]
    return np.asarray(CubicSpline(knots, v, axis=0)(times), np.float64)


def _jitter(rng: np.random.Generator, n: int, sigma: float, dims: int) -> npt.NDArray[np.float64]:
    return rng.standard_normal((n, dims)) * sigma if sigma > 0 else np.zeros((n, dims))


def scene_telemetry(
    scene: DemoScene,
    rate_hz: float = 50.0,
    noise: TelemetryNoise | None = None,
    seed: int = 0,
    pad_s: float = 0.5,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(home, records) of the scene's flight: records every 1/rate_hz s from -pad_s to the end + pad_s.
    home: {"lat", "lon", "alt_m"} of the world's centre. noise None: the exact pose."""
    from edgedet.geo.geodesy import GeoReference
    from edgedet.geo.rotation import euler_to_quaternion

    if not rate_hz > 0:
        raise ConfigError(f"telemetry rate {rate_hz} Hz must be positive, e.g. 50")
    cfg = scene.config
    if cfg.frames is None:
        raise ConfigError("an endless scene (frames=None) has no flight to write: give it a length")
    duration = cfg.frames / cfg.fps
    times = np.arange(-pad_s, duration + pad_s + 1e-9, 1.0 / rate_hz)
    camera = scene._camera()
    poses = [camera.pose(float(t)) for t in times]
    en = scene.world_to_en(np.array([p.center_xy for p in poses]))
    alt = np.array([p.altitude_m for p in poses])
    heading = np.degrees(np.array([p.yaw_rad for p in poses]))
    tilt = np.degrees(np.array([p.tilt_rad for p in poses]))
    n = len(times)
    g_rpy = np.stack([np.zeros(n), tilt - 90.0, heading], axis=1)
    v_rpy = np.stack([np.zeros(n), np.zeros(n), heading], axis=1)
    stamp = times.copy()
    if noise is not None:
        rng = np.random.default_rng(np.random.SeedSequence(entropy=[int(seed), scene.seed, scene.index]))
        en = (
            en + _wander(rng, times, noise.gps_m, noise.gps_tau_s, 2) + _jitter(rng, n, noise.gps_jitter_m, 2)
        )
        alt = alt + _wander(rng, times, noise.alt_m, noise.alt_tau_s, 1)[:, 0]
        att = _wander(rng, times, noise.attitude_deg, noise.attitude_tau_s, 3)
        att += _jitter(rng, n, noise.attitude_jitter_deg, 3)
        gim = _wander(rng, times, noise.gimbal_deg, noise.gimbal_tau_s, 3)
        gim += _jitter(rng, n, noise.gimbal_jitter_deg, 3)
        v_rpy = v_rpy + att
        g_rpy = g_rpy + att + gim
        stamp = times + noise.latency_ms / 1000.0
    home = GeoReference(cfg.origin_lat_deg, cfg.origin_lon_deg, 0.0)
    geo = home.to_geodetic(en[:, 0], en[:, 1], 0.0)
    records = []
    for k in range(n):
        q = euler_to_quaternion(*np.radians(g_rpy[k]))
        records.append(
            {
                "t": round(float(stamp[k]), 6),
                "lat": float(geo[k, 0]),
                "lon": float(geo[k, 1]),
                "alt_rel_m": round(float(alt[k]), 4),
                "roll_deg": round(float(v_rpy[k, 0]), 5),
                "pitch_deg": round(float(v_rpy[k, 1]), 5),
                "yaw_deg": round(float((v_rpy[k, 2] + 180.0) % 360.0 - 180.0), 5),
                "gimbal_q": [round(float(c), 9) for c in q],
                "gimbal_yaw_frame": "earth",
            }
        )
    return {"lat": home.lat_deg, "lon": home.lon_deg, "alt_m": home.height_m}, records


def scene_pose_source(
    scene: DemoScene,
    noise: TelemetryNoise | None = None,
    latency_ms: float = 0.0,
    rate_hz: float = 50.0,
    seed: int = 0,
) -> Any:
    """An `edgedet.geo.TelemetryTrack` over the scene's telemetry (exact, or with `noise`);
    `latency_ms` is the compensation the reader applies (the noise's latency_ms is what the records carry)."""
    from edgedet.geo.pose import TelemetryTrack

    home, records = scene_telemetry(scene, rate_hz, noise, seed)
    return TelemetryTrack([{"home": home}, *records], latency_s=latency_ms / 1000.0)


def demo_geo(config: Any, scene: DemoScene) -> Any:
    """`edgedet.geo.build_geo` for a demo flight: --telemetry demo (exact) or demo-noisy (REALISTIC errors,
    stamped 50 ms late; --telemetry-latency-ms compensates), the scene's camera unless the options name one."""
    from edgedet.geo.build import build_geo
    from edgedet.geo.camera import CameraModel

    noise = REALISTIC if config.telemetry == "demo-noisy" else None
    poses = scene_pose_source(scene, noise, latency_ms=config.telemetry_latency_ms)
    camera = CameraModel.from_hfov(scene.config.hfov_deg, scene.config.size_hw)
    return build_geo(config, poses=poses, camera=camera)
