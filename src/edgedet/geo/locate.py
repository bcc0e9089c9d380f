"""Per frame: each detection's ground contact point -> GroundPositions, from the pose at the capture time."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError
from edgedet.geo.camera import CameraModel
from edgedet.geo.pose import PoseSource
from edgedet.geo.project import GroundFix, GroundProjector
from edgedet.types import Detections, Frame, GroundPositions

log = logging.getLogger(__name__)

ANCHORS = ("bottom", "center")


def anchor_points(xyxy: npt.ArrayLike, anchor: str = "bottom") -> npt.NDArray[np.float64]:
    """(N, 2) pixel of each box that touches the ground. "bottom": bottom centre (upright objects: people,
    cars seen obliquely). "center": box centre (flat objects, or any object seen from straight above)."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    u = (b[:, 0] + b[:, 2]) / 2
    if anchor == "bottom":
        return np.stack([u, b[:, 3]], axis=1)
    if anchor == "center":
        return np.stack([u, (b[:, 1] + b[:, 3]) / 2], axis=1)
    raise ConfigError(f"unknown ground anchor {anchor!r}: use one of {', '.join(ANCHORS)}")


class GeoLocator:
    """`locator(frame, dets) -> GroundPositions` (NaN rows where there is no position).

    The camera model is rescaled to the frame's size on first use (a calibration at another resolution of the
    same aspect ratio). Frames without a pose (telemetry not started, a dropout) get all-NaN positions and
    are counted in `frames_without_pose`.
    """

    def __init__(self, projector: GroundProjector, poses: PoseSource, anchor: str = "bottom") -> None:
        anchor_points(np.zeros((0, 4)), anchor)  # validate early
        self.projector = projector
        self.poses = poses
        self.anchor = anchor
        self.frames_without_pose = 0
        self._camera_hw: tuple[int, int] | None = None

    def _fit_camera(self, hw: tuple[int, int]) -> None:
        if self._camera_hw != hw:
            cam: CameraModel = self.projector.camera.for_size(hw)
            self.projector.camera = cam
            self._camera_hw = hw

    def fix(self, frame: Frame, dets: Detections) -> GroundFix:
        self._fit_camera(frame.hw)
        pose = self.poses.pose_at(frame.timestamp_s)
        if pose is None:
            self.frames_without_pose += 1
            return GroundFix.invalid(len(dets))
        home = self.poses.home or self.projector.home
        return self.projector.locate(anchor_points(dets.xyxy, self.anchor), pose, home)

    def __call__(self, frame: Frame, dets: Detections) -> GroundPositions:
        f = self.fix(frame, dets)
        return GroundPositions(
            f.lat_deg,
            f.lon_deg,
            f.east_m,
            f.north_m,
            f.sigma_m,
            range_m=f.range_m,
            ground_alt_m=f.ground_alt_m,
        )
