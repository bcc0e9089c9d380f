"""The scenes' geo truth: gt_geo.csv rows match gt.txt, telemetry files, and the noise model's statistics."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from edgedet.geo import read_telemetry
from edgedet.scenes import DemoScene, TelemetryNoise, scene_telemetry, write_sequence


def test_writer_emits_gt_geo_and_telemetry(tmp_path):
    scene = DemoScene(seed=0, split="test", index=2, frames=10)
    rec = write_sequence(scene, tmp_path, image_format="png")
    gt = np.loadtxt(rec.path / "gt" / "gt.txt", delimiter=",", ndmin=2)
    with open(rec.path / "gt" / "gt_geo.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(int(r["frame"]), int(r["id"])) for r in rows] == [(int(f), int(i)) for f, i in gt[:, :2]]
    # each object's ground position, seen through the exact homography, is inside its box (not clipped ones)
    hs = scene.ground_to_image(range(10))
    half, ppm = scene.config.world_size / 2, scene.config.px_per_m
    inside = 0
    for r, g in zip(rows, gt, strict=True):
        e, n = float(r["east_m"]), float(r["north_m"])
        p = hs[int(r["frame"]) - 1] @ np.array([e * ppm + half, half - n * ppm, 1.0])
        u, v = p[0] / p[2] + 1, p[1] / p[2] + 1  # gt.txt is 1-based
        x, y, w, h = g[2:6]
        inside += x - 0.5 <= u <= x + w + 0.5 and y - 0.5 <= v <= y + h + 0.5
    assert inside >= 0.9 * len(rows)  # objects cut by the frame edge have their centre outside the box
    true = read_telemetry(rec.path / "telemetry.jsonl")
    noisy = read_telemetry(rec.path / "telemetry_noisy.jsonl")
    assert true.home.lat_deg == scene.config.origin_lat_deg and true.has_gimbal
    t0, t1 = true.time_range_s
    assert t0 < 0 and t1 > 9 / scene.config.fps
    p_true, p_noisy = true.pose_at(0.1), noisy.pose_at(0.1)
    assert p_true is not None and p_noisy is not None and p_true.lat_deg != p_noisy.lat_deg


def test_noise_has_the_stated_size_and_latency():
    scene = DemoScene(seed=0, split="test", index=0, frames=30)
    _, true = scene_telemetry(scene)
    noise = TelemetryNoise(gps_m=1.5, attitude_deg=0.5, gimbal_deg=0.3, latency_ms=50.0, gps_tau_s=0.05)
    from edgedet.geo.geodesy import GeoReference

    home = GeoReference(scene.config.origin_lat_deg, scene.config.origin_lon_deg, 0.0)
    errs = []
    for seed in range(20):
        _, noisy = scene_telemetry(scene, noise=noise, seed=seed)
        assert noisy[0]["t"] - true[0]["t"] == pytest.approx(0.05)
        a = home.to_enu([r["lat"] for r in noisy], [r["lon"] for r in noisy], 0.0)
        b = home.to_enu([r["lat"] for r in true], [r["lon"] for r in true], 0.0)
        errs.append(a[:, :2] - b[:, :2])
    e = np.concatenate(errs)
    np.testing.assert_allclose(e.std(axis=0), [1.5, 1.5], rtol=0.1)
    assert abs(e.mean()) < 0.1


def test_eval_geo_tracks_a_written_scene_and_scores_it(tmp_path):
    """The whole chain on a written flight: its images, its camera.yaml (cv2.FileStorage), its telemetry.jsonl,
    the bundled detector and SORT with --cmc pose, scored against gt_geo.csv."""
    from edgedet.eval.geo import eval_geo

    scene = DemoScene(seed=0, split="test", index=0, frames=24)
    rec = write_sequence(scene, tmp_path, image_format="png")
    true = eval_geo(rec.path, threads=1)
    assert true["matched"] > 50 and true["coverage"] == 1.0
    assert true["median_m"] < 0.5 and true["p90_m"] < 1.5
    noisy = eval_geo(rec.path, telemetry="telemetry_noisy.jsonl", latency_ms=50.0, threads=1)
    assert (
        noisy["matched"] > 50 and noisy["median_m"] > true["median_m"]
    )  # (tracks differ: the CMC uses the pose)


def test_noise_is_smooth_between_records():
    """Attitude errors wander slowly (an autopilot's estimate does not jump 0.1 deg between 50 Hz samples), or
    pose-based motion compensation would see a shaking camera that is not there."""
    scene = DemoScene(seed=0, split="test", index=0, frames=60)
    _, true = scene_telemetry(scene)
    _, noisy = scene_telemetry(scene, noise=TelemetryNoise())
    err = np.array([r["pitch_deg"] for r in noisy]) - np.array([r["pitch_deg"] for r in true])
    assert 0.05 < np.abs(err).max() < 3.0  # there is an error of the stated size...
    assert np.diff(err).std() < 0.04  # ...that changes by hundredths of a degree from one record to the next
