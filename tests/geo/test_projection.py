"""Pixels -> ground against the demo scene's exact truth, mounts, horizon and range refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgedet.geo import CameraModel, GeoReference, GroundProjector, Mount, Pose, anchor_points
from edgedet.geo.rotation import euler_to_quaternion
from edgedet.scenes import DemoScene, scene_pose_source

HOME = GeoReference(47.397742, 8.545594, 0.0)


def _scene(index: int, frames: int = 20) -> DemoScene:
    return DemoScene(seed=0, split="test", index=index, frames=frames)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_pixels_land_where_the_scene_homography_says(index):
    """The scene renders the ground through its own homography (scenes/camera.py); inverting it gives the exact
    ground point of any pixel. Our projection from the scene's telemetry must agree to centimetres."""
    scene = _scene(index)
    poses = scene_pose_source(scene)
    proj = GroundProjector(
        CameraModel.from_hfov(scene.config.hfov_deg, scene.config.size_hw), Mount("gimbal")
    )
    h, w = scene.config.size_hw
    uv = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [w / 2, h / 2], [100.5, 250.25]], float)
    frames = [0, 7, 19]
    for i, hmat in zip(frames, scene.ground_to_image(frames), strict=True):
        world = np.c_[uv, np.ones(len(uv))] @ np.linalg.inv(hmat).T
        en = scene.world_to_en(world[:, :2] / world[:, 2:])
        fix = proj.locate(uv, poses.pose_at(i / scene.config.fps), poses.home)
        assert fix.valid.all()
        err = np.hypot(fix.east_m - en[:, 0], fix.north_m - en[:, 1])
        assert err.max() < 0.03, err  # 50 Hz telemetry interpolated at 30 FPS frame times
        back = poses.home.to_enu(fix.lat_deg, fix.lon_deg, 0.0)
        np.testing.assert_allclose(back[:, :2], np.c_[fix.east_m, fix.north_m], atol=1e-6)


def test_objects_truth_boxes_project_onto_their_ground_positions():
    """Box centres of the scene's truth boxes (flat objects, seen from 30-60 m) land on the objects' exact ground
    positions (iter_truth), and the box bottom lands nearer the camera."""
    scene = _scene(0, frames=15)
    poses = scene_pose_source(scene)
    proj = GroundProjector(CameraModel.from_hfov(scene.config.hfov_deg, scene.config.size_hw))
    centre_err, bottom_err = [], []
    for i, (_img, gt, where) in enumerate(scene.iter_truth()):
        full = (
            (gt[:, 8] > 0.99) & (gt[:, 2] > 1) & (gt[:, 3] > 1)
        )  # unclipped, unhidden: the box is the body's
        g = gt[full]
        xyxy = np.c_[g[:, 2:4], g[:, 2:4] + g[:, 4:6]]
        truth = np.array([where[int(t)] for t in g[:, 1]]).reshape(-1, 2)
        pose = poses.pose_at(i / scene.config.fps)
        for anchor, out in (("center", centre_err), ("bottom", bottom_err)):
            fix = proj.locate(anchor_points(xyxy, anchor), pose, poses.home)
            out += np.hypot(fix.east_m - truth[:, 0], fix.north_m - truth[:, 1]).tolist()
    assert len(centre_err) > 50
    assert np.median(centre_err) < 0.05 and np.percentile(centre_err, 90) < 0.25
    assert (
        np.median(bottom_err) > 0.3
    )  # flat sprites: the box bottom is the object's near edge, not its centre


def _pose(gimbal_rpy_deg, yaw_deg=0.0, alt=50.0, relative=False) -> Pose:
    q = tuple(float(v) for v in euler_to_quaternion(*np.radians(gimbal_rpy_deg)))
    return Pose(0.0, HOME.lat_deg, HOME.lon_deg, alt, 0.0, 0.0, yaw_deg, q, relative)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "pitch_deg, valid",
    [(-90.0, True), (-30.0, True), (-5.0, False), (0.0, False), (10.0, False)],
)
def test_above_horizon_and_too_far_get_no_position(pitch_deg, valid):
    """Camera pitched -5 deg at 50 m meets the ground 570 m out (beyond max_range 500): refused; level or up:
    the centre ray never meets the ground."""
    cam = CameraModel.from_hfov(60.0, (480, 640))
    proj = GroundProjector(cam, Mount("gimbal"), HOME, max_range_m=500.0)
    fix = proj.locate([[320, 240]], _pose((0.0, pitch_deg, 0.0)))
    assert bool(fix.valid[0]) is valid
    assert bool(np.isfinite(fix.lat_deg[0])) is valid and bool(np.isfinite(fix.sigma_m[0])) is valid
    if valid:
        expect_north = 50.0 / math.tan(math.radians(-pitch_deg))
        assert fix.north_m[0] == pytest.approx(expect_north, abs=1e-6)
        assert fix.east_m[0] == pytest.approx(0.0, abs=1e-6)


def test_image_directions_follow_the_camera():
    """Camera looking east (yaw 90), pitched down 45 deg at 30 m: the image centre is 30 m east; the image top
    is farther east, the image right is south."""
    cam = CameraModel.from_hfov(60.0, (480, 640))
    proj = GroundProjector(cam, Mount("gimbal"), HOME)
    fix = proj.locate([[320, 240], [320, 100], [500, 240]], _pose((0.0, -45.0, 90.0), alt=30.0))
    assert fix.east_m[0] == pytest.approx(30.0, abs=1e-6) and fix.north_m[0] == pytest.approx(0.0, abs=1e-6)
    assert fix.east_m[1] > 35.0
    assert fix.north_m[2] < -5.0


def test_body_mount_and_relative_gimbal_yaw_agree_with_earth_gimbal():
    cam = CameraModel.from_hfov(70.0, (360, 640))
    uv = np.array([[10.0, 20.0], [320.0, 180.0], [600.0, 300.0]])
    earth = GroundProjector(cam, Mount("gimbal"), HOME).locate(uv, _pose((2.0, -70.0, 120.0), yaw_deg=40.0))
    rel = GroundProjector(cam, Mount("gimbal"), HOME).locate(
        uv, _pose((2.0, -70.0, 80.0), yaw_deg=40.0, relative=True)
    )
    np.testing.assert_allclose(rel.east_m, earth.east_m, atol=1e-9)
    # body mount: vehicle level at yaw 120, camera fixed looking 70 deg down
    body_pose = Pose(0.0, HOME.lat_deg, HOME.lon_deg, 50.0, 0.0, 0.0, 120.0)
    body = GroundProjector(cam, Mount("body", pitch_deg=-70.0), HOME).locate(uv, body_pose)
    nadir_gimbal = GroundProjector(cam, Mount("gimbal"), HOME).locate(uv, _pose((0.0, -70.0, 120.0)))
    np.testing.assert_allclose(body.east_m, nadir_gimbal.east_m, atol=1e-9)
    np.testing.assert_allclose(body.north_m, nadir_gimbal.north_m, atol=1e-9)
    with pytest.raises(ValueError, match="no gimbal attitude"):
        GroundProjector(cam, Mount("gimbal"), HOME).locate(uv, body_pose)


def test_ground_height_raises_the_plane():
    cam = CameraModel.from_hfov(60.0, (480, 640))
    pose = _pose((0.0, -45.0, 0.0), alt=50.0)
    low = GroundProjector(cam, Mount(), HOME).locate([[320, 240]], pose)
    high = GroundProjector(cam, Mount(), HOME, ground_up_m=10.0).locate([[320, 240]], pose)
    assert low.north_m[0] == pytest.approx(50.0) and high.north_m[0] == pytest.approx(40.0)
