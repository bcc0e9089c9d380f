"""The vectorised filter against filterpy's KalmanFilter configured as abewley/sort does, step by step: the numpy
filter, and (on the numba backend of tests/tracking/conftest.py) the same state stepped by tracking.kernels."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.tracking.kalman import (
    BoxKalmanFilter,
    sort_initial_covariance,
    sort_measurement_noise,
    sort_process_noise,
    transition,
    x_to_xyxy,
    xyxy_to_z,
)

filterpy_kalman = pytest.importorskip("filterpy.kalman")


def sort_filter(z: np.ndarray) -> object:
    """filterpy, set up line for line as SORT's KalmanBoxTracker.__init__."""
    kf = filterpy_kalman.KalmanFilter(dim_x=7, dim_z=4)
    kf.F = np.array(
        [[1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0],
         [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1]], dtype=float
    )  # fmt: skip
    kf.H = np.array(
        [[1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]], float
    )
    kf.R[2:, 2:] *= 10.0
    kf.P[4:, 4:] *= 1000.0
    kf.P *= 10.0
    kf.Q[-1, -1] *= 0.01
    kf.Q[4:, 4:] *= 0.01
    kf.x[:4] = z.reshape(4, 1)
    return kf


def sort_predict(kf: object) -> None:
    if kf.x[6] + kf.x[2] <= 0:  # type: ignore[attr-defined]
        kf.x[6] *= 0.0  # type: ignore[attr-defined]
    kf.predict()  # type: ignore[attr-defined]


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 1500, (n, 2))
    wh = rng.uniform(10, 300, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


class KernelFilter(BoxKalmanFilter):
    """BoxKalmanFilter whose predict and update are tracking.kernels' (what the numba tracker path runs)."""

    def predict(self, dt: float = 1.0) -> None:
        from edgedet.tracking import kernels
        from edgedet.tracking.sort import _kernel_params

        kernels.predict(self.state, float(dt), _kernel_params(self))

    def update(self, idx: object, z: object) -> None:
        from edgedet.tracking import kernels
        from edgedet.tracking.sort import _kernel_params

        i = np.asarray(idx, np.intp).reshape(-1)
        kernels.update(self.state, i, np.asarray(z, np.float64).reshape(-1, 4), _kernel_params(self))


@pytest.fixture
def make_filter(tracker_backend: str) -> type[BoxKalmanFilter]:
    return KernelFilter if tracker_backend == "numba" else BoxKalmanFilter


def assert_same(ours: BoxKalmanFilter, refs: list[object]) -> None:
    for i, kf in enumerate(refs):
        np.testing.assert_allclose(ours.mean[i], kf.x[:, 0], rtol=1e-9, atol=1e-9)  # type: ignore[attr-defined]
        np.testing.assert_allclose(ours.cov[i], kf.P, rtol=1e-9, atol=1e-9)  # type: ignore[attr-defined]


def test_matrices_are_sorts() -> None:
    kf = sort_filter(np.zeros(4))
    np.testing.assert_array_equal(sort_initial_covariance(), kf.P)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(sort_process_noise(), kf.Q)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(sort_measurement_noise(), kf.R)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(transition(1.0), kf.F)  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_filterpy_step_by_step_with_missing_updates(
    seed: int, make_filter: type[BoxKalmanFilter]
) -> None:
    rng = np.random.default_rng(seed)
    n = 6
    boxes = random_boxes(rng, n)
    ours = make_filter()
    ours.initiate(xyxy_to_z(boxes))
    refs = [sort_filter(z) for z in xyxy_to_z(boxes)]
    assert_same(ours, refs)
    vel = rng.normal(0, 5, (n, 4))
    for step in range(60):
        ours.predict(1.0)
        for kf in refs:
            sort_predict(kf)
        assert_same(ours, refs)
        boxes = boxes + vel + rng.normal(0, 2, (n, 4))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 5)
        seen = np.flatnonzero(rng.random(n) < 0.7)  # ~30 % of tracks miss each step
        ours.update(seen, xyxy_to_z(boxes[seen]))
        for i in seen:
            refs[i].update(xyxy_to_z(boxes[i : i + 1])[0])  # type: ignore[attr-defined]
        assert_same(ours, refs)
        if step == 30:  # tracks appear mid-run and join the arrays
            extra = random_boxes(rng, 2)
            ours.initiate(xyxy_to_z(extra))
            refs += [sort_filter(z) for z in xyxy_to_z(extra)]
            boxes = np.concatenate([boxes, extra])
            vel = np.concatenate([vel, rng.normal(0, 5, (2, 4))])
            n += 2
        if step == 45:  # and leave
            keep = np.ones(n, bool)
            keep[[1, 4]] = False
            ours.keep(keep)
            refs = [r for r, k in zip(refs, keep, strict=True) if k]
            boxes, vel, n = boxes[keep], vel[keep], int(keep.sum())
            assert_same(ours, refs)


