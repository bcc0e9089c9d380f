"""Camera-motion compensation: the global image motion between consecutive frames, as a 2x3 affine.

A drone's camera moves, so a track's predicted box drifts by the camera's motion as well as the object's.
The estimator tracks corners between downscaled grey frames with pyramidal Lucas-Kanade and fits a similarity
transform with RANSAC (moving objects are outliers). The result maps previous-frame pixels to current-frame
pixels and is what `SortTracker.update/predict(warp=...)` take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError

CMC_METHODS = ("auto", "off", "sparse", "pose")


@dataclass(frozen=True)
class CmcConfig:
    """max_side_px: frames are downscaled so their longer side is at most this before estimating (cost).
    max_corners / min_inliers: features tracked, and inliers needed to trust a fit (else no warp)."""

    max_side_px: int = 320
    max_corners: int = 200
    min_inliers: int = 12
    ransac_px: float = 1.0  # reprojection threshold in downscaled pixels


class CameraMotionEstimator:
    """Call once per frame, in order; returns the affine from the previous frame, or None (first frame, or
    too few reliable features: the tracker then predicts without compensation)."""

    def __init__(self, config: CmcConfig | None = None) -> None:
        self.config = config or CmcConfig()
        self._prev: npt.NDArray[np.uint8] | None = None
        self._scale = 1.0
        self.failures = 0

    def reset(self) -> None:
        self._prev = None
        self.failures = 0

    def _gray(self, image_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        h, w = image_bgr.shape[:2]
        self._scale = min(1.0, self.config.max_side_px / max(h, w))
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        if self._scale < 1.0:
            size = (max(1, round(w * self._scale)), max(1, round(h * self._scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return np.asarray(gray, np.uint8)

    def __call__(
        self, image_bgr: npt.NDArray[np.uint8], timestamp_s: float | None = None
    ) -> npt.NDArray[np.float64] | None:
        """timestamp_s is not used (the image says how the camera moved); it is there because every motion
        estimator gets (image, capture time), and the pose-based one needs the time."""
        cur = self._gray(image_bgr)
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            return None
        cfg = self.config
        pts = cv2.goodFeaturesToTrack(
            prev, maxCorners=cfg.max_corners, qualityLevel=0.01, minDistance=8, blockSize=5
        )
        if pts is None or len(pts) < cfg.min_inliers:
            self.failures += 1
            return None
        nxt, status, _err = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, winSize=(21, 21), maxLevel=3)  # type: ignore[call-overload]
        ok = status.reshape(-1) == 1
        if ok.sum() < cfg.min_inliers:
            self.failures += 1
            return None
        m, inliers = cv2.estimateAffinePartial2D(
            pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=cfg.ransac_px, maxIters=200
        )
        if m is None or inliers is None or int(inliers.sum()) < cfg.min_inliers:
            self.failures += 1
            return None
        affine = np.asarray(m, np.float64)
        # The linear part is scale-free; the translation was measured in downscaled pixels.
        affine[:, 2] /= self._scale
        return affine


def make_cmc(method: str, live: bool = False, pose: Any | None = None) -> Any | None:
    """The estimator for --cmc `method`, or None (off). "auto" is "pose" when a pose-based estimator is given
    (`pose`: an `edgedet.geo.PoseMotion`, built when a telemetry/pose source is configured: no image work),
    else on for live sources (cameras, streams: a drone's camera moves; on the held-out demo flights it added
    6 IDF1 points at detect-every 2, 12 at every 3rd: see models/README.md) and off for files. "pose" without
    a pose source is an error."""
    if method not in CMC_METHODS:
        raise ConfigError(f"unknown --cmc {method!r}: choose one of {', '.join(CMC_METHODS)}")
    if method == "pose" or (method == "auto" and pose is not None):
        if pose is None:
            raise ConfigError(
                "--cmc pose needs the drone's pose: pass --telemetry FILE (or a demo source) and the camera "
                "(--camera-calib FILE or --hfov DEG)"
            )
        return pose
    if method == "off" or (method == "auto" and not live):
        return None
    return CameraMotionEstimator()
