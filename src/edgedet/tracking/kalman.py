"""SORT's constant-velocity box Kalman filter, held as arrays over all tracks and stepped in one go.

State per track (7): ``[cx, cy, s, r, vcx, vcy, vs]`` with centre cx, cy in pixels, s = area in pixels²,
r = width / height (constant: no velocity), and the velocities of cx, cy, s per *nominal frame*.
Measurement (4): ``[cx, cy, s, r]``.

Initial values are exactly abewley/sort's ``KalmanBoxTracker``: F constant velocity, H picks the first four
states, ``R[2:, 2:] *= 10``, ``P[4:, 4:] *= 1000`` then ``P *= 10``, ``Q[-1, -1] *= 0.01``,
``Q[4:, 4:] *= 0.01``; the update uses filterpy's Joseph-form covariance, so with dt = 1 every step equals
filterpy's ``KalmanFilter(dim_x=7, dim_z=4)`` configured as SORT does (the tests check it to 1e-9).

Time step: ``dt`` is measured in nominal frames, ``dt = elapsed_s * nominal_fps``. F uses dt in the
position/velocity coupling, and the process noise scales linearly, ``Q(dt) = Q * dt``: SORT's Q is a
per-frame random-walk increment, and the variance of a random walk grows linearly with elapsed time, so a
dropped frame (dt = 2) adds the noise of two frames and dt = 1 is SORT exactly. dt = 0 (two calls with the
same timestamp) changes nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

DIM_X = 7
DIM_Z = 4


def sort_initial_covariance() -> F64:
    """SORT's P0 (7, 7): identity, velocities x1000, then everything x10."""
    p = np.eye(DIM_X)
    p[4:, 4:] *= 1000.0
    p *= 10.0
    return p


def sort_process_noise() -> F64:
    """SORT's per-frame Q (7, 7): identity, vs x0.01, then velocities x0.01."""
    q = np.eye(DIM_X)
    q[-1, -1] *= 0.01
    q[4:, 4:] *= 0.01
    return q


def sort_measurement_noise() -> F64:
    """SORT's R (4, 4): identity with the area and aspect variances x10."""
    r = np.eye(DIM_Z)
    r[2:, 2:] *= 10.0
    return r


def transition(dt: float = 1.0) -> F64:
    """F (7, 7) for a step of `dt` nominal frames (dt = 1 is SORT's F)."""
    f = np.eye(DIM_X)
    f[0, 4] = f[1, 5] = f[2, 6] = dt
    return f


def measurement_matrix() -> F64:
    """H (4, 7): picks cx, cy, s, r."""
    return np.eye(DIM_Z, DIM_X)


