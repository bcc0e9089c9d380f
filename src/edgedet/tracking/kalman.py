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


# Columns of BoxKalmanFilter.state beyond the 8 of mean and velocity: the pair terms a, b, c (see the class).
_COLS = 20
_A = slice(8, 12)
_B = slice(12, 16)
_C = slice(16, 20)
# Predicted areas at or under this send predict to SORT's exact shrink test (a margin over 0 for rounding).
_GUARD = 1e-6


def boxes_of(z: F64) -> F64:
    """(N, >=4) [cx, cy, s, r, ...] -> (N, 4) x1 y1 x2 y2, as `x_to_xyxy` (same arithmetic) but without its
    error-state guard: the caller silences invalid-value warnings (NaN boxes, where s*r < 0, are how SORT
    marks a lost filter)."""
    out = np.empty((z.shape[0], 4))
    half = out[:, 2:]  # w/2, h/2 here first, then x2, y2
    w = half[:, 0]
    np.multiply(z[:, 2], z[:, 3], out=w)
    np.sqrt(w, out=w)
    np.divide(z[:, 2], w, out=half[:, 1])
    half *= 0.5  # == / 2.0 exactly
    c = z[:, :2]
    np.subtract(c, half, out=out[:, :2])
    half += c
    return out


def neg_boxes_of(z: F64) -> F64:
    """(N, >=4) states -> (N, 4) x1, y1, -x2, -y2 (the tracker's association form), bit-for-bit the negation
    of `boxes_of`'s second pair (call under np.errstate, as boxes_of)."""
    out = np.empty((z.shape[0], 4))
    half = out[:, 2:]
    w = half[:, 0]
    np.multiply(z[:, 2], z[:, 3], out=w)
    np.sqrt(w, out=w)
    np.divide(z[:, 2], w, out=half[:, 1])
    half *= -0.5  # -w/2, -h/2 (exact)
    c = z[:, :2]
    np.add(c, half, out=out[:, :2])  # x1 = c - w/2
    half -= c  # -x2 = -w/2 - c
    return out


def z_of(xyxy: F64) -> F64:
    """(N, 4) float64 x1 y1 x2 y2 -> (N, 4) [cx, cy, s, r], as `xyxy_to_z` (same arithmetic) without its
    input checks; r is inf/NaN for a zero height (call under np.errstate)."""
    wh = xyxy[:, 2:] - xyxy[:, :2]
    z = np.empty_like(xyxy)
    np.add(xyxy[:, :2], wh * 0.5, out=z[:, :2])
    np.multiply(wh[:, 0], wh[:, 1], out=z[:, 2])
    np.divide(wh[:, 0], wh[:, 1], out=z[:, 3])
    return z


