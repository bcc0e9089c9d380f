"""The sink registry, and turning a SinkConfig into open sinks after checking every output.

A sink is named `NAME` or `NAME:ARG` (`--sink video:out.mp4`, repeatable); `--show` and `--save-video PATH`,
`--save-mot PATH`, `--save-json PATH`, `--save-coco PATH` are shorthands for `--sink show`, `--sink video:PATH`,
`--sink mot:PATH`, `--sink json:PATH`, `--sink coco:PATH`. Other packages add sinks under the entry-point group
`edgedet.sinks`: an entry is a SinkKind, or a bare opener `(arg: str | None, ctx: SinkContext) -> Sink`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgedet.errors import ConfigError
from edgedet.protocols import Sink as SinkProtocol
from edgedet.registry import Registry
from edgedet.sinks.base import SinkConfig, check_output_path, resolve_fps

__all__ = [
    "SINKS",
    "SinkContext",
    "SinkKind",
    "SinkOpener",
    "SinkRequest",
    "check_sink_config",
    "open_sinks",
    "output_files",
    "parse_sink",
    "sink_requests",
]


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need besides its argument: class names (index = class id), the video frame rate (the
    source's nominal rate unless --video-fps; 30 when unknown), whether tracking is on (None: unknown), and the
    run's sink options (every option declared in config.py with stage="sink" that SinkConfig has no field for,
    e.g. `ctx.options["mqtt_topic"]`)."""

    class_names: tuple[str, ...] = ()
    fps: float = 30.0
    tracking: bool | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


#: opens one sink from its argument (the text after `NAME:`, None when there is none)
SinkOpener = Callable[[str | None, SinkContext], SinkProtocol]


@dataclass(frozen=True)
class SinkKind:
    """A registered sink. open: the opener. writes_file: the argument is an output file path (checked to be
    writable, and not shared with another output, before anything opens). check(arg, ctx): more checks that
    must pass before anything opens (raise ConfigError/SinkError). needs_arg: refuse `NAME` without `:ARG`."""

    open: SinkOpener
    writes_file: bool = False
    needs_arg: bool = False
    check: Callable[[str | None, SinkContext], None] | None = None


@dataclass(frozen=True)
class SinkRequest:
    """One sink to open: registry name, argument, and the flag the user wrote (for messages)."""

    name: str
    arg: str | None
    flag: str


def _adapt(name: str, obj: Any) -> SinkKind:
    if isinstance(obj, SinkKind):
        return obj
    if callable(obj):
        return SinkKind(obj)
    raise TypeError(f"expected a SinkKind or an opener function, got {obj!r}")


SINKS: Registry[SinkKind] = Registry(
    "sink",
    "edgedet.sinks",
    {
        "show": "edgedet.sinks.builtin:SHOW",
        "video": "edgedet.sinks.builtin:VIDEO",
        "mot": "edgedet.sinks.builtin:MOT",
        "json": "edgedet.sinks.builtin:JSON",
        "coco": "edgedet.sinks.builtin:COCO",
        "geojson": "edgedet.sinks.geo:GEOJSON",
        "kml": "edgedet.sinks.geo:KML",
    },
    contract="a sink entry is an edgedet.sinks.SinkKind or a function (arg: str | None, ctx: SinkContext) -> Sink",
    adapt=_adapt,
)

# The --save-* shorthands, in the order their sinks open (window first, so it shows the first frame).
_SHORTHANDS: tuple[tuple[str, str], ...] = (
    ("save_video", "video"),
    ("save_mot", "mot"),
    ("save_json", "json"),
    ("save_coco", "coco"),
    ("save_geojson", "geojson"),
    ("save_kml", "kml"),
)


def parse_sink(text: str) -> tuple[str, str | None]:
    """`NAME` -> (NAME, None); `NAME:ARG` -> (NAME, ARG). ConfigError for an empty name."""
    name, sep, arg = text.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"--sink {text!r}: write NAME or NAME:ARG, e.g. --sink video:out.mp4")
    return name, (arg if sep else None)


def sink_requests(config: SinkConfig) -> list[SinkRequest]:
    """The sinks a config asks for: --show, the --save-* shorthands, then each --sink in the order given."""
    out: list[SinkRequest] = []
    if config.show:
        out.append(SinkRequest("show", None, "--show"))
    for key, name in _SHORTHANDS:
        path = getattr(config, key)
        if path is not None:
            out.append(SinkRequest(name, path, "--" + key.replace("_", "-")))
    for text in config.sinks:
        name, arg = parse_sink(text)
        out.append(SinkRequest(name, arg, f"--sink {name}"))
    return out


def _context(config: SinkConfig, source_fps: float | None) -> SinkContext:
    return SinkContext(
        config.class_names, resolve_fps(config.video_fps, source_fps), config.tracking, dict(config.options)
    )


def check_sink_config(config: SinkConfig, source_fps: float | None) -> float:
    """Validate a SinkConfig without opening anything; returns the video frame rate to use.

    Raises ConfigError for a bad frame rate, an unknown sink name or two outputs sharing a file, SinkError for an
    output path that cannot be written or a --show that cannot open a window. Creates the outputs' parent
    directories.
    """
    ctx = _context(config, source_fps)
    requests = sink_requests(config)
    kinds = [(r, SINKS.get(r.name)) for r in requests]
    seen: dict[Path, str] = {}
    for r, kind in kinds:
        if kind.needs_arg and not r.arg:
            raise ConfigError(f"{r.flag} needs an argument: write --sink {r.name}:ARG")
        if kind.writes_file and r.arg:
            resolved = Path(os.path.abspath(Path(r.arg).expanduser()))
            if resolved in seen:
                raise ConfigError(
                    f"{seen[resolved]} and {r.flag} both write {r.arg}: give each output its own file"
                )
            seen[resolved] = r.flag
    for r, kind in kinds:
        if kind.check is not None:
            kind.check(r.arg, ctx)
    for r, kind in kinds:
        if kind.writes_file and r.arg is not None:
            check_output_path(r.arg, r.flag)
    return ctx.fps


def open_sinks(config: SinkConfig, source_fps: float | None) -> list[SinkProtocol]:
    """Open every sink the config asks for, in the order window, video, MOT, JSON lines, COCO, then --sink ones.

    Every output is checked first (see `check_sink_config`), so a bad path fails before any file is created.
    `source_fps` is the source's nominal frame rate (None or 0 when unknown) and sets the video's rate unless
    `config.video_fps` does. Close the sinks (each is a context manager) when the run ends.
    """
    check_sink_config(config, source_fps)
    ctx = _context(config, source_fps)
    sinks: list[SinkProtocol] = []
    try:
        for r in sink_requests(config):
            sinks.append(SINKS.get(r.name).open(r.arg, ctx))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def output_files(config: SinkConfig) -> list[str]:
    """The files the config's sinks write (SinkKind.writes_file), in the order they open."""
    return [
        str(Path(r.arg).expanduser())
        for r in sink_requests(config)
        if r.arg and SINKS.get(r.name).writes_file
    ]


def describe_sinks(requests: Sequence[SinkRequest]) -> str:
    """`video:out.mp4, mot:t.txt` (for messages)."""
    return ", ".join(r.name if r.arg is None else f"{r.name}:{r.arg}" for r in requests)
