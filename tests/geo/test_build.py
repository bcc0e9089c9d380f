"""Geo stages from options (what `edgedet run --telemetry ...` builds), and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.errors import ConfigError, DataError
from edgedet.geo import CameraModel
from edgedet.geo.build import GeoConfig, build_geo
from edgedet.scenes import demo_geo
from edgedet.sources.demo import DemoSource, DemoSourceSpec
from edgedet.types import Detections, Frame


def test_demo_telemetry_builds_locator_and_motion():
    source = DemoSource(DemoSourceSpec(frames=3, split="test"))
    stages = demo_geo(GeoConfig(telemetry="demo"), source.scene)
    assert stages is not None
    frame = Frame(np.zeros((384, 640, 3), np.uint8), 0, 0.0)
    pos = stages.locator(frame, Detections(np.array([[300, 180, 340, 200]]), [0.9], [0], [1]))
    assert np.isfinite(pos.lat).all() and np.isfinite(pos.sigma_m).all()
    assert stages.motion(frame.image, 0.0) is None and stages.motion(frame.image, 1 / 30) is not None
    assert stages.locator.anchor == "center"  # the demo's objects are flat
    noisy = demo_geo(GeoConfig(telemetry="demo-noisy", telemetry_latency_ms=50.0), source.scene)
    assert (
        noisy is not None
        and noisy.locator(frame, Detections(np.array([[300, 180, 340, 200]]), [0.9], [0])).lat[0]
        != pos.lat[0]
    )


@pytest.mark.parametrize(
    "config, error, message",
    [
        (GeoConfig(telemetry="demo"), ConfigError, "--source demo only"),
        (GeoConfig(hfov_deg=70.0), ConfigError, "add --telemetry"),
        (GeoConfig(telemetry="x.jsonl", hfov_deg=70.0, camera_calib="c.yaml"), ConfigError, "only one"),
        (GeoConfig(telemetry="x.jsonl", geo_anchor="top"), ConfigError, "--geo-anchor"),
        (GeoConfig(telemetry="x.jsonl", camera_mount="wing"), ConfigError, "camera mount"),
        (GeoConfig(telemetry="missing.jsonl", hfov_deg=70.0), DataError, "does not exist"),
    ],
)
def test_bad_options_say_what_to_do(config, error, message):
    with pytest.raises(error, match=message):
        build_geo(config)


def test_no_telemetry_no_geo_and_hfov_follows_frame_size():
    assert build_geo(GeoConfig()) is None
    cam = CameraModel.from_hfov(90.0, (1080, 1920)).for_size((480, 640))
    assert cam.camera_matrix[0, 0] == pytest.approx(320.0) and cam.camera_matrix[1, 2] == pytest.approx(240.0)
