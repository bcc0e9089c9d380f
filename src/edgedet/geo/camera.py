"""The camera: intrinsics (from an OpenCV calibration file or a horizontal field of view) and its mounting.

Calibration files: what `cv2.calibrateCamera` results are usually saved as.
- cv2.FileStorage YAML / XML / JSON (OpenCV's calibration sample, `fs.write("camera_matrix", K)`): keys
  camera_matrix / cameraMatrix / K and distortion_coefficients / dist_coeffs / distCoeffs / D, optional
  image_width and image_height.
- Plain YAML or JSON with the same keys, each matrix either a nested list, a flat list, or ROS
  camera_calibration's `{rows, cols, data}` form.
Only OpenCV's standard (Brown-Conrady, 4-14 coefficients) model is read; fisheye calibrations are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgedet.errors import ConfigError, DataError

F64 = npt.NDArray[np.float64]

_K_KEYS = ("camera_matrix", "cameraMatrix", "K", "mtx", "intrinsic_matrix", "intrinsics")
_D_KEYS = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "D", "dist", "distortion")
MOUNTS = ("gimbal", "body")
_UNDISTORT_STOP = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics with OpenCV distortion, for images of `size_hw` (height, width) pixels.

    camera_matrix: 3x3 K in pixels (fx, fy, cx, cy); pixel centres at integer coordinates, as OpenCV and
    `Detections` use. dist_coeffs: (k1, k2, p1, p2[, k3, ...]) or empty for none.
    """

    camera_matrix: F64
    dist_coeffs: F64 = field(default_factory=lambda: np.zeros(0))
    size_hw: tuple[int, int] | None = None
    hfov_deg: float | None = None  # set by from_hfov: another frame size keeps the field of view, not K

    def __post_init__(self) -> None:
        k = np.asarray(self.camera_matrix, np.float64)
        if k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ConfigError(f"camera matrix must be a finite 3x3 with positive fx, fy, got {k.tolist()}")
        d = np.asarray(self.dist_coeffs, np.float64).reshape(-1)
        if d.size not in (0, 4, 5, 8, 12, 14) or not np.all(np.isfinite(d)):
            raise ConfigError(
                f"distortion has {d.size} coefficients: OpenCV's model takes 4, 5, 8, 12 or 14 (k1 k2 p1 p2 ...)"
            )
        object.__setattr__(self, "camera_matrix", k)
        object.__setattr__(self, "dist_coeffs", d)

    @classmethod
    def from_hfov(cls, hfov_deg: float, size_hw: tuple[int, int]) -> CameraModel:
        """Square pixels, no distortion, principal point at (w/2, h/2), f = (w/2) / tan(hfov/2)."""
        if not 1.0 <= hfov_deg < 179.0:
            raise ConfigError(
                f"--hfov {hfov_deg} is not a field of view: pass degrees in 1..179, e.g. --hfov 75"
            )
        h, w = size_hw
        f = (w / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        k = np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])
        return cls(k, np.zeros(0), (int(h), int(w)), float(hfov_deg))

    def for_size(self, size_hw: tuple[int, int]) -> CameraModel:
        """The same camera for frames of another resolution (calibrated at 1920x1080, streamed at 640x360):
        K scaled by the size ratio. ConfigError when the aspect ratio differs (cropped, not scaled). A model
        made from a field of view is remade for the new size (any aspect ratio)."""
        if self.hfov_deg is not None and self.size_hw != tuple(size_hw):
            return CameraModel.from_hfov(self.hfov_deg, size_hw)
        if self.size_hw is None or tuple(self.size_hw) == tuple(size_hw):
            return (
                self
                if self.size_hw is not None
                else CameraModel(self.camera_matrix, self.dist_coeffs, size_hw)
            )
        h0, w0 = self.size_hw
        h, w = size_hw
        sx, sy = w / w0, h / h0
        if abs(sx - sy) > 0.01 * max(sx, sy):
            raise ConfigError(
                f"frames are {w}x{h} but the camera was calibrated at {w0}x{h0} (another aspect ratio: "
                "cropped?): calibrate at the streaming resolution"
            )
        k = self.camera_matrix.copy()
        # pixel centres at integer coordinates: scale about the corner of pixel (0, 0), at -0.5
        k[0, 0] *= sx
        k[1, 1] *= sy
        k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
        k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
        return CameraModel(k, self.dist_coeffs, (h, w))

    def rays(self, uv: npt.ArrayLike) -> F64:
        """(N, 2) pixels -> (N, 3) viewing directions in the optical frame (x right, y down, z = 1),
        lens distortion removed."""
        pts = np.asarray(uv, np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.zeros((0, 3))
        if self.dist_coeffs.size:
            # OpenCV's default 5 iterations leave ~3e-5 (0.02 px) on strong distortion; iterate to convergence
            # (OpenCV 4 names that variant undistortPointsIter; OpenCV 5 gives undistortPoints the criteria)
            src = pts.reshape(-1, 1, 2)
            if hasattr(cv2, "undistortPointsIter"):
                norm = cv2.undistortPointsIter(
                    src, self.camera_matrix, self.dist_coeffs, None, None, _UNDISTORT_STOP
                )
            else:
                norm = cv2.undistortPoints(
                    src, self.camera_matrix, self.dist_coeffs, None, None, None, _UNDISTORT_STOP
                )
            xy = np.asarray(norm, np.float64).reshape(-1, 2)
        else:
            k = self.camera_matrix
            y = (pts[:, 1] - k[1, 2]) / k[1, 1]
            x = (pts[:, 0] - k[0, 2] - k[0, 1] * y) / k[0, 0]
            xy = np.stack([x, y], axis=1)
        return np.concatenate([xy, np.ones((len(xy), 1))], axis=1)

    def project(self, dirs_optical: npt.ArrayLike) -> F64:
        """(N, 3) optical-frame directions (z > 0) -> (N, 2) distorted pixels (cv2.projectPoints)."""
        d = np.asarray(dirs_optical, np.float64).reshape(-1, 3)
        if len(d) == 0:
            return np.zeros((0, 2))
        out, _ = cv2.projectPoints(d, np.zeros(3), np.zeros(3), self.camera_matrix, self.dist_coeffs)
        return np.asarray(out, np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class Mount:
    """How the camera is fixed to the drone.

    kind "gimbal": the camera's earth-frame attitude is the gimbal's reported attitude (MAVLink
    GIMBAL_DEVICE_ATTITUDE_STATUS; yaw relative to the vehicle's heading unless the gimbal reports it in the
    earth frame). kind "body": the camera is fixed to the airframe; its attitude is the vehicle's attitude
    followed by the offsets roll/pitch/yaw_deg (Z-Y-X, FRD) of the camera's forward axis in the body frame
    (pitch_deg -90 = looking straight down).
    """

    kind: str = "gimbal"
    roll_deg: float = 0.0
    pitch_deg: float = -90.0
    yaw_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in MOUNTS:
            raise ConfigError(f"unknown camera mount {self.kind!r}: use one of {', '.join(MOUNTS)}")


def load_calibration(path: str | Path) -> CameraModel:
    """A CameraModel from an OpenCV calibration file (see the module docstring). DataError when the file has
    no camera matrix or is not YAML/XML/JSON."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"--camera-calib {p} does not exist: pass the YAML/JSON written by your calibration")
    found = _read_filestorage(p)
    if found is None:
        found = _read_plain(p)
    k, d, size = found
    return CameraModel(k, d, size)


def _read_filestorage(p: Path) -> tuple[F64, F64, tuple[int, int] | None] | None:
    try:
        fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):  # OpenCV's parser raises either on text it cannot read
        return None
    try:
        return _read_nodes(fs)
    except cv2.error:
        return None  # not something FileStorage understands: the plain YAML/JSON reader names the problem
    finally:
        fs.release()


def _read_nodes(fs: Any) -> tuple[F64, F64, tuple[int, int] | None] | None:
    if not fs.isOpened():
        return None
    k = _fs_first(fs, _K_KEYS)
    if k is None or k.size != 9:
        return None
    d = _fs_first(fs, _D_KEYS)
    w, h = fs.getNode("image_width"), fs.getNode("image_height")
    size = (int(h.real()), int(w.real())) if not w.empty() and not h.empty() else None
    return np.asarray(k, np.float64).reshape(3, 3), _dist(d), size


def _fs_first(fs: Any, keys: tuple[str, ...]) -> F64 | None:
    for key in keys:
        node = fs.getNode(key)
        if node.empty():
            continue
        if node.isMap() and not node.getNode("dt").empty():  # an opencv-matrix
            mat = node.mat()
            if mat is not None:
                return np.asarray(mat, np.float64)
        if node.isMap() and not node.getNode("data").empty():  # ROS {rows, cols, data} read by FileStorage
            node = node.getNode("data")
        if node.isSeq():
            return np.asarray(_fs_seq(node), np.float64)
    return None


def _fs_seq(node: Any) -> list[float]:
    out: list[float] = []
    for i in range(node.size()):
        item = node.at(i)
        out += _fs_seq(item) if item.isSeq() else [item.real()]
    return out


def _read_plain(p: Path) -> tuple[F64, F64, tuple[int, int] | None]:
    import yaml

    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DataError(
            f"--camera-calib {p} is not YAML/JSON ({exc}): pass an OpenCV calibration file"
        ) from exc
    if not isinstance(data, dict):
        raise DataError(f"--camera-calib {p} holds no mapping of camera_matrix / dist_coeffs")
    k = _plain_first(data, _K_KEYS)
    if k is None:
        raise DataError(
            f"--camera-calib {p} has no camera matrix (looked for {', '.join(_K_KEYS)}): write it with "
            "cv2.FileStorage(...).write('camera_matrix', K)"
        )
    if k.size != 9:
        raise DataError(f"--camera-calib {p}: the camera matrix has {k.size} numbers, not 9")
    size = None
    if "image_width" in data and "image_height" in data:
        size = (int(data["image_height"]), int(data["image_width"]))
    return k.reshape(3, 3), _dist(_plain_first(data, _D_KEYS)), size


def _plain_first(data: dict[str, Any], keys: tuple[str, ...]) -> F64 | None:
    for key in keys:
        if key not in data:
            continue
        v = data[key]
        if isinstance(v, dict):
            v = v.get("data")
        try:
            return np.asarray(v, np.float64).reshape(-1)
        except (TypeError, ValueError):
            return None
    return None


def _dist(d: F64 | None) -> F64:
    if d is None:
        return np.zeros(0)
    flat = np.asarray(d, np.float64).reshape(-1)
    return np.zeros(0) if not np.any(flat) else flat
