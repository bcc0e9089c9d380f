"""A scene's flight as telemetry: the exact pose of the camera as a drone would report it, and the same with
realistic errors and latency (for measuring how ground positions degrade).

The camera rides a gimbal: its earth-frame attitude is roll 0, pitch = tilt - 90 deg (tilt away from nadir),
yaw = the scene's heading; the drone's own attitude is level with the same heading. Records use the
`edgedet.geo.pose` JSON-lines format, times in seconds of media time (frame i is at i / fps).

Noise (TelemetryNoise): each error is a first-order Gauss-Markov process (a slowly wandering bias, as GPS
and attitude-estimator errors are) with the given standard deviation and correlation time. The attitude
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
    gimbal_deg per axis; *_tau_s their correlation times; latency_ms how late records are stamped."""

    gps_m: float = 1.5
    alt_m: float = 0.0
    attitude_deg: float = 0.5
    gimbal_deg: float = 0.3
    latency_ms: float = 50.0
    gps_tau_s: float = 30.0
    alt_tau_s: float = 10.0
    attitude_tau_s: float = 3.0
    gimbal_tau_s: float = 3.0


REALISTIC = TelemetryNoise()


def _markov(
    rng: np.random.Generator, n: int, dt: float, sigma: float, tau_s: float, dims: int
) -> npt.NDArray[np.float64]:
    """(n, dims) stationary first-order Gauss-Markov samples, std `sigma`, correlation time `tau_s`."""
    out = np.zeros((n, dims))
    if sigma <= 0 or n == 0:
        return out
    a = math.exp(-dt / tau_s) if tau_s > 0 else 0.0
    w = rng.standard_normal((n, dims)) * sigma * math.sqrt(1 - a * a)
    out[0] = rng.standard_normal(dims) * sigma
    for k in range(1, n):
        out[k] = a * out[k - 1] + w[k]
    return out


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
        dt = 1.0 / rate_hz
        en = en + _markov(rng, n, dt, noise.gps_m, noise.gps_tau_s, 2)
        alt = alt + _markov(rng, n, dt, noise.alt_m, noise.alt_tau_s, 1)[:, 0]
        att = _markov(rng, n, dt, noise.attitude_deg, noise.attitude_tau_s, 3)
        gim = _markov(rng, n, dt, noise.gimbal_deg, noise.gimbal_tau_s, 3)
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
