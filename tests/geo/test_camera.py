"""Intrinsics from calibration files as OpenCV writes them, undistortion, rescaling, bad files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgedet.errors import ConfigError, DataError
from edgedet.geo import CameraModel, load_calibration

K = np.array([[812.5, 0.0, 645.2], [0.0, 810.1, 362.7], [0.0, 0.0, 1.0]])
D = np.array([-0.281, 0.092, 0.0012, -0.0007, -0.013])


@pytest.mark.parametrize("ext", ["yaml", "yml", "xml", "json"])
def test_reads_cv2_filestorage_files(tmp_path, ext):
    path = tmp_path / f"calib.{ext}"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 1280)
    fs.write("image_height", 720)
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", D.reshape(1, 5))
    fs.release()
    cam = load_calibration(path)
    np.testing.assert_allclose(cam.camera_matrix, K)
    np.testing.assert_allclose(cam.dist_coeffs, D)
    assert cam.size_hw == (720, 1280)


def test_reads_ros_style_yaml_and_plain_json(tmp_path):
    ros = tmp_path / "ost.yaml"
    ros.write_text(
        "image_width: 1280\nimage_height: 720\ncamera_name: cam\n"
        f"camera_matrix:\n  rows: 3\n  cols: 3\n  data: {K.ravel().tolist()}\n"
        f"distortion_model: plumb_bob\ndistortion_coefficients:\n  rows: 1\n  cols: 5\n  data: {D.tolist()}\n"
    )
    cam = load_calibration(ros)
    np.testing.assert_allclose(cam.camera_matrix, K)
    np.testing.assert_allclose(cam.dist_coeffs, D)
    js = tmp_path / "calib.json"
    js.write_text(json.dumps({"mtx": K.tolist(), "dist": [D.tolist()]}))
    cam = load_calibration(js)
    np.testing.assert_allclose(cam.camera_matrix, K)
    assert cam.size_hw is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("foo: [1, 2", "not YAML/JSON"),
        ("foo: 1\n", "no camera matrix"),
        ("camera_matrix: [1, 2, 3]\n", "not 9"),
    ],
)
def test_bad_calibration_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_calibration(path)
    with pytest.raises(DataError, match="does not exist"):
        load_calibration(tmp_path / "missing.yaml")


def test_rays_undo_cv2_projectpoints_distortion():
    cam = CameraModel(K, D, (720, 1280))
    rng = np.random.default_rng(1)
    dirs = np.c_[rng.uniform(-0.6, 0.6, (100, 2)), np.ones(100)]
    uv = cv2.projectPoints(dirs, np.zeros(3), np.zeros(3), K, D)[0].reshape(-1, 2)
    np.testing.assert_allclose(cam.rays(uv), dirs, atol=1e-6)
    np.testing.assert_allclose(cam.project(cam.rays(uv)), uv, atol=1e-4)


def test_from_hfov_and_rescaling():
    cam = CameraModel.from_hfov(90.0, (384, 640))
    assert cam.camera_matrix[0, 0] == pytest.approx(320.0)
    big = CameraModel(K, D, (720, 1280)).for_size((360, 640))
    assert big.camera_matrix[0, 0] == pytest.approx(K[0, 0] / 2)
    assert big.camera_matrix[0, 2] == pytest.approx((K[0, 2] + 0.5) / 2 - 0.5)
    # the same scene point lands on the same relative spot of both images
    ray = np.array([[0.2, -0.1, 1.0]])
    np.testing.assert_allclose(
        (big.project(ray) + 0.5) * 2 - 0.5, CameraModel(K, D, (720, 1280)).project(ray), atol=1e-6
    )
    with pytest.raises(ConfigError, match="aspect ratio"):
        CameraModel(K, D, (720, 1280)).for_size((480, 640))
    with pytest.raises(ConfigError, match="--hfov"):
        CameraModel.from_hfov(0.0, (10, 10))