def test_shrink_guard_is_sorts(make_filter: type[BoxKalmanFilter]) -> None:
    """An area velocity that would make the area negative is zeroed before the predict, as SORT does."""
    ours = make_filter()
    z = xyxy_to_z(np.array([[0.0, 0.0, 10.0, 10.0]]))
    ours.initiate(z)
    ref = sort_filter(z[0])
    ours.mean[0, 6] = -150.0
    ref.x[6] = -150.0  # type: ignore[attr-defined]
    ours.predict(1.0)
    sort_predict(ref)
    assert ours.mean[0, 6] == 0.0
    assert_same(ours, [ref])


def test_dt_two_equals_noise_of_two_frames_and_zero_is_identity(make_filter: type[BoxKalmanFilter]) -> None:
    ours = make_filter()
    ours.initiate(xyxy_to_z(np.array([[10.0, 20.0, 50.0, 120.0]])))
    ours.mean[0, 4:] = [3.0, -2.0, 5.0]
    m0, p0 = ours.mean.copy(), ours.cov.copy()
    ours.predict(0.0)
    np.testing.assert_array_equal(ours.mean, m0)
    np.testing.assert_array_equal(ours.cov, p0)
    ours.predict(2.0)
    f = transition(2.0)
    np.testing.assert_allclose(ours.mean[0], f @ m0[0])
    np.testing.assert_allclose(ours.cov[0], f @ p0[0] @ f.T + 2.0 * sort_process_noise())
    np.testing.assert_allclose(ours.mean[0, :2], m0[0, :2] + 2 * m0[0, 4:6])


def test_box_conversions_round_trip() -> None:
    rng = np.random.default_rng(3)
    b = random_boxes(rng, 20)
    z = xyxy_to_z(b)
    np.testing.assert_allclose(z[:, 2], (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    np.testing.assert_allclose(x_to_xyxy(z), b, rtol=1e-12, atol=1e-9)


def test_warp_translation_and_scale() -> None:
    ours = BoxKalmanFilter()
    ours.initiate(xyxy_to_z(np.array([[100.0, 100.0, 140.0, 180.0]])))
    ours.mean[0, 4:] = [1.0, 2.0, 3.0]
    ours.warp(np.array([[2.0, 0.0, 5.0], [0.0, 2.0, -7.0]]))
    np.testing.assert_allclose(x_to_xyxy(ours.mean), [[205.0, 193.0, 285.0, 353.0]])
    np.testing.assert_allclose(ours.mean[0, 4:], [2.0, 4.0, 12.0])
    p0 = sort_initial_covariance()
    assert ours.cov[0, 0, 0] == pytest.approx(4 * p0[0, 0])
    assert ours.cov[0, 2, 2] == pytest.approx(16 * p0[2, 2])
    with pytest.raises(ValueError, match="2x3"):
        ours.warp(np.eye(3))


def test_warp_similarity_equals_the_full_matrix_transform() -> None:
    """A rotation + scale + shift moves mean and covariance exactly as the 7x7 linear map does."""
    rng = np.random.default_rng(4)
    ours = BoxKalmanFilter()
    ours.initiate(xyxy_to_z(random_boxes(rng, 5)))
    for _ in range(3):  # velocities and cross terms that are not zero
        ours.predict(1.0)
        ours.update(np.arange(5), xyxy_to_z(random_boxes(rng, 5)))
    ours.predict(1.0)
    mean0, cov0 = ours.mean.copy(), ours.cov.copy()
    ang, k = 0.05, 1.02
    lin = k * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    ours.warp(np.c_[lin, [4.0, -3.0]])
    m = np.eye(7)
    m[0:2, 0:2] = m[4:6, 4:6] = lin
    m[2, 2] = m[6, 6] = k * k
    expected_mean = mean0 @ m.T
    expected_mean[:, 0:2] += [4.0, -3.0]
    np.testing.assert_allclose(ours.mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(ours.cov, m @ cov0 @ m.T, rtol=1e-9, atol=1e-9)


def test_fast_conversions_equal_the_checked_ones_bit_for_bit() -> None:
    from edgedet.tracking.kalman import boxes_of, neg_boxes_of, z_of

    rng = np.random.default_rng(5)
    b = random_boxes(rng, 30)
    np.testing.assert_array_equal(z_of(b), xyxy_to_z(b))
    z = np.c_[xyxy_to_z(b), rng.normal(size=(30, 3))]
    z[3, 3] = -1.0  # s * r < 0: NaN box, as SORT's convert_x_to_bbox gives
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(boxes_of(z), x_to_xyxy(z))
        neg = neg_boxes_of(z)
        np.testing.assert_array_equal(np.c_[neg[:, :2], -neg[:, 2:]], x_to_xyxy(z))
    assert np.isnan(x_to_xyxy(z)[3, 0])
