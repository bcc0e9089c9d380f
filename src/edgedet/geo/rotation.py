"""Rotations between the frames the geo package uses (no geodesy here: that is pymap3d's job).

Frames: NED (x north, y east, z down: MAVLink's earth frame); a body or gimbal frame FRD (x forward, y right,
z down); the camera's optical frame (x right, y down, z along the optical axis: OpenCV's). Angles follow
MAVLink: aerospace Z-Y-X Euler angles (yaw about down, clockwise from north seen from above; then pitch, nose
up positive; then roll, right wing down positive) and Hamilton quaternions (w, x, y, z) rotating FRD into NED.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# The optical frame's axes written in FRD: optical z (forward) = FRD x, optical x (right) = FRD y, optical y
# (down) = FRD z. v_frd = FRD_FROM_OPTICAL @ v_optical.
FRD_FROM_OPTICAL: F64 = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def euler_to_matrix(roll_rad: float, pitch_rad: float, yaw_rad: float) -> F64:
    """3x3 R with v_ned = R @ v_frd for Z-Y-X Euler angles (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    cr, sr = np.cos(roll_rad), np.sin(roll_rad)
    cp, sp = np.cos(pitch_rad), np.sin(pitch_rad)
    cy, sy = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_euler(r: F64) -> tuple[float, float, float]:
    """(roll, pitch, yaw) radians of a rotation matrix built as `euler_to_matrix` builds it."""
    pitch = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    roll = float(np.arctan2(r[2, 1], r[2, 2]))
    yaw = float(np.arctan2(r[1, 0], r[0, 0]))
    return roll, pitch, yaw


def quaternion_to_matrix(q_wxyz: npt.ArrayLike) -> F64:
    """3x3 rotation of a Hamilton quaternion (w, x, y, z); normalised first. ValueError on a zero or NaN one."""
    q = np.asarray(q_wxyz, np.float64).reshape(4)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} is not a rotation (zero or NaN)")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def euler_to_quaternion(roll_rad: float, pitch_rad: float, yaw_rad: float) -> F64:
    """(w, x, y, z) of the same rotation as `euler_to_matrix` (MAVLink's mavlink_euler_to_quaternion order)."""
    cr, sr = np.cos(roll_rad / 2), np.sin(roll_rad / 2)
    cp, sp = np.cos(pitch_rad / 2), np.sin(pitch_rad / 2)
    cy, sy = np.cos(yaw_rad / 2), np.sin(yaw_rad / 2)
    return np.array(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ]
    )


def small_rotation(delta_rad: npt.ArrayLike) -> F64:
    """Rotation by the vector `delta_rad` (axis * angle, Rodrigues), for perturbing an attitude."""
    d = np.asarray(delta_rad, np.float64).reshape(3)
    angle = float(np.linalg.norm(d))
    if angle < 1e-15:
        return np.eye(3)
    k = d / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * (kx @ kx)
