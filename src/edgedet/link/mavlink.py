"""A MAVLink camera component: video discovery and target selection for a ground station, and the vehicle's
attitude and position for the rest of edgedet.

What it speaks (MAVLink 2, pymavlink's ardupilotmega dialect, which includes common):
- sends HEARTBEAT (MAV_TYPE_CAMERA) once a second;
- answers MAV_CMD_REQUEST_MESSAGE (and the older MAV_CMD_REQUEST_CAMERA_INFORMATION /
  MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION) with COMMAND_ACK then CAMERA_INFORMATION (tracking point and
  rectangle, video stream) or VIDEO_STREAM_INFORMATION (one per --stream, its URI, so the ground station finds
  the video by itself);
- MAV_CMD_CAMERA_TRACK_POINT / _TRACK_RECTANGLE select a track (see `TargetSelector`), MAV_CMD_CAMERA_STOP_TRACKING
  clears it; each is answered with COMMAND_ACK (ACCEPTED; FAILED when no track is there; DENIED for bad
  coordinates);
- while a target is selected, sends CAMERA_TRACKING_IMAGE_STATUS at the interval set by
  MAV_CMD_SET_MESSAGE_INTERVAL (default 10 Hz): ACTIVE with the box, ACTIVE|COASTING while the track is
  missing from the latest frame, ERROR (lost, with the last box) once its track ended, until STOP_TRACKING or a
  new selection;
- with ground positions (--telemetry), while the selected target has one, also CAMERA_TRACKING_GEO_STATUS at the
  same rate (same status flags; lat/lon, h_acc = the position's 1-sigma, the ground's altitude, the distance from
  the camera and the ground velocity where known, NaN for the rest), and CAMERA_INFORMATION says
  CAMERA_CAP_FLAGS_HAS_TRACKING_GEO_STATUS;
- keeps the latest ATTITUDE, GLOBAL_POSITION_INT and gimbal attitude (GIMBAL_DEVICE_ATTITUDE_STATUS,
  MOUNT_ORIENTATION, MOUNT_STATUS) from its own system in a `VehicleState`.

Threads: a receive thread (reads, parses, answers commands, reopens a broken link with backoff) and a send
thread (heartbeat and tracking status on their schedules). Nothing here is called by the frame loop except
`TargetSelector.observe` (through `MavlinkSink`), so a dead, slow or hostile peer cannot stall detection; garbage
bytes and malformed commands are counted and answered, never raised.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgedet.errors import ConfigError
from edgedet.link.target import (
    ACTIVE,
    IDLE,
    LOST,
    MODE_POINT,
    MODE_RECTANGLE,
    SelectionError,
    TargetSelector,
    TargetStatus,
)
from edgedet.link.transport import Transport, open_transport
from edgedet.link.urls import MavlinkAddress, StreamUrl, parse_mavlink_address
from edgedet.link.vehicle import (
    Attitude,
    GimbalAttitude,
    GlobalPosition,
    VehicleState,
    euler_to_quaternion,
    quaternion_to_euler,
)
from edgedet.sinks.base import OutputStatus, Sink
from edgedet.types import FrameResult

logger = logging.getLogger(__name__)

MAV_COMP_ID_CAMERA = 100
DEFAULT_STATUS_HZ = 10.0
MAX_STATUS_HZ = 100.0

# Message and command ids used here (the values of the MAVLink standard; the dialect module is imported lazily)
MSG_HEARTBEAT = 0
MSG_CAMERA_INFORMATION = 259
MSG_VIDEO_STREAM_INFORMATION = 269
MSG_CAMERA_TRACKING_IMAGE_STATUS = 275
MSG_CAMERA_TRACKING_GEO_STATUS = 276
CMD_GET_MESSAGE_INTERVAL = 510
CMD_SET_MESSAGE_INTERVAL = 511
CMD_REQUEST_MESSAGE = 512
CMD_REQUEST_CAMERA_INFORMATION = 521
CMD_REQUEST_VIDEO_STREAM_INFORMATION = 2504
CMD_CAMERA_TRACK_POINT = 2004
CMD_CAMERA_TRACK_RECTANGLE = 2005
CMD_CAMERA_STOP_TRACKING = 2010


@dataclass(frozen=True)
class MavlinkConfig:
    """`--mavlink CONNECTION` and its ids.

    connection: see `edgedet.link.urls.MAVLINK_USAGE`.
    system_id: this component's system id, normally the vehicle's (--mavlink-sysid, default 1).
    component_id: default MAV_COMP_ID_CAMERA (100) (--mavlink-compid).
    status_hz: CAMERA_TRACKING_IMAGE_STATUS rate until a ground station sets another.
    lost_after_s: how long the selected track may be missing before it counts as lost.
    """

    connection: str
    system_id: int = 1
    component_id: int = MAV_COMP_ID_CAMERA
    status_hz: float = DEFAULT_STATUS_HZ
    heartbeat_hz: float = 1.0
    lost_after_s: float = 0.5
    retry_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)

    def validate(self) -> MavlinkAddress:
        if not 1 <= self.system_id <= 255:
            raise ConfigError(
                f"--mavlink-sysid {self.system_id} must be in 1..255 (normally the vehicle's, 1)"
            )
        if not 1 <= self.component_id <= 255:
            raise ConfigError(f"--mavlink-compid {self.component_id} must be in 1..255 (camera: 100)")
        if not (math.isfinite(self.status_hz) and 0 < self.status_hz <= MAX_STATUS_HZ):
            raise ConfigError(f"tracking status rate {self.status_hz} Hz must be in (0, {MAX_STATUS_HZ:g}]")
        return parse_mavlink_address(self.connection)


@dataclass(frozen=True)
class StreamDescription:
    """What VIDEO_STREAM_INFORMATION says about one `--stream`."""

    url: StreamUrl
    width: int = 0
    height: int = 0
    fps: float = 0.0
    bitrate_kbps: int = 0


@dataclass
class MavlinkStats:
    """Counters of one component's life (read with `MavlinkCamera.stats()`)."""

    messages_in: int = 0
    bad_data: int = 0  # undecodable bytes/frames (garbage, CRC errors, truncated packets)
    handler_errors: int = 0  # messages whose content could not be used (logged at debug level)
    commands: int = 0
    acks: dict[str, int] = field(default_factory=dict)  # by MAV_RESULT name
    heartbeats_sent: int = 0
    status_sent: int = 0
    geo_status_sent: int = 0
    messages_sent: int = 0
    send_failures: int = 0  # messages that could not be handed to the link (down, broken)
    link_opens: int = 0
    link_failures: int = 0  # failed opens and broken links

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, acks=dict(self.acks))


