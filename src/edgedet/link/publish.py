"""Tracks out to other software: one JSON message per frame over MQTT (paho-mqtt) or UDP.

The frame loop only builds the message and puts it on a bounded queue (`queue_size`); a sender thread
publishes. When the queue is full the oldest message is dropped (the newest tracks matter most) and counted;
a broker that is down or a send that fails drops and counts too. Nothing here blocks the frame loop.

Message (UTF-8 JSON, one object):

    {"frame": 41, "time_s": 1.3667, "width": 640, "height": 384, "detector_ran": true,
     "tracks": [{"id": 7, "class_id": 0, "class": "car", "score": 0.91, "xyxy": [x1, y1, x2, y2]}, ...],
     "target": {"id": 7, "state": "active", "mode": "point", "box_norm": [x1, y1, x2, y2]} | null}

`xyxy` in frame pixels (rounded to 0.1 px), `time_s` the frame's timestamp (capture time on the monotonic
clock for live sources, media time for files), `target` the track the ground station selected (see
`edgedet.link.target`). Rows without a track id (tracking off) have "id": -1.
With a pose source (--telemetry) each track also carries lat, lon, east_m, north_m, sigma_m, as the JSON lines
do (`GroundPositions`; null where it has no ground position); without one these keys are absent.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from edgedet.errors import SinkError
from edgedet.link.target import IDLE, TargetSelector
from edgedet.link.urls import PublishUrl, parse_publish_url
from edgedet.sinks.base import OutputStatus, Sink
from edgedet.types import FrameResult

logger = logging.getLogger(__name__)

_UDP_MAX_BYTES = 65507  # the largest UDP payload over IPv4


def frame_message(
    result: FrameResult, class_names: Sequence[str] = (), selector: TargetSelector | None = None
) -> dict[str, Any]:
    """The JSON-ready dict of one frame (see the module docstring)."""
    dets = result.detections
    h, w = result.frame.hw
    tracks: list[dict[str, Any]] = []
    for (x1, y1, x2, y2), score, cls, tid in zip(
        dets.xyxy.tolist(),
        dets.confidence.tolist(),
        dets.class_id.tolist(),
        dets.track_id.tolist(),
        strict=True,
    ):
        tracks.append(
            {
                "id": tid,
                "class_id": cls,
                "class": class_names[cls] if 0 <= cls < len(class_names) else str(cls),
                "score": round(score, 4),
                "xyxy": [round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)],
            }
        )
    if result.geo is not None:  # the same keys and values as the JSON lines (edgedet.sinks.files)
        for i, t in enumerate(tracks):
            t.update(result.geo.row(i))
    target: dict[str, Any] | None = None
    if selector is not None:
        st = selector.status()
        if st.state != IDLE:
            target = {
                "id": st.track_id,
                "state": st.state,
                "mode": st.mode,
                "box_norm": [round(v, 5) for v in st.box_norm] if st.box_norm else None,
            }
    return {
        "frame": result.frame.index,
        "time_s": round(float(result.frame.timestamp_s), 6),
        "width": w,
        "height": h,
        "detector_ran": bool(result.detector_ran),
        "tracks": tracks,
        "target": target,
    }


class _QueuedPublisher(Sink):
    """A Sink whose `write` encodes one message and queues it for a sender thread (bounded; oldest dropped).

    Counters: `published` (handed to the transport), `dropped_full` (queue overflow), `dropped_send` (the
    transport refused or failed), reported in the run summary's line for this output (`status()`); a live
    output's drops are not lost frames of a record, so they never mark the run's outputs incomplete.
    """

    flag = "--publish"

    def __init__(
        self,
        url: PublishUrl,
        class_names: Sequence[str] = (),
        selector: TargetSelector | None = None,
        queue_size: int = 64,
    ) -> None:
        super().__init__()
        self.url = url
        self.class_names = tuple(class_names)
        self.selector = selector
        self.published = 0
        self.dropped_full = 0
        self.dropped_send = 0
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=max(1, int(queue_size)))
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"edgedet-publish-{self.url.scheme}", daemon=True
        )
        self._thread.start()

    def describe(self) -> str:
        return self.url.url

    def _write(self, result: FrameResult) -> None:
        payload = json.dumps(
            frame_message(result, self.class_names, self.selector), separators=(",", ":")
        ).encode()
        while True:
            try:
                self._q.put_nowait(payload)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()  # make room: the oldest message is the least useful one
                    self._count("dropped_full")
                except queue.Empty:
                    pass

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            setattr(self, name, getattr(self, name) + n)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                ok = self._send(item)
            except Exception as exc:  # a transport failure drops this message, never the thread
                logger.debug("%s %s: send failed: %s", self.flag, self.url.url, exc)
                ok = False
            self._count("published" if ok else "dropped_send")

    def _send(self, payload: bytes) -> bool:
        raise NotImplementedError

    def _stop_thread(self, timeout_s: float) -> None:
        if self._thread is None:
            return
        # Wait for what is queued to go out (bounded), then the sentinel stops the thread.
        deadline = time.monotonic() + timeout_s
        while not self._q.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        while True:
            try:
                self._q.put(None, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                try:
                    self._q.get_nowait()
                    self._count("dropped_send")
                except queue.Empty:
                    pass
        self._thread.join(max(0.1, deadline - time.monotonic()))

    def status(self) -> OutputStatus:
        st = self.stats()
        note = (
            f"published {st['published']} messages, dropped {st['dropped_full']} on a full queue and "
            f"{st['dropped_send']} the {self.url.scheme} link did not take"
        )
        return OutputStatus(self.flag, self.url.url, None, self.lost_frames, None, note)

    def stats(self) -> dict[str, Any]:
        with self._count_lock:
            return {
                "url": self.url.url,
                "published": self.published,
                "dropped_full": self.dropped_full,
                "dropped_send": self.dropped_send,
            }


class UdpPublisher(_QueuedPublisher):
    """`--publish udp://HOST:PORT`: each frame's JSON as one datagram (larger than 65507 bytes: dropped)."""

    def __init__(
        self,
        url: str | PublishUrl,
        class_names: Sequence[str] = (),
        selector: TargetSelector | None = None,
        queue_size: int = 64,
    ) -> None:
        parsed = url if isinstance(url, PublishUrl) else parse_publish_url(url)
        if parsed.scheme != "udp":
            raise SinkError(f"UdpPublisher needs a udp:// address, got {parsed.url}")
        super().__init__(parsed, class_names, selector, queue_size)
        try:
            infos = socket.getaddrinfo(parsed.host, parsed.port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise SinkError(
                f"--publish {parsed.url}: cannot resolve {parsed.host} ({exc}): check the host name"
            ) from exc
        family, _type, _proto, _canon, addr = infos[0]
        self._addr: Any = addr
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)  # a full send buffer drops the message instead of waiting
        self._warned_size = False
        self._start()

    def _send(self, payload: bytes) -> bool:
        if len(payload) > _UDP_MAX_BYTES:
            if not self._warned_size:
                logger.warning(
                    "--publish %s: a frame's message is %d bytes, over UDP's limit; such frames are dropped "
                    "(use --publish mqtt://... for crowded scenes)",
                    self.url.url,
                    len(payload),
                )
                self._warned_size = True
            return False
        try:
            self._sock.sendto(payload, self._addr)
        except OSError:  # ECONNREFUSED from an earlier ICMP port-unreachable, EAGAIN from a full buffer
            return False
        return True

    def _close(self) -> None:
        self._stop_thread(2.0)
        self._sock.close()


