"""The link's entries in the sink registry: `--sink stream:URL` and `--sink publish:URL` (also `sink:` in YAML).

Each opens one output on its own, with the default stream options. `--stream` / `--publish` / `--mavlink` are
the full link: those sinks share the target selected over MAVLink (highlighted in the video, named in the JSON),
write the .sdp beside the run and take --stream-bitrate etc.; prefer them.
"""

from __future__ import annotations

from edgedet.link.urls import parse_publish_url, parse_stream_url
from edgedet.sinks.base import Sink
from edgedet.sinks.factory import SinkContext, SinkKind


def _arg(arg: str | None) -> str:
    assert arg is not None  # SinkKind(needs_arg=True): checked before opening
    return arg


def _check_stream(arg: str | None, ctx: SinkContext) -> None:
    from edgedet.link.video import StreamOptions, choose_encoder

    parse_stream_url(_arg(arg))
    choose_encoder(StreamOptions())  # a missing PyAV fails before anything opens


def _open_stream(arg: str | None, ctx: SinkContext) -> Sink:
    from edgedet.link.stream_sink import StreamSink

    return StreamSink(_arg(arg), fps=ctx.fps, class_names=ctx.class_names)


def _check_publish(arg: str | None, ctx: SinkContext) -> None:
    if parse_publish_url(_arg(arg)).scheme == "mqtt":
        from edgedet._optional import require

        require("paho.mqtt.client", f"--sink publish:{arg}")


def _open_publish(arg: str | None, ctx: SinkContext) -> Sink:
    from edgedet.link.publish import open_publisher

    return open_publisher(_arg(arg), ctx.class_names)


STREAM = SinkKind(_open_stream, needs_arg=True, check=_check_stream)
PUBLISH = SinkKind(_open_publish, needs_arg=True, check=_check_publish)

__all__ = ["PUBLISH", "STREAM"]