_RESULT_NAMES = {0: "ACCEPTED", 1: "TEMPORARILY_REJECTED", 2: "DENIED", 3: "UNSUPPORTED", 4: "FAILED"}


def _pad(text: str, n: int) -> list[int]:
    return list(text.encode()[:n].ljust(n, b"\0"))


def _finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


class MavlinkCamera:
    """The component; see the module docstring. `start()` spawns its threads, `close()` stops them.

    selector: the shared target selection (fed by `MavlinkSink`). vehicle: where vehicle messages go (a new
    VehicleState when None; read it as `camera.vehicle`). streams: the `--stream` outputs to announce.
    """

    def __init__(
        self,
        config: MavlinkConfig,
        selector: TargetSelector | None = None,
        vehicle: VehicleState | None = None,
        streams: Sequence[StreamDescription] = (),
        camera_fps: float = 30.0,
        geo: bool = False,
    ) -> None:
        from edgedet._optional import require

        self.address = config.validate()
        self.config = config
        self._dialect = require("pymavlink.dialects.v20.ardupilotmega", f"--mavlink {config.connection}")
        self.selector = selector or TargetSelector(lost_after_s=config.lost_after_s)
        self.vehicle = vehicle or VehicleState()
        self.streams = tuple(streams)
        self.camera_fps = float(camera_fps)
        self.geo = bool(geo)
        self._tx_mav = self._dialect.MAVLink(
            None, srcSystem=config.system_id, srcComponent=config.component_id
        )
        self._rx_mav = self._new_parser()
        self._stats = MavlinkStats()
        self._stats_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._transport: Transport | None = None
        self._broken = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._status_interval_s = 1.0 / config.status_hz
        self._next_status = 0.0
        self._t_boot = time.monotonic()
        self._threads: list[threading.Thread] = []
        self._warned_down = False

    # --- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> MavlinkCamera:
        for target, name in ((self._rx_loop, "rx"), (self._tx_loop, "tx")):
            t = threading.Thread(target=target, name=f"edgedet-mavlink-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def close(self, timeout_s: float = 2.0) -> MavlinkStats:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout_s)
        with self._send_lock:
            if self._transport is not None:
                try:
                    self._transport.close()
                except OSError:
                    pass
                self._transport = None
        return self.stats()

    def __enter__(self) -> MavlinkCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> MavlinkStats:
        with self._stats_lock:
            return MavlinkStats(**dict(self._stats.__dict__, acks=dict(self._stats.acks)))

    @property
    def status_interval_s(self) -> float:
        """The tracking status interval now in force (0 or less: disabled by the ground station)."""
        return self._status_interval_s

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            setattr(self._stats, name, getattr(self._stats, name) + n)

    def _time_boot_ms(self) -> int:
        return int((time.monotonic() - self._t_boot) * 1000) & 0xFFFFFFFF

    def _new_parser(self) -> Any:
        mav = self._dialect.MAVLink(
            None, srcSystem=self.config.system_id, srcComponent=self.config.component_id
        )
        mav.robust_parsing = True  # garbage becomes BAD_DATA messages instead of exceptions
        return mav

    # --- sending --------------------------------------------------------------------------------------------

    def send(self, msg: Any) -> bool:
        """Encode and send one message; False (counted) when the link is down or the send failed."""
        with self._send_lock:
            transport = self._transport
            if transport is None:
                self._count("send_failures")
                return False
            try:
                buf = msg.pack(self._tx_mav)
                self._tx_mav.seq = (self._tx_mav.seq + 1) % 256
                transport.send(buf)
            except OSError as exc:
                self._count("send_failures")
                logger.debug("--mavlink %s: send failed: %s", self.config.connection, exc)
                self._broken.set()
                return False
        self._count("messages_sent")
        return True

    def _heartbeat(self) -> None:
        d = self._dialect
        if self.send(
            d.MAVLink_heartbeat_message(
                d.MAV_TYPE_CAMERA, d.MAV_AUTOPILOT_INVALID, 0, 0, d.MAV_STATE_ACTIVE, 3
            )
        ):
            self._count("heartbeats_sent")

    def _ack(self, msg: Any, command: int, result: int) -> None:
        name = _RESULT_NAMES.get(result, str(result))
        with self._stats_lock:
            self._stats.acks[name] = self._stats.acks.get(name, 0) + 1
        self.send(
            self._dialect.MAVLink_command_ack_message(
                command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()
            )
        )

    def _frame_size(self) -> tuple[int, int]:
        st = self.selector.frame_hw()
        return (st[1], st[0]) if st else (0, 0)

    def camera_information(self) -> Any:
        d = self._dialect
        flags = d.CAMERA_CAP_FLAGS_HAS_TRACKING_POINT | d.CAMERA_CAP_FLAGS_HAS_TRACKING_RECTANGLE
        if self.streams:
            flags |= d.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM
        if self.geo:
            flags |= d.CAMERA_CAP_FLAGS_HAS_TRACKING_GEO_STATUS
        w, h = self._frame_size()
        nan = float("nan")
        return d.MAVLink_camera_information_message(
            self._time_boot_ms(), _pad("edgedet", 32), _pad("edgedet detector", 32), 0, nan, nan, nan, w, h, 0,
            flags, 0, b"", 0, 0,
        )  # fmt: skip

    def video_stream_information(self, index: int) -> Any:
        d = self._dialect
        s = self.streams[index]
        kind = {
            "rtp": d.VIDEO_STREAM_TYPE_RTPUDP,
            "udp": d.VIDEO_STREAM_TYPE_MPEG_TS,
            "srt": d.VIDEO_STREAM_TYPE_MPEG_TS,
            "rtsp": d.VIDEO_STREAM_TYPE_RTSP,
        }[s.url.scheme]
        # RTP and MPEG-TS on UDP: the URI is the port the ground station listens on (MAVLink's convention);
        # SRT and RTSP: the address to connect to.
        uri = str(s.url.port) if s.url.scheme in ("rtp", "udp") else s.url.url
        w, h = (s.width, s.height) if s.width else self._frame_size()
        return d.MAVLink_video_stream_information_message(
            index + 1, len(self.streams), kind, d.VIDEO_STREAM_STATUS_FLAGS_RUNNING, float(s.fps or self.camera_fps),
            w, h, int(s.bitrate_kbps) * 1000, 0, 0, f"edgedet {s.url.scheme}".encode(), uri.encode()[:160],
            d.VIDEO_STREAM_ENCODING_H264, 0,
        )  # fmt: skip

    def _status_flags(self, st: TargetStatus) -> int:
        d = self._dialect
        if st.state == LOST:
            return int(d.CAMERA_TRACKING_STATUS_FLAGS_ERROR)
        return int(d.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE) | (
            int(d.CAMERA_TRACKING_STATUS_FLAGS_COASTING) if st.coasting else 0
        )

    def tracking_status(self) -> Any | None:
        """The CAMERA_TRACKING_IMAGE_STATUS for the current selection (None when idle)."""
        d = self._dialect
        st = self.selector.status()
        if st.state == IDLE or st.box_norm is None:
            return None
        flags = self._status_flags(st)
        mode = {
            MODE_POINT: d.CAMERA_TRACKING_MODE_POINT,
            MODE_RECTANGLE: d.CAMERA_TRACKING_MODE_RECTANGLE,
        }.get(st.mode, d.CAMERA_TRACKING_MODE_NONE)
        target_data = d.CAMERA_TRACKING_TARGET_DATA_IN_STATUS | (
            d.CAMERA_TRACKING_TARGET_DATA_RENDERED if self.streams else 0
        )
        x1, y1, x2, y2 = st.box_norm
        h, w = st.frame_hw
        # radius: half the box's larger side, as a fraction of the image width (MAVLink's unit for it)
        radius = max((x2 - x1) / 2.0, (y2 - y1) / 2.0 * (h / w if w else 1.0))
        return d.MAVLink_camera_tracking_image_status_message(
            flags, mode, target_data, (x1 + x2) / 2.0, (y1 + y2) / 2.0, radius, x1, y1, x2, y2, 0
        )

    def geo_status(self) -> Any | None:
        """The CAMERA_TRACKING_GEO_STATUS for the current selection: None when idle, without ground positions, or
        before the target had one. Unknown fields are NaN, as MAVLink specifies (alt too: the ground's height is
        known only when the telemetry gives the home's altitude)."""
        if not self.geo:
            return None
        st = self.selector.status()
        g = st.geo
        if st.state == IDLE or g is None:
            return None
        nan = math.nan
        speed = math.hypot(g.vel_n, g.vel_e)
        # The heading of the target's motion; a target (nearly) standing still has none.
        hdg = math.atan2(g.vel_e, g.vel_n) % (2 * math.pi) if speed >= 0.5 else nan
        return self._dialect.MAVLink_camera_tracking_geo_status_message(
            self._status_flags(st), round(g.lat_deg * 1e7), round(g.lon_deg * 1e7), g.alt_m, g.sigma_m, nan,
            g.vel_n, g.vel_e, nan, nan, g.dist_m, hdg, nan,
        )  # fmt: skip

    def _send_status(self) -> None:
        msg = self.tracking_status()
        if msg is not None and self.send(msg):
            self._count("status_sent")
        geo = self.geo_status()
        if geo is not None and self.send(geo):
            self._count("geo_status_sent")

    # --- the two threads ------------------------------------------------------------------------------------

    def _tx_loop(self) -> None:
        next_hb = time.monotonic()
        hb_interval = 1.0 / self.config.heartbeat_hz
        while not self._stop.is_set():
            # Cleared before the work, so a wake-up that arrives while sending is not lost.
            self._wake.clear()
            now = time.monotonic()
            if now >= next_hb:
                self._heartbeat()
                next_hb = now + hb_interval
            interval = self._status_interval_s
            due = next_hb
            if interval > 0 and self.selector.status().state != IDLE:
                if now >= self._next_status:
                    self._send_status()
                    # Keep the schedule (no drift); after a stall, restart it from now instead of bursting.
                    self._next_status = max(self._next_status + interval, now + interval / 2)
                due = min(due, self._next_status)
            self._wake.wait(max(0.0, due - time.monotonic()))

    def _open(self) -> bool:
        try:
            transport = open_transport(self.address)
        except OSError as exc:
            self._count("link_failures")
            if not self._warned_down:
                logger.warning(
                    "--mavlink %s: cannot open (%s); the run goes on and the link is retried",
                    self.config.connection, exc,
                )  # fmt: skip
                self._warned_down = True
            return False
        with self._send_lock:
            self._transport = transport
        self._broken.clear()
        self._rx_mav = (
            self._new_parser()
        )  # a half-parsed packet from the old link must not merge with new bytes
        self._count("link_opens")
        if self._warned_down:
            logger.info("--mavlink %s: link open again", self.config.connection)
            self._warned_down = False
        self._wake.set()  # heartbeat soon, so the ground station sees the camera again
        return True

    def _drop_link(self, why: BaseException | str) -> None:
        with self._send_lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            try:
                transport.close()
            except OSError:
                pass
        self._count("link_failures")
        logger.warning("--mavlink %s: link lost (%s); reconnecting", self.config.connection, why)
        self._warned_down = True

    def _rx_loop(self) -> None:
        failures = 0
        retry = self.config.retry_s
        while not self._stop.is_set():
            if self._transport is None:
                if not self._open():
                    self._stop.wait(retry[min(failures, len(retry) - 1)])
                    failures += 1
                    continue
                failures = 0
            if self._broken.is_set():
                self._drop_link("send failed")
                continue
            transport = self._transport
            assert transport is not None
            try:
                data = transport.recv(0.1)
            except OSError as exc:
                self._drop_link(exc)
                continue
            if data:
                if transport.datagrams:
                    self._rx_mav = self._new_parser()
                self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            msgs = self._rx_mav.parse_buffer(data) or []
        except Exception as exc:  # pymavlink raises on some malformed input even in robust mode
            self._count("bad_data")
            logger.debug("--mavlink: undecodable bytes: %s", exc)
            self._rx_mav = self._new_parser()
            return
        for msg in msgs:
            if msg.get_type() == "BAD_DATA":
                self._count("bad_data")
                continue
            self._count("messages_in")
            try:
                self._handle(msg)
            except Exception as exc:  # a message we cannot use must not end the thread
                self._count("handler_errors")
                logger.debug("--mavlink: could not handle %s: %s", msg.get_type(), exc)

    # --- handling what arrives ------------------------------------------------------------------------------

    def _handle(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind in ("COMMAND_LONG", "COMMAND_INT"):
            self._command(msg)
        elif (
            msg.get_srcSystem() == self.config.system_id
            and msg.get_srcComponent() != self.config.component_id
        ):
            self._vehicle_message(kind, msg)

    def _command(self, msg: Any) -> None:
        sysid, compid = self.config.system_id, self.config.component_id
        if msg.target_system not in (0, sysid) or msg.target_component not in (0, compid):
            return  # for someone else
        self._count("commands")
        d = self._dialect
        cmd = int(msg.command)
        p = (msg.param1, msg.param2, msg.param3, msg.param4)
        addressed = msg.target_component == compid
        if cmd == CMD_REQUEST_MESSAGE:
            self._request_message(msg, cmd, p[0], p[1])
        elif cmd == CMD_REQUEST_CAMERA_INFORMATION:
            self._request_message(msg, cmd, MSG_CAMERA_INFORMATION, 0)
        elif cmd == CMD_REQUEST_VIDEO_STREAM_INFORMATION:
            self._request_message(msg, cmd, MSG_VIDEO_STREAM_INFORMATION, p[0])
        elif cmd == CMD_SET_MESSAGE_INTERVAL:
            self._set_interval(msg, p[0], p[1])
        elif cmd == CMD_GET_MESSAGE_INTERVAL:
            if not _finite(p[0]) or int(p[0]) != MSG_CAMERA_TRACKING_IMAGE_STATUS:
                self._ack(msg, cmd, d.MAV_RESULT_UNSUPPORTED if _finite(p[0]) else d.MAV_RESULT_DENIED)
                return
            self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED)
            us = int(self._status_interval_s * 1e6) if self._status_interval_s > 0 else -1
            self.send(d.MAVLink_message_interval_message(MSG_CAMERA_TRACKING_IMAGE_STATUS, us))
        elif cmd in (CMD_CAMERA_TRACK_POINT, CMD_CAMERA_TRACK_RECTANGLE):
            self._track(msg, cmd, p)
        elif cmd == CMD_CAMERA_STOP_TRACKING:
            self.selector.stop()
            self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED)
        elif addressed:
            self._ack(msg, cmd, d.MAV_RESULT_UNSUPPORTED)  # broadcast commands we do not know are another's

    def _request_message(self, msg: Any, cmd: int, msg_id: float, param2: float) -> None:
        d = self._dialect
        if not _finite(msg_id, param2):
            self._ack(msg, cmd, d.MAV_RESULT_DENIED)
            return
        mid = int(msg_id)
        if mid == MSG_CAMERA_INFORMATION:
            self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED)
            self.send(self.camera_information())
        elif mid == MSG_VIDEO_STREAM_INFORMATION:
            sid = int(param2)
            if not self.streams or not 0 <= sid <= len(self.streams):
                self._ack(msg, cmd, d.MAV_RESULT_DENIED if self.streams else d.MAV_RESULT_UNSUPPORTED)
                return
            self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED)
            for i in range(len(self.streams)) if sid == 0 else (sid - 1,):
                self.send(self.video_stream_information(i))
        elif mid == MSG_CAMERA_TRACKING_IMAGE_STATUS:
            status = self.tracking_status()
            self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED if status is not None else d.MAV_RESULT_FAILED)
            if status is not None and self.send(status):
                self._count("status_sent")
        elif mid == MSG_CAMERA_TRACKING_GEO_STATUS and self.geo:
            geo = self.geo_status()
            self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED if geo is not None else d.MAV_RESULT_FAILED)
            if geo is not None and self.send(geo):
                self._count("geo_status_sent")
        elif mid == MSG_HEARTBEAT:
            self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED)
            self._heartbeat()
        else:
            self._ack(msg, cmd, d.MAV_RESULT_UNSUPPORTED)

    def _set_interval(self, msg: Any, msg_id: float, interval_us: float) -> None:
        d = self._dialect
        if not _finite(msg_id, interval_us):
            self._ack(msg, CMD_SET_MESSAGE_INTERVAL, d.MAV_RESULT_DENIED)
            return
        if int(msg_id) != MSG_CAMERA_TRACKING_IMAGE_STATUS:
            self._ack(msg, CMD_SET_MESSAGE_INTERVAL, d.MAV_RESULT_UNSUPPORTED)
            return
        us = float(interval_us)
        if us == -1:
            self._status_interval_s = 0.0  # disabled
        elif us == 0:
            self._status_interval_s = 1.0 / self.config.status_hz
        elif us > 0:
            self._status_interval_s = max(us / 1e6, 1.0 / MAX_STATUS_HZ)
        else:
            self._ack(msg, CMD_SET_MESSAGE_INTERVAL, d.MAV_RESULT_DENIED)
            return
        self._next_status = time.monotonic()
        self._wake.set()
        self._ack(msg, CMD_SET_MESSAGE_INTERVAL, d.MAV_RESULT_ACCEPTED)

    def _track(self, msg: Any, cmd: int, p: tuple[float, float, float, float]) -> None:
        d = self._dialect
        try:
            if cmd == CMD_CAMERA_TRACK_POINT:
                if not _finite(p[0], p[1], p[2]):
                    raise ValueError("non-finite parameter")
                self.selector.select_point(float(p[0]), float(p[1]), float(p[2]))
            else:
                if not _finite(*p):
                    raise ValueError("non-finite parameter")
                self.selector.select_rectangle(float(p[0]), float(p[1]), float(p[2]), float(p[3]))
        except SelectionError as exc:
            bad_coords = "not a normalised" in str(exc) or "not in 0..1" in str(exc)
            self._ack(msg, cmd, d.MAV_RESULT_DENIED if bad_coords else d.MAV_RESULT_FAILED)
            logger.info("--mavlink: tracking command %d refused: %s", cmd, exc)
            return
        except ValueError:
            self._ack(msg, cmd, d.MAV_RESULT_DENIED)
            return
        self._ack(msg, cmd, d.MAV_RESULT_ACCEPTED)
        # The first status goes out now, not at the next tick of the schedule.
        self._next_status = time.monotonic()
        self._wake.set()

    def _vehicle_message(self, kind: str, msg: Any) -> None:
        now = time.monotonic()
        if kind == "ATTITUDE":
            if _finite(msg.roll, msg.pitch, msg.yaw):
                self.vehicle.update_attitude(Attitude(
                    msg.roll, msg.pitch, msg.yaw, msg.rollspeed, msg.pitchspeed, msg.yawspeed, int(msg.time_boot_ms), now
                ))  # fmt: skip
            else:
                self._count("handler_errors")
        elif kind == "GLOBAL_POSITION_INT":
            heading = math.radians(msg.hdg / 100.0) if msg.hdg != 65535 else math.nan
            self.vehicle.update_position(GlobalPosition(
                msg.lat / 1e7, msg.lon / 1e7, msg.alt / 1000.0, msg.relative_alt / 1000.0,
                msg.vx / 100.0, msg.vy / 100.0, msg.vz / 100.0, heading, int(msg.time_boot_ms), now,
            ))  # fmt: skip
        elif kind == "GIMBAL_DEVICE_ATTITUDE_STATUS":
            q = tuple(float(v) for v in msg.q)
            if len(q) != 4 or not _finite(*q):
                self._count("handler_errors")
                return
            roll, pitch, yaw = quaternion_to_euler((q[0], q[1], q[2], q[3]))
            # GIMBAL_DEVICE_FLAGS_YAW_IN_EARTH_FRAME (2048) / YAW_LOCK (16): yaw relative to north
            earth = bool(msg.flags & (2048 | 16))
            self.vehicle.update_gimbal(GimbalAttitude(
                (q[0], q[1], q[2], q[3]), roll, pitch, yaw, "earth" if earth else "vehicle", kind, int(msg.time_boot_ms), now
            ))  # fmt: skip
        elif kind == "MOUNT_ORIENTATION":
            r, p_, y = math.radians(msg.roll), math.radians(msg.pitch), math.radians(msg.yaw)
            if _finite(r, p_, y):
                self.vehicle.update_gimbal(GimbalAttitude(
                    euler_to_quaternion(r, p_, y), r, p_, y, "vehicle", kind, int(msg.time_boot_ms), now
                ))  # fmt: skip
        elif kind == "MOUNT_STATUS":
            # ArduPilot: pointing_a pitch, pointing_b roll, pointing_c yaw, centidegrees
            p_, r, y = (math.radians(v / 100.0) for v in (msg.pointing_a, msg.pointing_b, msg.pointing_c))
            self.vehicle.update_gimbal(
                GimbalAttitude(euler_to_quaternion(r, p_, y), r, p_, y, "vehicle", kind, 0, now)
            )