def xyxy_to_z(xyxy: npt.ArrayLike) -> F64:
    """(N, 4) x1 y1 x2 y2 -> (N, 4) float64 [cx, cy, s = w*h, r = w/h] (SORT's convert_bbox_to_z)."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    z = np.empty_like(b)
    z[:, 0] = b[:, 0] + w / 2.0
    z[:, 1] = b[:, 1] + h / 2.0
    z[:, 2] = w * h
    with np.errstate(divide="ignore", invalid="ignore"):
        z[:, 3] = w / h
    return z


def x_to_xyxy(x: npt.ArrayLike) -> F64:
    """(N, >=4) states -> (N, 4) float64 x1 y1 x2 y2 (SORT's convert_x_to_bbox; NaN where s*r < 0)."""
    s = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.sqrt(s[:, 2] * s[:, 3])
        h = s[:, 2] / w
    out = np.empty((s.shape[0], 4))
    out[:, 0] = s[:, 0] - w / 2.0
    out[:, 1] = s[:, 1] - h / 2.0
    out[:, 2] = s[:, 0] + w / 2.0
    out[:, 3] = s[:, 1] + h / 2.0
    return out


class BoxKalmanFilter:
    """The filters of T tracks: ``mean`` (T, 7) float64 and ``cov`` (T, 7, 7) float64, rows in track order.

    Methods that change the state are verbs (`initiate`, `predict`, `update`, `keep`, `warp`); none of them
    loops over tracks in Python.
    """

    def __init__(self) -> None:
        self.mean: F64 = np.zeros((0, DIM_X))
        self.cov: F64 = np.zeros((0, DIM_X, DIM_X))
        self._p0 = sort_initial_covariance()
        self._q = sort_process_noise()
        self._r = sort_measurement_noise()

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    def initiate(self, z: npt.ArrayLike) -> None:
        """Append M new tracks from measurements `z` (M, 4) [cx, cy, s, r]: zero velocity, covariance P0."""
        z = np.asarray(z, np.float64).reshape(-1, DIM_Z)
        m = np.zeros((z.shape[0], DIM_X))
        m[:, :DIM_Z] = z
        self.mean = np.concatenate([self.mean, m])
        self.cov = np.concatenate([self.cov, np.broadcast_to(self._p0, (z.shape[0], DIM_X, DIM_X))])

    def keep(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> None:
        """Keep only the tracks where `mask` (T,) bool is True (or the given indices)."""
        self.mean = self.mean[mask]
        self.cov = self.cov[mask]

    def predict(self, dt: float = 1.0) -> None:
        """Advance every track by `dt` nominal frames (dt >= 0)."""
        if len(self) == 0:
            return
        # SORT's guard: an area that would go non-positive stops shrinking (else sqrt(s*r) becomes NaN).
        shrink = self.mean[:, 6] * dt + self.mean[:, 2] <= 0
        self.mean[shrink, 6] = 0.0
        f = transition(dt)
        self.mean = self.mean @ f.T
        self.cov = f @ self.cov @ f.T + self._q * dt

    def update(self, idx: npt.ArrayLike, z: npt.ArrayLike) -> None:
        """Correct tracks `idx` (M,) int with measurements `z` (M, 4) [cx, cy, s, r] (filterpy's Joseph form)."""
        idx = np.asarray(idx, np.intp).reshape(-1)
        if idx.size == 0:
            return
        z = np.asarray(z, np.float64).reshape(-1, DIM_Z)
        x = self.mean[idx]
        p = self.cov[idx]
        y = z - x[:, :DIM_Z]  # H x is the first four states
        pht = p[:, :, :DIM_Z]  # P H^T
        s = p[:, :DIM_Z, :DIM_Z] + self._r  # H P H^T + R
        k = pht @ np.linalg.inv(s)  # (M, 7, 4)
        x = x + (k @ y[:, :, None])[:, :, 0]
        i_kh = np.broadcast_to(np.eye(DIM_X), p.shape).copy()
        i_kh[:, :, :DIM_Z] -= k
        p = i_kh @ p @ i_kh.transpose(0, 2, 1) + k @ self._r @ k.transpose(0, 2, 1)
        self.mean[idx] = x
        self.cov[idx] = p

    def warp(self, affine: npt.ArrayLike) -> None:
        """Map every state through a 2x3 affine (previous-frame pixels -> current-frame pixels).

        Centres move with the full affine, centre velocities with its linear part, area and area velocity
        scale by its determinant, the aspect ratio is kept (exact for similarity transforms, the usual
        camera-motion model). The covariance is transformed with the same linear map.
        """
        a = np.asarray(affine, np.float64)
        if a.shape != (2, 3) or not np.all(np.isfinite(a)):
            raise ValueError(
                f"warp must be a finite 2x3 affine matrix, got shape {a.shape}: pass cv2-style [[a,b,tx],[c,d,ty]]"
            )
        if len(self) == 0:
            return
        lin = a[:, :2]
        det = abs(float(np.linalg.det(lin)))
        m = np.eye(DIM_X)
        m[0:2, 0:2] = lin
        m[4:6, 4:6] = lin
        m[2, 2] = m[6, 6] = det
        self.mean = self.mean @ m.T
        self.mean[:, 0:2] += a[:, 2]
        self.cov = m @ self.cov @ m.T
