"""The built-in entries of the sink registry: show (window), video (annotated mp4), mot (MOTChallenge txt),
json (JSON lines), coco (COCO results json). Each is a SinkKind: an opener plus the checks that run before any
sink opens."""

from __future__ import annotations

from pathlib import Path

from edgedet.errors import SinkError
from edgedet.sinks.factory import SinkContext, SinkKind
from edgedet.sinks.files import CocoSink, JsonLinesSink, MotSink
from edgedet.sinks.video import VIDEO_SUFFIXES, DisplaySink, VideoSink, display_problem


def _need(arg: str | None) -> str:
    assert arg is not None  # SinkKind(needs_arg=True): checked before opening
    return arg


def _check_video(arg: str | None, ctx: SinkContext) -> None:
    suffix = Path(_need(arg)).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise SinkError(
            f"--save-video {arg}: '{suffix}' is not a video container OpenCV writes: use a .mp4 path"
        )


def _check_show(arg: str | None, ctx: SinkContext) -> None:
    problem = display_problem()
    if problem:
        raise SinkError(problem)


SHOW = SinkKind(lambda arg, ctx: DisplaySink(ctx.class_names), check=_check_show)
VIDEO = SinkKind(
    lambda arg, ctx: VideoSink(_need(arg), fps=ctx.fps, class_names=ctx.class_names),
    writes_file=True,
    needs_arg=True,
    check=_check_video,
)
MOT = SinkKind(lambda arg, ctx: MotSink(_need(arg), tracking=ctx.tracking), writes_file=True, needs_arg=True)
JSON = SinkKind(
    lambda arg, ctx: JsonLinesSink(_need(arg), class_names=ctx.class_names), writes_file=True, needs_arg=True
)
COCO = SinkKind(lambda arg, ctx: CocoSink(_need(arg)), writes_file=True, needs_arg=True)

__all__ = ["COCO", "JSON", "MOT", "SHOW", "VIDEO"]