class BoxKalmanFilter:
    """The filters of T tracks in one (T, 20) float64 array, stepped without a Python loop over tracks.

    SORT's filter never couples the four measured quantities with each other: P0, Q and R are diagonal, F
    only couples each of cx, cy, s with its own velocity, and H observes each directly. So the 7x7
    covariance of a track is three 2x2 blocks, (cx, vcx), (cy, vcy), (s, vs), and the variance of r; it stays
    that way through every predict and update. Each pair is held as its variance `a`, covariance `b` and
    velocity variance `c` (r is a fourth pair whose velocity and its variances are 0 and stay 0), which
    turns the batched 7x7 matrix products into a few elementwise operations and one small matrix product
    (predict is linear in the state and the covariance terms). The results equal filterpy's full-matrix
    Kalman filter to rounding (the tests compare them step by step to 1e-9).

    Columns of `state`: 0-3 the measured states cx, cy, s, r; 4-7 their velocities (7 is always 0);
    8-11 `a`, 12-15 `b`, 16-19 `c` for the four pairs. `mean` (T, 7) is a writable view of columns 0-6;
    `cov` (T, 7, 7) is assembled on request (for tests and inspection, not used by the tracker).

    Methods that change the state are verbs (`initiate`, `predict`, `update`, `keep`, `warp`).
    """

    def __init__(self) -> None:
        self.state: F64 = np.zeros((0, _COLS))
        self._row0 = np.zeros(_COLS)  # a new track: zero velocity, covariance P0
        p0 = np.diag(sort_initial_covariance())
        self._row0[_A] = p0[:DIM_Z]
        self._row0[_C] = np.append(p0[DIM_Z:], 0.0)
        q = np.diag(sort_process_noise())
        self._qa = q[:DIM_Z]
        self._qc = np.append(q[DIM_Z:], 0.0)
        self._r = np.diag(sort_measurement_noise()).copy()
        self._steps: dict[float, tuple[F64, F64]] = {}

    def __len__(self) -> int:
        return int(self.state.shape[0])

    @property
    def mean(self) -> F64:
        """(T, 7) [cx, cy, s, r, vcx, vcy, vs]: a view, so writing into it changes the filter."""
        return self.state[:, :DIM_X]

    @property
    def cov(self) -> F64:
        """(T, 7, 7) covariance assembled from the pair terms (a copy)."""
        t = len(self)
        p = np.zeros((t, DIM_X, DIM_X))
        i = np.arange(DIM_Z)
        p[:, i, i] = self.state[:, _A]
        j = np.arange(DIM_X - DIM_Z)
        p[:, j, j + DIM_Z] = p[:, j + DIM_Z, j] = self.state[:, _B][:, :3]
        p[:, j + DIM_Z, j + DIM_Z] = self.state[:, _C][:, :3]
        return p

    def initiate(self, z: npt.ArrayLike) -> None:
        """Append M new tracks from measurements `z` (M, 4) [cx, cy, s, r]: zero velocity, covariance P0."""
        z = np.asarray(z, np.float64).reshape(-1, DIM_Z)
        rows = np.tile(self._row0, (z.shape[0], 1))
        rows[:, :DIM_Z] = z
        self.state = np.concatenate([self.state, rows])

    def keep(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> None:
        """Keep only the tracks where `mask` (T,) bool is True (or the given indices)."""
        self.state = self.state[mask]

    def _step_map(self, dt: float) -> tuple[F64, F64]:
        """(G, h) with state' = state @ G + h for a predict of `dt` nominal frames (cached per dt)."""
        got = self._steps.get(dt)
        if got is None:
            g = np.eye(_COLS)
            for i in range(DIM_Z):
                x, v, a, b, c = i, DIM_Z + i, _A.start + i, _B.start + i, _C.start + i
                g[v, x] = dt  # x' = x + dt v
                g[b, a] = 2.0 * dt  # a' = a + 2 dt b + dt^2 c + qa dt
                g[c, a] = dt * dt
                g[c, b] = dt  # b' = b + dt c
            h = np.zeros(_COLS)
            h[_A] = self._qa * dt
            h[_C] = self._qc * dt  # c' = c + qc dt
            if len(self._steps) > 64:  # irregular timestamps: keep the cache small
                self._steps.clear()
            got = self._steps[dt] = (g, h)
        return got

    def predict(self, dt: float = 1.0) -> None:
        """Advance every track by `dt` nominal frames (dt >= 0)."""
        if len(self) == 0:
            return
        st = self.state
        if dt == 0:
            shrink = st[:, 6] * dt + st[:, 2] <= 0
            st[shrink, 6] = 0.0
            return
        g, h = self._step_map(float(dt))
        new = st @ g
        new += h
        # SORT's guard: an area that would go non-positive stops shrinking (else sqrt(s*r) becomes NaN). The
        # predicted area is s + dt*vs, so one look at it finds the rare track that needs it; those steps are
        # redone from the old state with SORT's exact test.
        if not float(new[:, 2].min()) > _GUARD:  # (not > also catches NaN)
            shrink = st[:, 6] * dt + st[:, 2] <= 0
            st[shrink, 6] = 0.0
            new = st @ g
            new += h
        self.state = new

    def update(self, idx: npt.ArrayLike, z: npt.ArrayLike) -> None:
        """Correct tracks `idx` (M,) int with measurements `z` (M, 4) [cx, cy, s, r].

        Per pair, with k1 = a / (a + R) and k2 = b / (a + R): x += k1 y, v += k2 y, a' = k1 R, b' = k2 R,
        c' = c - k2 b. That is filterpy's Joseph-form update written out for this covariance shape (with the
        optimal gain the Joseph form reduces to it exactly; the tests compare with filterpy to 1e-9).
        """
        idx = np.asarray(idx, np.intp).reshape(-1)
        if idx.size:
            self.update_rows(idx, np.asarray(z, np.float64).reshape(-1, DIM_Z))

    def update_rows(self, idx: npt.NDArray[np.intp], z: F64) -> None:
        """`update` for callers that pass (M,) intp indices and (M, 4) float64 measurements, M >= 1."""
        rows = self.state[idx]  # a copy: updated in place, then written back
        blk = rows.reshape(-1, 5, DIM_Z)  # [x, v, a, b, c] per pair (a view of rows)
        ar = blk[:, 2] + self._r
        k = blk[:, 2:4] / ar[:, None]  # [k1, k2]
        y = z - blk[:, 0]
        blk[:, 0:2] += k * y[:, None]
        blk[:, 4] -= k[:, 1] * blk[:, 3]
        blk[:, 2:4] = k * self._r
        self.state[idx] = rows

    def boxes(self) -> F64:
        """(T, 4) float64 x1 y1 x2 y2 of every track's current state (NaN where s*r < 0)."""
        return x_to_xyxy(self.state[:, :DIM_Z])

    def warp(self, affine: npt.ArrayLike) -> None:
        """Map every state through a 2x3 affine (previous-frame pixels -> current-frame pixels).

        Centres move with the full affine, centre velocities with its linear part, area and area velocity
        scale by its determinant, the aspect ratio is kept (exact for similarity transforms, the usual
        camera-motion model). The covariance goes through the same linear map, keeping its pair form: the
        x/y cross terms a general affine would create are dropped. Those are exactly zero for a similarity
        transform (x and y have equal variances in SORT's filter) and for an axis-aligned scaling.
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
        m = np.eye(_COLS)
        m[0:2, 0:2] = lin.T  # state rows are multiplied from the left: x' = x @ m
        m[4:6, 4:6] = lin.T
        m[2, 2] = m[6, 6] = det
        sq = lin.T * lin.T  # var(l . p) = sum_j l_j^2 var(p_j) without cross terms
        for blk in (_A, _B, _C):
            m[blk.start : blk.start + 2, blk.start : blk.start + 2] = sq
            m[blk.start + 2, blk.start + 2] = det * det
        self.state = self.state @ m
        self.state[:, 0:2] += a[:, 2]
