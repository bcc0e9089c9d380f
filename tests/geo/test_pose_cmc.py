"""Pose-based motion compensation against the scene's exact image motion, and its place in make_cmc."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.errors import ConfigError
from edgedet.geo import CameraModel, PoseMotion
from edgedet.scenes import DemoScene, scene_pose_source
from edgedet.tracking.cmc import make_cmc


def test_affine_follows_the_scene_homography():
    scene = DemoScene(seed=0, split="test", index=1, frames=12)
    h, w = scene.config.size_hw
    motion = PoseMotion(CameraModel.from_hfov(scene.config.hfov_deg, (h, w)), scene_pose_source(scene))
    hs = scene.ground_to_image(range(12))
    img = np.zeros((h, w, 3), np.uint8)
    assert motion(img, 0.0) is None  # first frame: nothing to compare with
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(0, w, 50), rng.uniform(0, h, 50), np.ones(50)]
    worst = 0.0
    moved = 0.0
    for i in range(1, 12):
        a = motion(img, i / scene.config.fps)
        assert a is not None and a.shape == (2, 3)
        exact = pts @ (hs[i] @ np.linalg.inv(hs[i - 1])).T
        exact = exact[:, :2] / exact[:, 2:]
        worst = max(worst, float(np.abs(pts @ a.T - exact).max()))
        moved = max(moved, float(np.abs(exact - pts[:, :2]).max()))
    assert moved > 1.0  # the camera does move
    # px: ~0.13 from fitting an affine to a tilted view's homography, ~0.1 from interpolating 50 Hz telemetry
    assert worst < 0.35
    assert motion.failures == 0


def test_make_cmc_pose_and_auto():
    scene = DemoScene(seed=0, split="test", index=0, frames=5)
    motion = PoseMotion(CameraModel.from_hfov(75.0, scene.config.size_hw), scene_pose_source(scene))
    assert make_cmc("pose", pose=motion) is motion
    assert make_cmc("auto", live=False, pose=motion) is motion
    assert make_cmc("auto", live=False) is None
    assert make_cmc("sparse", pose=motion) is not motion
    with pytest.raises(ConfigError, match="--cmc pose needs"):
        make_cmc("pose")
