"""A LinkConfig (the link's flags and YAML fields) -> the sinks that carry a run to the ground and the air.

The order matters and is fixed here: the MAVLink sink first (it records the frame's tracks, so a selection and
the target highlight refer to the frame being streamed), then the video streams, then the publishers.
All of them share one `TargetSelector`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgedet.errors import ConfigError
from edgedet.link.target import TargetSelector
from edgedet.link.urls import PublishUrl, StreamUrl, parse_publish_url, parse_stream_url
from edgedet.link.vehicle import VehicleState
from edgedet.link.video import StreamOptions, output_size
from edgedet.sinks.base import Sink

DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class LinkConfig:
    """The link's options; each field is one flag of `edgedet run` and one YAML key of the same name.

    stream: --stream URL (repeatable): rtp://HOST:PORT | udp://HOST:PORT | srt://HOST:PORT | rtsp://SERVER:PORT/PATH.
    stream_keyint: --stream-keyint SECONDS between keyframes. stream_bitrate: --stream-bitrate KBIT/S cap.
    stream_width: --stream-width PIXELS to downscale to (None: as captured). stream_encoder: --stream-encoder
    auto | pyav | gstreamer.
    mavlink: --mavlink CONNECTION (udpout:HOST:14550, udpin:..., tcp:..., /dev/ttyTHS1:921600).
    mavlink_sysid / mavlink_compid: --mavlink-sysid (the vehicle's, 1) / --mavlink-compid (camera, 100).
    publish: --publish URL (repeatable): mqtt://BROKER:1883/TOPIC | udp://HOST:PORT.
    """

    stream: tuple[str, ...] = ()
    stream_keyint: float = 1.0
    stream_bitrate: int = 2000
    stream_width: int | None = None
    stream_encoder: str = "auto"
    mavlink: str | None = None
    mavlink_sysid: int = 1
    mavlink_compid: int = 100
    publish: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.stream or self.mavlink or self.publish)

    def stream_options(self, fps: float | None = None) -> StreamOptions:
        return StreamOptions(
            keyint_s=self.stream_keyint,
            bitrate_kbps=self.stream_bitrate,
            width=self.stream_width,
            fps=fps,
            encoder=self.stream_encoder,
        )

    def validate(self) -> tuple[list[StreamUrl], list[PublishUrl]]:
        """Check every address and option without opening anything (ConfigError naming the bad one).
        Returns the parsed stream and publish addresses."""
        streams = [parse_stream_url(u) for u in self.stream]
        seen: dict[tuple[str, str, int, str], str] = {}
        for s in streams:
            key = (s.scheme, s.host, s.port, s.path)
            if key in seen:
                raise ConfigError(f"--stream {s.url} is given twice: each stream needs its own address")
            seen[key] = s.url
        self.stream_options().validate()
        publishes = [parse_publish_url(u) for u in self.publish]
        if len({p.url for p in publishes}) != len(publishes):
            raise ConfigError("the same --publish address is given twice: give each once")
        if self.mavlink is not None:
            from edgedet.link.mavlink import MavlinkConfig

            MavlinkConfig(self.mavlink, self.mavlink_sysid, self.mavlink_compid).validate()
        return streams, publishes


def sdp_files(config: LinkConfig, sdp_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The .sdp files `open_link_sinks(config, sdp_dir=sdp_dir)` writes (one per rtp:// stream)."""
    folder = Path(sdp_dir) if sdp_dir is not None else Path.cwd()
    return [sdp_path_for(s, folder) for s in map(parse_stream_url, config.stream) if s.scheme == "rtp"]


def sdp_path_for(url: StreamUrl, folder: str | os.PathLike[str]) -> Path:
    """Where the .sdp of an rtp:// stream goes: `<folder>/stream-<host>-<port>.sdp`."""
    return Path(folder) / f"stream-{url.host.replace(':', '_')}-{url.port}.sdp"


def open_link_sinks(
    config: LinkConfig,
    class_names: Sequence[str] = (),
    source_fps: float | None = None,
    frame_hw: tuple[int, int] | None = None,
    sdp_dir: str | os.PathLike[str] | None = None,
    selector: TargetSelector | None = None,
    vehicle: VehicleState | None = None,
    geo: bool = False,
) -> list[Sink]:
    """Open the link's sinks in order (MAVLink, streams, publishers); see the module docstring.

    source_fps: the run's frame rate (the stream's and the camera's announced rate; 30 when unknown).
    frame_hw: the source's frame size when known before the first frame (for VIDEO_STREAM_INFORMATION).
    sdp_dir: where rtp:// streams write their .sdp (None: the current directory).
    selector / vehicle: shared state to use (new ones when None); pass a VehicleState to read the vehicle's
    attitude and position elsewhere (ground positions) while the MAVLink component fills it.
    geo: the run has ground positions (--telemetry): the MAVLink camera announces and sends
    CAMERA_TRACKING_GEO_STATUS.
    Raises ConfigError / MissingDependencyError / SinkError before any thread starts when something is wrong.
    """
    streams, publishes = config.validate()
    fps = source_fps if source_fps and source_fps > 0 else DEFAULT_FPS
    options = config.stream_options(fps).validate()
    # Fail on a missing package before anything opens: PyAV (or the GStreamer path) for streams, paho-mqtt.
    if streams:
        from edgedet.link.video import choose_encoder

        choose_encoder(options)
    if any(p.scheme == "mqtt" for p in publishes):
        from edgedet._optional import require

        require("paho.mqtt.client", "--publish mqtt://")
    selector = selector or TargetSelector()
    sinks: list[Sink] = []
    try:
        if config.mavlink is not None:
            from edgedet.link.mavlink import MavlinkCamera, MavlinkConfig, MavlinkSink, StreamDescription

            w, h = output_size(frame_hw, config.stream_width) if frame_hw else (0, 0)
            descriptions = [StreamDescription(s, w, h, fps, config.stream_bitrate) for s in streams]
            camera = MavlinkCamera(
                MavlinkConfig(config.mavlink, config.mavlink_sysid, config.mavlink_compid),
                selector=selector,
                vehicle=vehicle,
                streams=descriptions,
                camera_fps=fps,
                geo=geo,
            )
            sinks.append(MavlinkSink(camera.start()))
        if streams:
            from edgedet.link.stream_sink import StreamSink

            folder = Path(sdp_dir) if sdp_dir is not None else Path.cwd()
            for s in streams:
                sinks.append(
                    StreamSink(s, options, fps=fps, class_names=class_names, selector=selector,
                               sdp_path=sdp_path_for(s, folder) if s.scheme == "rtp" else None)
                )  # fmt: skip
        if publishes:
            from edgedet.link.publish import open_publisher

            for p in publishes:
                sinks.append(open_publisher(p.url, class_names, selector))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


__all__ = ["LinkConfig", "open_link_sinks", "sdp_files", "sdp_path_for"]
