"""Parsing the link's addresses: `--stream URL`, `--publish URL` and `--mavlink CONNECTION`.

Pure functions with no optional imports, so a bad address fails with one clear line before anything opens.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from edgedet.errors import ConfigError

STREAM_SCHEMES = ("rtp", "udp", "srt", "rtsp")
PUBLISH_SCHEMES = ("mqtt", "udp")

STREAM_USAGE = (
    "rtp://HOST:PORT (RTP/H.264, e.g. rtp://192.168.1.10:5600 for QGroundControl), udp://HOST:PORT (MPEG-TS), "
    "srt://HOST:PORT (MPEG-TS over SRT, caller) or rtsp://SERVER:PORT/PATH (publish to an RTSP server)"
)
PUBLISH_USAGE = "mqtt://BROKER[:1883]/TOPIC[?qos=0] or udp://HOST:PORT"
MAVLINK_USAGE = (
    "udpout:HOST:PORT (e.g. udpout:127.0.0.1:14550), udpin:HOST:PORT, tcp:HOST:PORT, tcpin:HOST:PORT "
    "or a serial device with baud, e.g. /dev/ttyTHS1:921600"
)


@dataclass(frozen=True)
class StreamUrl:
    """A parsed `--stream` address. `path` is only set for rtsp (the stream's name on the server)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def container(self) -> str:
        """FFmpeg's muxer name for this transport."""
        return {"rtp": "rtp", "udp": "mpegts", "srt": "mpegts", "rtsp": "rtsp"}[self.scheme]


@dataclass(frozen=True)
class PublishUrl:
    """A parsed `--publish` address: mqtt (host, port, topic, qos) or udp (host, port)."""

    url: str
    scheme: str
    host: str
    port: int
    topic: str = ""
    qos: int = 0


@dataclass(frozen=True)
class MavlinkAddress:
    """A parsed `--mavlink` connection. kind: udpout | udpin | tcp | tcpin | serial. For serial, `host` is the
    device path and `port` the baud rate."""

    text: str
    kind: str
    host: str
    port: int

    @property
    def reconnects(self) -> bool:
        """Whether a lost link is re-opened (serial devices and outgoing TCP come and go; UDP has no link)."""
        return self.kind in ("serial", "tcp")

    @property
    def pymavlink_device(self) -> str:
        """The device string pymavlink's `mavlink_connection` takes (serial: the path; baud passed apart)."""
        if self.kind == "serial":
            return self.host
        return f"{self.kind}:{self.host}:{self.port}"


def _port(value: int | None, default: int | None, url: str, flag: str, usage: str) -> int:
    port = value if value is not None else default
    if port is None or not 0 < port < 65536:
        raise ConfigError(f"{flag} {url}: needs a port between 1 and 65535: write {usage}")
    return port


def _split(
    url: str, flag: str, usage: str, schemes: Collection[str]
) -> tuple[str, str, int | None, str, str]:
    """(scheme, host, port, path, query) of a link address with a known scheme and a host; ConfigError else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise ConfigError(f"{flag} {url}: {exc}: write {usage}") from exc
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in schemes:
        raise ConfigError(f"{flag} {url}: unknown scheme {scheme or '(none)'!r}: write {usage}")
    if not host:
        raise ConfigError(f"{flag} {url}: no host: write {usage}")
    return scheme, host, port, parts.path, parts.query


def parse_stream_url(url: str) -> StreamUrl:
    """`--stream URL` -> StreamUrl; ConfigError naming the problem and the accepted forms otherwise."""
    flag = "--stream"
    scheme, host, port, path, _query = _split(url, flag, STREAM_USAGE, STREAM_SCHEMES)
    if scheme == "rtsp":
        port_num = _port(port, 8554, url, flag, STREAM_USAGE)
        if path.strip("/") == "":
            raise ConfigError(
                f"{flag} {url}: an RTSP publish address needs a stream path, e.g. rtsp://{host}:{port_num}/edgedet"
            )
        return StreamUrl(url.strip(), scheme, host, port_num, path)
    port_num = _port(port, None, url, flag, STREAM_USAGE)
    if scheme == "rtp" and port_num % 2:
        # RTP takes the even port and RTCP the odd one above it; receivers (QGroundControl: 5600) listen on even.
        raise ConfigError(
            f"{flag} {url}: RTP uses an even port (RTCP takes the next one): use e.g. port 5600"
        )
    return StreamUrl(url.strip(), scheme, host, port_num)


def parse_publish_url(url: str) -> PublishUrl:
    """`--publish URL` -> PublishUrl; ConfigError naming the problem and the accepted forms otherwise."""
    flag = "--publish"
    scheme, host, port, path, query = _split(url, flag, PUBLISH_USAGE, PUBLISH_SCHEMES)
    if scheme == "udp":
        return PublishUrl(url.strip(), scheme, host, _port(port, None, url, flag, PUBLISH_USAGE))
    topic = path.lstrip("/")
    if "#" in url or "+" in topic:  # urlsplit would take '#...' as a fragment and silently cut the topic
        raise ConfigError(
            f"{flag} {url}: '+' and '#' are subscription wildcards, not allowed in a publish topic"
        )
    if not topic:
        raise ConfigError(
            f"{flag} {url}: an MQTT address needs a topic, e.g. mqtt://{host}:1883/edgedet/tracks"
        )
    qos = 0
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "qos" and value in ("0", "1", "2"):
            qos = int(value)
        else:
            raise ConfigError(f"{flag} {url}: unknown option {key}={value!r}: only qos=0|1|2 is accepted")
    return PublishUrl(url.strip(), scheme, host, _port(port, 1883, url, flag, PUBLISH_USAGE), topic, qos)


_SERIAL = re.compile(
    r"^(?P<dev>(/|COM)[^:]+)(:(?P<baud>\d+))?$"
)  # any absolute path: /dev/serial/by-id/... too


def parse_mavlink_address(text: str, default_baud: int = 57600) -> MavlinkAddress:
    """`--mavlink CONNECTION` -> MavlinkAddress; ConfigError naming the problem and the accepted forms."""
    flag = "--mavlink"
    s = text.strip()
    m = _SERIAL.match(s)
    if m:
        baud = int(m.group("baud") or default_baud)
        if baud <= 0:
            raise ConfigError(f"{flag} {text}: baud rate must be positive, e.g. /dev/ttyTHS1:921600")
        return MavlinkAddress(s, "serial", m.group("dev"), baud)
    kind, sep, rest = s.partition(":")
    if not sep or kind not in ("udpout", "udpin", "udp", "tcp", "tcpin"):
        raise ConfigError(f"{flag} {text}: not a MAVLink connection: write {MAVLINK_USAGE}")
    if kind == "udp":  # pymavlink's own spelling of udpin
        kind = "udpin"
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"{flag} {text}: needs HOST:PORT after '{kind}:': write {MAVLINK_USAGE}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"{flag} {text}: port {port} is not between 1 and 65535")
    return MavlinkAddress(s, kind, host, port)


__all__ = [
    "MAVLINK_USAGE",
    "PUBLISH_USAGE",
    "STREAM_USAGE",
    "MavlinkAddress",
    "PublishUrl",
    "StreamUrl",
    "parse_mavlink_address",
    "parse_publish_url",
    "parse_stream_url",
]
