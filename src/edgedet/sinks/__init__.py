"""Where results go: a window, an annotated video, MOTChallenge txt, JSON lines, COCO results json.

Every sink takes `FrameResult`s through `write()`, is a context manager, and never stops the run on a write
error (it disables itself and counts `lost_frames`). `open_sinks(SinkConfig(...), source_fps)` opens the ones
a config asks for after checking every output path; `SINKS` is the sink registry (`--sink NAME:ARG`, entry-point
group `edgedet.sinks`).
"""

from edgedet.sinks.base import Sink, SinkConfig, check_output_path
from edgedet.sinks.draw import color_for, draw_detections
from edgedet.sinks.factory import (
    SINKS,
    SinkContext,
    SinkKind,
    check_sink_config,
    open_sinks,
    output_files,
    parse_sink,
)
from edgedet.sinks.files import CocoSink, JsonLinesSink, MotSink, coco_image_id, detections_to_dicts
from edgedet.sinks.video import DisplaySink, VideoSink, display_problem, opencv_has_gui

__all__ = [
    "SINKS",
    "CocoSink",
    "DisplaySink",
    "JsonLinesSink",
    "MotSink",
    "Sink",
    "SinkConfig",
    "SinkContext",
    "SinkKind",
    "VideoSink",
    "check_output_path",
    "check_sink_config",
    "coco_image_id",
    "color_for",
    "detections_to_dicts",
    "display_problem",
    "draw_detections",
    "open_sinks",
    "opencv_has_gui",
    "output_files",
    "parse_sink",
]
