"""The one registry shape: built-ins resolved on demand, plugins from entry points, clear errors."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.tiny_models import constant_model, yolov5_raw

from edgedet.backends import BACKENDS
from edgedet.errors import ConfigError
from edgedet.registry import Registry
from edgedet.sinks import SINKS
from edgedet.sources import SCHEMES
from edgedet.tracking import TRACKERS


def test_builtins_of_each_registry() -> None:
    assert BACKENDS.names()[:2] == ["onnxruntime", "tensorrt"]
    assert {"sort", "bytetrack"} <= set(TRACKERS)
    assert {"show", "video", "mot", "json", "coco"} <= set(SINKS)
    assert {"rtsp", "csi", "synthetic", "demo"} <= set(SCHEMES)
    assert (BACKENDS.group, SCHEMES.group, TRACKERS.group, SINKS.group) == (
        "edgedet.backends", "edgedet.sources", "edgedet.trackers", "edgedet.sinks",
    )  # fmt: skip


def test_builtins_are_imported_only_when_used() -> None:
    reg: Registry[object] = Registry("thing", "edgedet.test-nothing", {"a": "no_such_module_xyz:thing"})
    assert reg.names() == ["a"]  # listing does not import
    with pytest.raises(ModuleNotFoundError):
        reg.get("a")


@pytest.mark.parametrize("registry", [BACKENDS, SCHEMES, TRACKERS, SINKS], ids=lambda r: r.kind)
def test_unknown_name_lists_the_valid_ones(registry: Registry[object]) -> None:
    with pytest.raises(
        ConfigError, match=f"unknown {registry.kind} 'nope': choose one of {registry.names()[0]}"
    ):
        registry.get("nope")


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, group: str, name: str, value: str) -> None:
    ep = metadata.EntryPoint(name=name, value=value, group=group)
    real = metadata.entry_points

    def entry_points(**kw: object) -> object:
        return [ep] if kw.get("group") == group else real(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def test_a_plugin_sink_from_an_entry_point_is_found_and_adapted(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = type(sys)("fake_edgedet_plugin")
    mod.open_sink = lambda arg, ctx: ("opened", arg, ctx.fps)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_edgedet_plugin", mod)
    reg = Registry("sink", "edgedet.sinks-test", {}, adapt=SINKS._adapt)
    _fake_entry_points(monkeypatch, "edgedet.sinks-test", "counter", "fake_edgedet_plugin:open_sink")
    assert reg.names() == ["counter"] and "counter" in reg
    kind = reg.get("counter")
    assert kind.open("x", type("C", (), {"fps": 5.0})()) == ("opened", "x", 5.0)  # type: ignore[arg-type]


def test_a_broken_plugin_names_the_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[object] = Registry("tracker", "edgedet.trackers-test", {})
    _fake_entry_points(monkeypatch, "edgedet.trackers-test", "broken", "no_such_module_xyz:factory")
    with pytest.raises(
        ConfigError, match=r"tracker 'broken' from entry point 'no_such_module_xyz:factory'.*failed to load"
    ):
        reg.get("broken")


def test_a_registered_sink_runs_through_the_pipeline(tmp_path: Path) -> None:
    """--sink NAME:ARG with a sink registered from Python: it sees every frame, and the run lists its file."""
    from edgedet.config import RunConfig, build_config
    from edgedet.pipeline import build_pipeline

    seen: list[int] = []

    class Counter:
        lost_frames = 0
        stop_requested = False

        def __init__(self, arg: str | None) -> None:
            self.path = Path(arg) if arg else None

        def write(self, result: object) -> None:
            seen.append(result.frame.index)  # type: ignore[attr-defined]

        def close(self) -> None:
            assert self.path is not None
            self.path.write_text(f"{len(seen)}\n")

    SINKS.register("count-test", lambda arg, ctx: Counter(arg))
    try:
        raw = yolov5_raw(np.array([[32, 32, 16, 8]]), np.array([0.9]), np.array([[1.0, 0.0]]))
        model = constant_model(tmp_path / "m.onnx", [raw])
        out = tmp_path / "n.txt"
        cfg = build_config(
            RunConfig, None, source="synthetic:64x64@30", model=str(model), max_frames=5,
            sink=(f"count-test:{out}", f"mot:{tmp_path / 't.txt'}"),
        )  # fmt: skip
        summary = build_pipeline(cfg).run()
    finally:
        SINKS.unregister("count-test")
    assert seen == [0, 1, 2, 3, 4] and out.read_text() == "5\n"
    assert summary.outputs == [str(tmp_path / "t.txt")]  # the files of sinks registered with writes_file


def test_sink_shorthands_and_sink_flags_share_the_output_checks(tmp_path: Path) -> None:
    from edgedet.sinks import SinkConfig, open_sinks

    with pytest.raises(ConfigError, match="--save-mot and --sink json both write"):
        open_sinks(SinkConfig(save_mot=str(tmp_path / "x.txt"), sinks=(f"json:{tmp_path / 'x.txt'}",)), None)
    with pytest.raises(ConfigError, match="--sink mot needs an argument"):
        open_sinks(SinkConfig(sinks=("mot",)), None)
    with pytest.raises(ConfigError, match="unknown sink 'nope'"):
        open_sinks(SinkConfig(sinks=("nope:x",)), None)
    assert list(tmp_path.iterdir()) == []


def test_a_plugin_sink_reads_its_own_declared_option(tmp_path: Path) -> None:
    """An option declared with stage="sink" that SinkConfig has no field for reaches every sink in ctx.options."""
    from dataclasses import dataclass

    from edgedet.config import RunConfig, build_config, option
    from edgedet.sinks import SinkContext, open_sinks

    @dataclass(frozen=True)
    class MyRunConfig(RunConfig):
        counter_label: str = option("people", "Label of the counter.", stage="sink")

    cfg = build_config(MyRunConfig, None, source="x.mp4", counter_label="cars", sink=("ctx-test",))
    got: list[SinkContext] = []

    class Null:
        lost_frames = 0
        stop_requested = False

        def write(self, result: object) -> None: ...

        def close(self) -> None: ...

    SINKS.register("ctx-test", lambda arg, ctx: got.append(ctx) or Null())
    try:
        open_sinks(cfg.sink_config(("a", "b")), 25.0)
    finally:
        SINKS.unregister("ctx-test")
    assert got[0].options == {"counter_label": "cars"}
    assert got[0].fps == 25.0 and got[0].class_names == ("a", "b") and got[0].tracking is True