class MavlinkSink(Sink):
    """Feeds each frame's tracks to the selection (one lock, a few array copies) and owns the component:
    closing the sink stops it. Never loses frames (`lost_frames` stays 0); the link's own counters are in
    `camera.stats()`."""

    flag = "--mavlink"

    def __init__(self, camera: MavlinkCamera) -> None:
        super().__init__()
        self.camera = camera

    def describe(self) -> str:
        return self.camera.config.connection

    def _write(self, result: FrameResult) -> None:
        self.camera.selector.observe(result)

    def status(self) -> OutputStatus:
        st = self.camera.stats()
        acks = ", ".join(f"{v} {k}" for k, v in sorted(st.acks.items())) or "none"
        note = (
            f"{st.messages_in} messages in ({st.bad_data} undecodable), {st.commands} commands (acks: {acks}), "
            f"{st.status_sent} tracking status ({st.geo_status_sent} geo) and {st.heartbeats_sent} heartbeats sent, {st.send_failures} not "
            f"sent, {st.link_failures} link failures"
        )
        return OutputStatus(self.flag, self.camera.config.connection, None, self.lost_frames, None, note)

    def _close(self) -> None:
        st = self.camera.close()
        logger.info(
            "--mavlink %s: %d messages in, %d bad, %d commands %s, %d status and %d heartbeats sent, %d send failures",
            self.camera.config.connection, st.messages_in, st.bad_data, st.commands, st.acks, st.status_sent,
            st.heartbeats_sent, st.send_failures,
        )  # fmt: skip


__all__ = [
    "ACTIVE",
    "MAV_COMP_ID_CAMERA",
    "MavlinkCamera",
    "MavlinkConfig",
    "MavlinkSink",
    "MavlinkStats",
    "StreamDescription",
]
