"""Pixels -> points on the ground: the viewing ray of each pixel from the camera's pose, intersected with flat
ground, with the uncertainty the pose's errors imply.

Ground: the plane `ground_up_m` above home (0: the take-off ground) in the local east/north/up frame at home.
A ray that does not point down by at least `min_depression_deg`, or that meets the ground farther than
`max_range_m` (horizontal distance from the drone), gets no position: near the horizon a tenth of a degree of
attitude error moves the point by tens of metres, and a wrong position is worse than none.

Uncertainty: the pose error model (GPS, relative altitude, attitude, gimbal, pixel) is propagated to the ground
point to first order (a numeric Jacobian, J diag(sigma^2) J^T). `sigma_m` is the horizontal RMS radius
sqrt(var_east + var_north): for a round error, 1.18 sigma_m holds about half the points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError
from edgedet.geo.camera import CameraModel, Mount
from edgedet.geo.geodesy import GeoReference
from edgedet.geo.pose import Pose
from edgedet.geo.rotation import small_rotation

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ErrorModel:
    """1-sigma errors of the pose and the image point.

    gps_m: horizontal position, per axis (east and north). alt_m: height above home. attitude_deg: vehicle
    roll/pitch/yaw, per axis. gimbal_deg: the gimbal's (or a body mount's calibration) error, per axis; the
    camera's pointing error is attitude and gimbal combined in quadrature (a gimbal's earth-frame attitude is
    the autopilot's estimate plus the gimbal's own). pixel_px: the box point's error in the image.
    """

    gps_m: float = 1.5
    alt_m: float = 0.5
    attitude_deg: float = 0.5
    gimbal_deg: float = 0.3
    pixel_px: float = 1.0

    @property
    def pointing_rad(self) -> float:
        return math.radians(math.hypot(self.attitude_deg, self.gimbal_deg))


@dataclass(frozen=True)
class GroundFix:
    """Ground points of N pixels: east_m, north_m (local, at home), lat_deg, lon_deg, sigma_m, all (N,)
    float64, NaN where `valid` is False (above the horizon, too far, no pose).

    range_m: (N,) straight-line distance camera -> ground point (None: not computed). ground_alt_m: the
    ground plane's ellipsoidal height (NaN when the home's height is not known)."""

    east_m: F64
    north_m: F64
    lat_deg: F64
    lon_deg: F64
    sigma_m: F64
    valid: B
    range_m: F64 | None = None
    ground_alt_m: float = math.nan

    @classmethod
    def invalid(cls, n: int) -> GroundFix:
        nan = np.full(n, np.nan)
        return cls(nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), np.zeros(n, bool))


class GroundProjector:
    """Projects pixels of one camera onto flat ground from a Pose. Stateless apart from its settings."""

    def __init__(
        self,
        camera: CameraModel,
        mount: Mount = Mount(),
        home: GeoReference | None = None,
        ground_up_m: float = 0.0,
        max_range_m: float = 1000.0,
        min_depression_deg: float = 1.0,
        errors: ErrorModel = ErrorModel(),
    ) -> None:
        if not max_range_m > 0:
            raise ConfigError(f"max range {max_range_m} m must be positive, e.g. 1000")
        self.camera = camera
        self.mount = mount
        self.home = home
        self.ground_up_m = float(ground_up_m)
        self.max_range_m = float(max_range_m)
        self._min_down = math.sin(math.radians(min_depression_deg))
        self.errors = errors

    def camera_enu(self, pose: Pose, home: GeoReference) -> F64:
        """(3,) east, north, up of the camera: north/east from its lat/lon, up = its height above home."""
        en = home.to_enu(pose.lat_deg, pose.lon_deg, home.height_m)
        return np.array([en[0], en[1], pose.alt_rel_m])

    def ground_enu(self, rays_optical: F64, r_ned: F64, cam_enu: F64) -> tuple[F64, B]:
        """(N, 2) east/north where each ray meets the ground, and which rays count (see the module docstring)."""
        d_ned = rays_optical @ r_ned.T
        d_enu = np.stack([d_ned[:, 1], d_ned[:, 0], -d_ned[:, 2]], axis=1)
        norm = np.linalg.norm(d_enu, axis=1)
        down = -d_enu[:, 2] / np.maximum(norm, 1e-12)
        height = cam_enu[2] - self.ground_up_m
        ok = (down > self._min_down) & (height > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(ok, height / np.where(ok, -d_enu[:, 2], 1.0), np.nan)
        en = cam_enu[:2] + s[:, None] * d_enu[:, :2]
        rng = np.hypot(en[:, 0] - cam_enu[0], en[:, 1] - cam_enu[1])
        ok &= rng <= self.max_range_m
        en[~ok] = np.nan
        return en, ok

    def locate(self, uv: npt.ArrayLike, pose: Pose, home: GeoReference | None = None) -> GroundFix:
        """Ground points of (N, 2) pixels seen from `pose`. `home` (else the projector's) is the origin."""
        home = home or self.home
        if home is None:
            raise ConfigError("ground positions need a home (origin): give the telemetry a home line")
        pts = np.asarray(uv, np.float64).reshape(-1, 2)
        n = len(pts)
        if n == 0:
            return GroundFix.invalid(0)
        r = pose.camera_rotation(self.mount)
        cam = self.camera_enu(pose, home)
        rays = self.camera.rays(pts)
        en, ok = self.ground_enu(rays, r, cam)
        sigma = self._sigma(pts, rays, r, cam, en) if ok.any() else np.full(n, np.nan)
        sigma[~ok] = np.nan
        geo = home.to_geodetic(en[:, 0], en[:, 1], home.height_m + self.ground_up_m)
        lat, lon = geo[..., 0], geo[..., 1]
        lat = np.where(ok, lat, np.nan)
        lon = np.where(ok, lon, np.nan)
        height = cam[2] - self.ground_up_m
        rng = np.where(ok, np.sqrt((en[:, 0] - cam[0]) ** 2 + (en[:, 1] - cam[1]) ** 2 + height**2), np.nan)
        ground_alt = home.height_m + self.ground_up_m if home.height_known else math.nan
        return GroundFix(en[:, 0].copy(), en[:, 1].copy(), lat, lon, sigma, ok, rng, ground_alt)

    def jacobian(self, pts: F64, rays: F64, r: F64, cam: F64, en: F64) -> F64:
        """(N, 2, 8) d(east, north) / d(gps_e, gps_n, alt, rot_n, rot_e, rot_d, u, v): metres per metre,
        per radian of an earth-frame rotation of the camera, per pixel (central differences)."""
        n = len(pts)
        jac = np.zeros((n, 2, 8))
        jac[:, 0, 0] = 1.0  # a GPS error moves every ground point by the same amount
        jac[:, 1, 1] = 1.0
        dh = 0.05
        c1, c0 = cam.copy(), cam.copy()
        c1[2] += dh
        c0[2] -= dh
        jac[:, :, 2] = (self.ground_enu(rays, r, c1)[0] - self.ground_enu(rays, r, c0)[0]) / (2 * dh)
        da = 1e-4
        for axis in range(3):
            delta = np.zeros(3)
            delta[axis] = da
            p1, _ = self.ground_enu(rays, small_rotation(delta) @ r, cam)
            p0, _ = self.ground_enu(rays, small_rotation(-delta) @ r, cam)
            jac[:, :, 3 + axis] = (p1 - p0) / (2 * da)
        dp = 0.25
        for axis in range(2):
            off = np.zeros(2)
            off[axis] = dp
            p1, _ = self.ground_enu(self.camera.rays(pts + off), r, cam)
            p0, _ = self.ground_enu(self.camera.rays(pts - off), r, cam)
            jac[:, :, 6 + axis] = (p1 - p0) / (2 * dp)
        return jac

    def _sigma(self, pts: F64, rays: F64, r: F64, cam: F64, en: F64) -> F64:
        e = self.errors
        var = np.array(
            [e.gps_m**2, e.gps_m**2, e.alt_m**2] + [e.pointing_rad**2] * 3 + [e.pixel_px**2, e.pixel_px**2]
        )
        jac = self.jacobian(pts, rays, r, cam, en)
        cov = np.einsum("nik,k,njk->nij", jac, var, jac)
        return np.sqrt(cov[:, 0, 0] + cov[:, 1, 1])


def ground_to_image(camera: CameraModel, r_ned: F64, cam_enu: F64, ground_up_m: float = 0.0) -> F64:
    """3x3 homography from ground (east_m, north_m, 1) to undistorted pixels of a pinhole camera at cam_enu
    with orientation r_ned (v_ned = R v_optical): what pose-based motion compensation composes between frames."""
    # optical <- NED <- ENU
    enu_to_ned = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    r_opt_enu = r_ned.T @ enu_to_ned
    cols = np.stack(
        [r_opt_enu[:, 0], r_opt_enu[:, 1], r_opt_enu @ (np.array([0.0, 0.0, ground_up_m]) - cam_enu)], axis=1
    )
    return camera.camera_matrix @ cols
