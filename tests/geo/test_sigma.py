"""sigma_m (first-order propagation of the pose error model) against Monte-Carlo sampling of the same errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgedet.geo import CameraModel, ErrorModel, GeoReference, GroundProjector, Mount, Pose
from edgedet.geo.rotation import euler_to_quaternion, small_rotation

HOME = GeoReference(47.397742, 8.545594, 0.0)
CAM = CameraModel.from_hfov(75.0, (384, 640))
UV = np.array([[320.0, 192.0], [20.0, 20.0], [620.0, 370.0], [100.0, 300.0]])


def _pose(pitch_deg: float, yaw_deg: float, alt: float) -> Pose:
    q = tuple(float(v) for v in euler_to_quaternion(0.0, math.radians(pitch_deg), math.radians(yaw_deg)))
    return Pose(0.0, HOME.lat_deg, HOME.lon_deg, alt, 0.0, 0.0, yaw_deg, q)  # type: ignore[arg-type]


def _monte_carlo(proj: GroundProjector, pose: Pose, errors: ErrorModel, n: int, seed: int) -> np.ndarray:
    """(n, P) ground errors (radial, m) of the pixels when the pose and pixels are drawn from `errors`."""
    rng = np.random.default_rng(seed)
    r0 = pose.camera_rotation(proj.mount)
    cam0 = proj.camera_enu(pose, HOME)
    base, _ = proj.ground_enu(CAM.rays(UV), r0, cam0)
    out = np.zeros((n, len(UV)))
    for k in range(n):
        cam = cam0 + np.array(
            [rng.normal(0, errors.gps_m), rng.normal(0, errors.gps_m), rng.normal(0, errors.alt_m)]
        )
        r = small_rotation(rng.normal(0, errors.pointing_rad, 3)) @ r0
        uv = UV + rng.normal(0, errors.pixel_px, UV.shape)
        p, _ = proj.ground_enu(CAM.rays(uv), r, cam)
        out[k] = np.hypot(*(p - base).T)
    return out


@pytest.mark.parametrize(
    "errors",
    [
        ErrorModel(),  # GPS 1.5 m, alt 0.5 m, attitude 0.5 deg, gimbal 0.3 deg, pixel 1 px
        ErrorModel(gps_m=0.0, alt_m=0.0, attitude_deg=1.0, gimbal_deg=0.5, pixel_px=0.0),  # pointing only
        ErrorModel(gps_m=0.0, alt_m=2.0, attitude_deg=0.0, gimbal_deg=0.0, pixel_px=3.0),
    ],
)
@pytest.mark.parametrize("pitch_deg, alt", [(-90.0, 30.0), (-70.0, 60.0)])
def test_sigma_matches_monte_carlo(errors, pitch_deg, alt):
    proj = GroundProjector(CAM, Mount("gimbal"), HOME, errors=errors)
    pose = _pose(pitch_deg, 35.0, alt)
    fix = proj.locate(UV, pose)
    mc = _monte_carlo(proj, pose, errors, 3000, seed=1)
    rms = np.sqrt(np.mean(mc**2, axis=0))
    np.testing.assert_allclose(fix.sigma_m, rms, rtol=0.07)


def test_gps_only_sigma_is_exactly_the_gps_error():
    proj = GroundProjector(
        CAM, Mount(), HOME, errors=ErrorModel(gps_m=2.0, alt_m=0, attitude_deg=0, gimbal_deg=0, pixel_px=0)
    )
    fix = proj.locate(UV, _pose(-80.0, 0.0, 40.0))
    np.testing.assert_allclose(fix.sigma_m, 2.0 * math.sqrt(2.0), rtol=1e-9)


def test_sigma_grows_towards_the_horizon():
    proj = GroundProjector(CAM, Mount(), HOME, errors=ErrorModel(gps_m=0, alt_m=0, pixel_px=0))
    near = proj.locate([[320, 192]], _pose(-80.0, 0.0, 40.0)).sigma_m[0]
    far = proj.locate([[320, 192]], _pose(-20.0, 0.0, 40.0)).sigma_m[0]
    assert far > 5 * near