class MqttPublisher(_QueuedPublisher):
    """`--publish mqtt://BROKER:1883/TOPIC[?qos=0]` through paho-mqtt. Connects in the background and keeps
    reconnecting (paho's loop thread); messages while disconnected are dropped and counted, never queued up.

    At most `inflight` messages may be handed to paho and not yet written to the socket; beyond that the sender
    waits for them, so the backlog stays in this class's bounded queue (where overflow is counted).
    """

    def __init__(
        self,
        url: str | PublishUrl,
        class_names: Sequence[str] = (),
        selector: TargetSelector | None = None,
        queue_size: int = 64,
        inflight: int = 32,
        client_id: str = "",
    ) -> None:
        from edgedet._optional import require

        parsed = url if isinstance(url, PublishUrl) else parse_publish_url(url)
        if parsed.scheme != "mqtt":
            raise SinkError(f"MqttPublisher needs an mqtt:// address, got {parsed.url}")
        mqtt = require("paho.mqtt.client", f"--publish {parsed.url}")
        super().__init__(parsed, class_names, selector, queue_size)
        self._mqtt = mqtt
        self._inflight_max = max(1, int(inflight))
        self._inflight: list[Any] = []
        self._connected = threading.Event()
        self.disconnects = 0
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)
        try:
            # connect_async: the first connection is made by the loop thread, so a broker that is not up yet
            # does not fail or delay the run's start.
            self._client.connect_async(parsed.host, parsed.port, keepalive=10)
        except (OSError, ValueError) as exc:
            raise SinkError(f"--publish {parsed.url}: {exc}: check the broker address") from exc
        self._client.loop_start()
        self._start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not getattr(reason_code, "is_failure", False):
            self._connected.set()
            logger.info("--publish %s: connected to the broker", self.url.url)
        else:
            logger.warning("--publish %s: the broker refused the connection: %s", self.url.url, reason_code)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if self._connected.is_set():
            self.disconnects += 1
            logger.warning(
                "--publish %s: lost the broker (%s); reconnecting, messages meanwhile are dropped",
                self.url.url,
                reason_code,
            )
        self._connected.clear()

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until the broker accepted the connection (for tests and start-up checks)."""
        return self._connected.wait(timeout_s)

    def _send(self, payload: bytes) -> bool:
        if not self._connected.is_set():
            return False
        self._inflight = [m for m in self._inflight if not m.is_published()]
        if len(self._inflight) >= self._inflight_max:
            self._inflight[0].wait_for_publish(timeout=1.0)
            self._inflight = [m for m in self._inflight if not m.is_published()]
            if len(self._inflight) >= self._inflight_max:
                return False
        info = self._client.publish(self.url.topic, payload, qos=self.url.qos)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            return False
        self._inflight.append(info)
        return True

    def _close(self) -> None:
        self._stop_thread(2.0)
        for m in self._inflight:
            try:
                m.wait_for_publish(timeout=0.5)
            except (RuntimeError, ValueError):
                pass  # paho raises when the message can no longer be published (disconnected)
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()


def open_publisher(
    url: str, class_names: Sequence[str] = (), selector: TargetSelector | None = None, queue_size: int = 64
) -> _QueuedPublisher:
    """The publisher for a `--publish` address (mqtt:// or udp://)."""
    parsed = parse_publish_url(url)
    if parsed.scheme == "mqtt":
        return MqttPublisher(parsed, class_names, selector, queue_size)
    return UdpPublisher(parsed, class_names, selector, queue_size)


__all__ = ["MqttPublisher", "UdpPublisher", "frame_message", "open_publisher"]
