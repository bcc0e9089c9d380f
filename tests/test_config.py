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


# --- one declaration per option: flag, YAML key and --help come from it --------------------------------------

CONFIG_COMMANDS = [
    ("RunConfig", ["run"]),
    ("BenchConfig", ["bench"]),
    ("EvalDetConfig", ["eval", "det"]),
    ("EvalMotConfig", ["eval", "mot"]),
    ("EvalGeoConfig", ["eval", "geo"]),
    ("TrackCommandConfig", ["track"]),
    ("ConvertConfig", ["convert"]),
]
# parameters a command has besides its config's options (files it reads or writes, aliases)
COMMAND_ONLY = {"camera", "config", "json_out", "plot", "models", "dets", "seqinfo", "out"}


def _click_command(path):
    import typer.main

    from edgedet.cli import app

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize(("cls_name", "path"), CONFIG_COMMANDS)
def test_every_option_has_its_flag_and_yaml_key_and_the_reverse(tmp_path, cls_name, path):
    import edgedet.config as config_module
    from edgedet.config import options_of, read_yaml_config
    from edgedet.convert.api import ConvertConfig

    cls = ConvertConfig if cls_name == "ConvertConfig" else getattr(config_module, cls_name)
    declared = options_of(cls)
    cmd = _click_command(path)
    params = {p.name: p for p in cmd.params}
    for name, (opt, _type, _default) in declared.items():
        # YAML: the field name (and its dashed spelling) is a valid key
        y = tmp_path / f"{name}.yaml"
        y.write_text(f"{name.replace('_', '-')}: null\n")
        assert name in read_yaml_config(y, tuple(declared))
        if not opt.cli:  # set from YAML/Python only, or a positional argument of the command (bench's models)
            assert name not in params or params[name].param_type_name == "argument"
            continue
        assert name in params, f"{cls_name}.{name} has no flag on `edgedet {' '.join(path)}`"
        assert opt.main_flag(name) in params[name].opts
        assert params[name].help == opt.help  # --help text is the declaration's
    for name in params:
        if name in ("help",) or name in COMMAND_ONLY:
            continue
        assert name in declared, f"`edgedet {' '.join(path)}` flag {name} is not a {cls_name} option"
    assert not {f.name for f in config_module.dataclasses.fields(cls)} - set(declared) - {"defaults_applied"}


def test_help_is_generated_from_the_declarations(capsys):
    from edgedet.cli import main

    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--tracker" in out and "--sink" in out and "NAME[:ARG]" in out
    assert "Confidence threshold (default 0.25)." in out


def test_stage_configs_come_from_the_declarations():
    cfg = build_config(
        RunConfig, None, source="x.mp4", conf=0.3, iou=0.5, track_min_hits=1, track_iou=0.4, fps=12.0, threads=2
    )
    assert cfg.postprocess_config.conf_threshold == 0.3 and cfg.postprocess_config.iou_threshold == 0.5
    assert cfg.tracker_config.min_hits == 1 and cfg.tracker_config.iou_threshold == 0.4
    assert cfg.tracker_config.max_age_s == 2.0  # unset: the tracker's own default
    assert cfg.source_config.fps == 12.0 and cfg.source_config.realtime is False
    assert cfg.backend_config().threads == 2


def test_the_demo_defaults_are_applied_when_the_config_is_built(tmp_path):
    from edgedet.config import apply_demo_defaults

    cfg = apply_demo_defaults(RunConfig(source="demo", threads=2), root=tmp_path)
    assert cfg.target_fps == 30.0 and cfg.realtime is True and cfg.cmc == "sparse"
    assert cfg.save_video is not None and cfg.save_video.endswith("video.mp4")
    assert apply_demo_defaults(cfg) is cfg  # applied once
    plain = apply_demo_defaults(RunConfig(source="demo"), outputs=False)
    assert plain.target_fps == 30.0 and plain.save_video is None and plain.run_dir is None
    mine = build_config(RunConfig, None, source="demo", detect_every=2, sink=("json:x.jsonl",))
    assert mine.target_fps is None and mine.save_video is None  # the user's choices win
    other = build_config(RunConfig, None, source="clip.mp4")
    assert other.target_fps is None and other.realtime is None and other.cmc == "auto"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"conf": 1.0}, "below 1"),  # refused here, not later by the postprocessor
        ({"tracker": "bytetrack", "second_association": False}, "bytetrack"),
        ({"cmc": "dense"}, "--cmc must be one of auto, off, sparse"),
        ({"track": False, "cmc": "sparse"}, "needs tracking on"),
    ],
)
def test_validate_more(changes, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**changes).validate()


def test_tracker_and_sinks_from_yaml(tmp_path):
    y = tmp_path / "run.yaml"
    y.write_text(f"source: cam.mp4\ntracker: bytetrack\nsink: [video:{tmp_path / 'v.mp4'}, 'mot:t.txt']\n")
    cfg = build_config(RunConfig, y).validate()
    assert cfg.tracker == "bytetrack" and cfg.sink == (f"video:{tmp_path / 'v.mp4'}", "mot:t.txt")
    assert cfg.sink_config().sinks == cfg.sink
    y.write_text("sink: video.mp4\n")  # a string where a list is expected: one clear line
    with pytest.raises(ConfigError, match=r"option sink must be tuple\[str, \.\.\.\], got str"):
        build_config(RunConfig, y)
