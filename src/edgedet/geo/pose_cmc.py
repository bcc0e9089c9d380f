"""Pose-based camera-motion compensation: how the ground moves in the image between two frames, from the
drone's pose alone (no image work).

The ground plane maps to each frame by a homography H_t (camera pose and intrinsics); a ground point seen at
pixel p in the previous frame is at H_t inv(H_prev) p now. The tracker takes a 2x3 affine (its Kalman warp),
so the homography is fitted with an affine by least squares over a grid of the previous frame's pixels that
see the ground; over one frame interval the projective part is tiny.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgedet.geo.camera import CameraModel, Mount
from edgedet.geo.geodesy import GeoReference
from edgedet.geo.pose import PoseSource
from edgedet.geo.project import ground_to_image

F64 = npt.NDArray[np.float64]


class PoseMotion:
    """`cmc(image, timestamp_s) -> 2x3 affine (previous-frame pixels -> this frame's) or None`, called once per
    frame in order, like the image estimator (the image is used only for its size). None on the first frame,
    when a pose is missing, or when the view is too close to the horizon for a ground homography. `failures`
    counts the Nones after the first frame."""

    def __init__(
        self,
        camera: CameraModel,
        poses: PoseSource,
        mount: Mount = Mount(),
        ground_up_m: float = 0.0,
        grid: int = 7,
    ) -> None:
        self.camera = camera
        self.poses = poses
        self.mount = mount
        self.ground_up_m = float(ground_up_m)
        self.grid = int(grid)
        self._prev: F64 | None = None
        self._hw: tuple[int, int] | None = None
        self.failures = 0
        self._started = False

    def reset(self) -> None:
        self._prev = None
        self._started = False
        self.failures = 0

    def homography(self, time_s: float, home: GeoReference) -> F64 | None:
        """Ground (east_m, north_m, 1) -> pixels at `time_s`, or None without a pose."""
        pose = self.poses.pose_at(time_s)
        if pose is None:
            return None
        en = home.to_enu(pose.lat_deg, pose.lon_deg, home.height_m)
        cam = np.array([en[0], en[1], pose.alt_rel_m])
        return ground_to_image(self.camera, pose.camera_rotation(self.mount), cam, self.ground_up_m)

    def __call__(self, image: npt.NDArray[np.uint8], timestamp_s: float) -> F64 | None:
        hw = (int(image.shape[0]), int(image.shape[1]))
        if self._hw != hw:
            self.camera = self.camera.for_size(hw)
            self._hw = hw
            self._prev = None
        home = self.poses.home
        h_now = self.homography(timestamp_s, home) if home is not None else None
        h_prev, self._prev = self._prev, h_now
        first = not self._started
        self._started = True
        if h_prev is None or h_now is None:
            if not first:
                self.failures += 1
            return None
        affine = fit_affine(h_now @ np.linalg.inv(h_prev), hw, h_prev, self.grid)
        if affine is None:
            self.failures += 1
        return affine


def fit_affine(h_step: F64, hw: tuple[int, int], h_prev: F64, grid: int = 7) -> F64 | None:
    """Least-squares 2x3 affine of the homography `h_step` over a grid x grid of pixels of an h x w frame,
    keeping pixels whose ray meets the ground in front of the camera (positive depth under h_prev)."""
    h, w = hw
    us, vs = np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, grid))
    src = np.stack([us.ravel(), vs.ravel(), np.ones(us.size)], axis=1)
    ground = src @ np.linalg.inv(h_prev).T
    # a pixel above the horizon maps to a ground point "behind" the camera: its homogeneous scale flips sign
    # relative to points below the horizon; keep the sign of the image centre's
    centre = np.linalg.inv(h_prev) @ np.array([w / 2, h / 2, 1.0])
    keep = np.sign(ground[:, 2]) == np.sign(centre[2])
    if keep.sum() < 6:
        return None
    dst = src[keep] @ h_step.T
    if np.any(np.abs(dst[:, 2]) < 1e-12):
        return None
    dst = dst[:, :2] / dst[:, 2:3]
    a, *_ = np.linalg.lstsq(src[keep], dst, rcond=None)
    affine = np.asarray(a.T, np.float64)
    return affine if np.all(np.isfinite(affine)) else None
