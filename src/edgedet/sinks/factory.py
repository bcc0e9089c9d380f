"""Turn a SinkConfig into open sinks, checking every output before any is opened."""

from __future__ import annotations

import os
from pathlib import Path

from edgedet.errors import ConfigError, SinkError
from edgedet.sinks.base import Sink, SinkConfig, check_output_path, resolve_fps
from edgedet.sinks.files import CocoSink, JsonLinesSink, MotSink
from edgedet.sinks.video import VIDEO_SUFFIXES, DisplaySink, VideoSink, display_problem


def _outputs(config: SinkConfig) -> list[tuple[str, str]]:
    pairs = [
        ("--save-video", config.save_video),
        ("--save-mot", config.save_mot),
        ("--save-json", config.save_json),
        ("--save-coco", config.save_coco),
    ]
    return [(flag, path) for flag, path in pairs if path is not None]


def check_sink_config(config: SinkConfig, source_fps: float | None) -> float:
    """Validate a SinkConfig without opening anything; returns the video frame rate to use.

    Raises ConfigError for a bad frame rate or two outputs sharing a file, SinkError for an output path that
    cannot be written or a --show that cannot open a window. Creates the outputs' parent directories.
    """
    fps = resolve_fps(config.video_fps, source_fps)
    seen: dict[Path, str] = {}
    for flag, path in _outputs(config):
        resolved = Path(os.path.abspath(Path(path).expanduser()))
        if resolved in seen:
            raise ConfigError(f"{seen[resolved]} and {flag} both write {path}: give each output its own file")
        seen[resolved] = flag
    if config.save_video is not None:
        suffix = Path(config.save_video).suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise SinkError(
                f"--save-video {config.save_video}: '{suffix}' is not a video container OpenCV writes: "
                "use a .mp4 path"
            )
    if config.show:
        problem = display_problem()
        if problem:
            raise SinkError(problem)
    for flag, path in _outputs(config):
        check_output_path(path, flag)
    return fps


def open_sinks(config: SinkConfig, source_fps: float | None) -> list[Sink]:
    """Open every sink the config asks for, in the order window, video, MOT, JSON lines, COCO.

    Every output is checked first (see `check_sink_config`), so a bad path fails before any file is created.
    `source_fps` is the source's nominal frame rate (None or 0 when unknown) and sets the video's rate unless
    `config.video_fps` does. Close the sinks (each is a context manager) when the run ends.
    """
    fps = check_sink_config(config, source_fps)
    names = config.class_names
    sinks: list[Sink] = []
    try:
        if config.show:
            sinks.append(DisplaySink(names))
        if config.save_video is not None:
            sinks.append(VideoSink(config.save_video, fps=fps, class_names=names))
        if config.save_mot is not None:
            sinks.append(MotSink(config.save_mot, tracking=config.tracking))
        if config.save_json is not None:
            sinks.append(JsonLinesSink(config.save_json, class_names=names))
        if config.save_coco is not None:
            sinks.append(CocoSink(config.save_coco))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks
