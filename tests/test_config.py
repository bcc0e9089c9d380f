from __future__ import annotations

import pytest

from edgedet.config import RunConfig, build_config
from edgedet.errors import ConfigError


def test_precedence_defaults_yaml_flags(tmp_path):
    y = tmp_path / "run.yaml"
    y.write_text("conf: 0.4\ndetect-every: 3\nclasses: [0, 2]\nsource: cam.mp4\n")
    cfg = build_config(RunConfig, y, conf=0.5, iou=None)
    assert cfg.conf == 0.5  # flag beats yaml
    assert cfg.detect_every == 3  # yaml beats default
    assert cfg.iou == 0.45  # default
    assert cfg.classes == (0, 2)
    assert cfg.source == "cam.mp4"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("conf: [", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("confidence: 0.3\n", "unknown option 'confidence'"),
    ],
)
def test_bad_yaml(tmp_path, text, match):
    y = tmp_path / "c.yaml"
    y.write_text(text)
    with pytest.raises(ConfigError, match=match):
        build_config(RunConfig, y)


def test_missing_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        build_config(RunConfig, tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"conf": 1.5}, "--conf"),
        ({"detect_every": 0}, "--detect-every"),
        ({"detect_every": 2, "target_fps": 30.0}, "only one"),
        ({"track": False, "detect_every": 2}, "--no-track"),
        ({"max_frames": 0}, "--max-frames"),
    ],
)
def test_validate(changes, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**changes).validate()
