"""The MAVLink camera component against a pymavlink ground station on loopback (UDP and TCP), with fuzzed
garbage and malformed commands; tracks come from hand-made frames here (the demo-scene run is in
test_mavlink_demo.py)."""

from __future__ import annotations

import math
import os
import random
import select
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from tests.link.conftest import free_port

from edgedet.errors import ConfigError
from edgedet.link.mavlink import MavlinkCamera, MavlinkConfig, StreamDescription
from edgedet.link.target import TargetSelector
from edgedet.link.urls import parse_mavlink_address, parse_stream_url
from edgedet.types import Detections, Frame, FrameResult

pytest.importorskip("pymavlink", reason="pymavlink not installed: pip install 'edgedet[link]'")
from tests.link.gcs import GroundStation

HW = (384, 640)
# two tracks: id 7 a car at (100..160, 200..230), id 9 a truck at (400..480, 50..100)
BOXES = {7: (100.0, 200.0, 160.0, 230.0), 9: (400.0, 50.0, 480.0, 100.0)}


def result(index: int, ids: tuple[int, ...] = (7, 9), fps: float = 30.0) -> FrameResult:
    xyxy = np.array([BOXES[i] for i in ids], np.float32).reshape(-1, 4)
    dets = Detections(xyxy, np.full(len(ids), 0.9), np.zeros(len(ids)), np.array(ids))
    image = np.zeros((*HW, 3), np.uint8)
    return FrameResult(Frame(image, index, index / fps), dets)


@pytest.fixture
def link():
    """(camera, gcs) over UDP: the camera sends to the ground station's listening port, like QGC on 14550."""
    port = free_port()
    gcs = GroundStation(f"udpin:127.0.0.1:{port}")
    selector = TargetSelector(lost_after_s=0.5)
    camera = MavlinkCamera(
        MavlinkConfig(f"udpout:127.0.0.1:{port}"),
        selector=selector,
        streams=[StreamDescription(parse_stream_url("rtp://127.0.0.1:5600"), 640, 384, 30.0, 2000)],
    ).start()
    selector.observe(result(0))
    yield camera, gcs
    camera.close()
    gcs.close()


def test_heartbeat_identifies_a_camera_component(link) -> None:
    _camera, gcs = link
    _, hb = gcs.wait("HEARTBEAT", where=lambda m: m.get_srcComponent() == 100)
    assert hb.type == gcs.d.MAV_TYPE_CAMERA and hb.get_srcSystem() == 1
    assert hb.autopilot == gcs.d.MAV_AUTOPILOT_INVALID


def test_camera_and_video_stream_information_on_request(link) -> None:
    _camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    t = time.monotonic()
    assert gcs.request_message(d.MAVLINK_MSG_ID_CAMERA_INFORMATION) == d.MAV_RESULT_ACCEPTED
    _, info = gcs.wait("CAMERA_INFORMATION", since=t)
    want = (
        d.CAMERA_CAP_FLAGS_HAS_TRACKING_POINT
        | d.CAMERA_CAP_FLAGS_HAS_TRACKING_RECTANGLE
        | d.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM
    )
    assert info.flags & want == want
    assert (info.resolution_h, info.resolution_v) == (640, 384)
    assert bytes(info.vendor_name).rstrip(b"\0") == b"edgedet"
    t = time.monotonic()
    assert gcs.request_message(d.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION) == d.MAV_RESULT_ACCEPTED
    _, vs = gcs.wait("VIDEO_STREAM_INFORMATION", since=t)
    assert (
        vs.type == d.VIDEO_STREAM_TYPE_RTPUDP
        and vs.uri == "5600"
        and vs.encoding == d.VIDEO_STREAM_ENCODING_H264
    )
    assert (vs.stream_id, vs.count, vs.resolution_h, vs.resolution_v, vs.bitrate) == (
        1,
        1,
        640,
        384,
        2_000_000,
    )
    # the older commands QGroundControl falls back to
    t = time.monotonic()
    assert gcs.command(d.MAV_CMD_REQUEST_CAMERA_INFORMATION, 1)[2] == d.MAV_RESULT_ACCEPTED
    gcs.wait("CAMERA_INFORMATION", since=t)
    assert gcs.request_message(12345) == d.MAV_RESULT_UNSUPPORTED


def test_track_point_selects_the_nearest_track_and_status_follows_at_10_hz(link) -> None:
    camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    # just outside the car's right edge (160 px): within a radius of 0.02 of the width (12.8 px)
    t_sent, _, res = gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 168 / 640, 215 / 384, 0.02)
    assert res == d.MAV_RESULT_ACCEPTED
    assert camera.selector.selected_track_id == 7
    t_first, st = gcs.wait("CAMERA_TRACKING_IMAGE_STATUS", since=t_sent)
    assert st.tracking_status == d.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE
    assert st.tracking_mode == d.CAMERA_TRACKING_MODE_POINT
    assert st.target_data & d.CAMERA_TRACKING_TARGET_DATA_IN_STATUS
    box = (st.rec_top_x * 640, st.rec_top_y * 384, st.rec_bottom_x * 640, st.rec_bottom_y * 384)
    assert np.allclose(box, BOXES[7], atol=0.01)
    assert (st.point_x, st.point_y) == pytest.approx((130 / 640, 215 / 384), abs=1e-5)
    assert st.radius == pytest.approx(30 / 640, abs=1e-5)  # half the larger side, in widths
    for i in range(1, 31):  # a second of frames, the car keeps its id
        camera.selector.observe(result(i))
    time.sleep(1.0)
    n = len(gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t_first))
    assert 6 <= n <= 14  # ~10 Hz by default (loose: a shared machine)


def test_track_point_and_rectangle_failures_are_acked_not_raised(link) -> None:
    camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    assert (
        gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 0.9, 0.9, 0.01)[2] == d.MAV_RESULT_FAILED
    )  # nothing there
    assert (
        gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 1.5, 0.5, 0.01)[2] == d.MAV_RESULT_DENIED
    )  # off the image
    assert gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, math.nan, 0.5, 0.01)[2] == d.MAV_RESULT_DENIED
    assert gcs.command(d.MAV_CMD_CAMERA_TRACK_RECTANGLE, 0.0, 0.9, 0.1, 1.0)[2] == d.MAV_RESULT_FAILED
    assert camera.selector.status().state == "idle"
    # rectangle around the truck, corners given bottom-right first: still the truck
    res = gcs.command(d.MAV_CMD_CAMERA_TRACK_RECTANGLE, 490 / 640, 110 / 384, 390 / 640, 40 / 384)[2]
    assert res == d.MAV_RESULT_ACCEPTED and camera.selector.selected_track_id == 9
    assert gcs.command(31000)[2] == d.MAV_RESULT_UNSUPPORTED  # unknown, addressed to the camera


def test_lost_target_reports_error_and_stop_tracking_ends_the_messages(link) -> None:
    camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    assert gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 440 / 640, 75 / 384, 0.0)[2] == d.MAV_RESULT_ACCEPTED
    # the truck's track ends: frames without it, 0.6 s of frame time (> lost_after_s 0.5)
    for i in range(1, 20):
        camera.selector.observe(result(i, ids=(7,)))
    t = time.monotonic()
    _, st = gcs.wait(
        "CAMERA_TRACKING_IMAGE_STATUS",
        since=t,
        where=lambda m: m.tracking_status == d.CAMERA_TRACKING_STATUS_FLAGS_ERROR,
    )
    assert st.rec_top_x == pytest.approx(400 / 640)  # where it was last seen
    assert camera.selector.selected_track_id == -1  # no highlight for a lost target
    _, _, res = gcs.command(d.MAV_CMD_CAMERA_STOP_TRACKING)
    assert res == d.MAV_RESULT_ACCEPTED
    time.sleep(0.15)
    t_quiet = time.monotonic()
    time.sleep(0.5)
    assert gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t_quiet) == []


def test_coasting_while_the_track_is_briefly_missing(link) -> None:
    camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    assert gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 130 / 640, 215 / 384, 0.0)[2] == d.MAV_RESULT_ACCEPTED
    camera.selector.observe(result(1, ids=(9,)))  # one frame without the car (33 ms < lost_after_s)
    t = time.monotonic()
    coasting = d.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE | d.CAMERA_TRACKING_STATUS_FLAGS_COASTING
    t_coast, _ = gcs.wait("CAMERA_TRACKING_IMAGE_STATUS", since=t, where=lambda m: m.tracking_status == coasting)
    # the next status says so: at most one sent before the frame was observed can still be on its way (CI saw it)
    assert len([m for tm, m in gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t) if tm < t_coast]) <= 1
    assert camera.selector.selected_track_id == 7


def test_set_message_interval_changes_the_status_rate(link) -> None:
    _camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    status_id = d.MAVLINK_MSG_ID_CAMERA_TRACKING_IMAGE_STATUS
    assert gcs.command(d.MAV_CMD_SET_MESSAGE_INTERVAL, status_id, 40_000)[2] == d.MAV_RESULT_ACCEPTED  # 25 Hz
    t = time.monotonic()
    assert gcs.command(d.MAV_CMD_GET_MESSAGE_INTERVAL, status_id)[2] == d.MAV_RESULT_ACCEPTED
    _, mi = gcs.wait("MESSAGE_INTERVAL", since=t)
    assert (mi.message_id, mi.interval_us) == (status_id, 40_000)
    assert gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 130 / 640, 215 / 384, 0.0)[2] == d.MAV_RESULT_ACCEPTED
    t = time.monotonic()
    time.sleep(1.0)
    n = len(gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t))
    assert 15 <= n <= 32  # ~25 Hz (loose: a shared machine)
    assert gcs.command(d.MAV_CMD_SET_MESSAGE_INTERVAL, status_id, -1)[2] == d.MAV_RESULT_ACCEPTED  # off
    time.sleep(0.1)
    t = time.monotonic()
    time.sleep(0.4)
    assert gcs.messages("CAMERA_TRACKING_IMAGE_STATUS", since=t) == []
    assert (
        gcs.command(d.MAV_CMD_SET_MESSAGE_INTERVAL, d.MAVLINK_MSG_ID_ATTITUDE, 1000)[2]
        == d.MAV_RESULT_UNSUPPORTED
    )
    assert gcs.command(d.MAV_CMD_SET_MESSAGE_INTERVAL, status_id, -5)[2] == d.MAV_RESULT_DENIED


def test_vehicle_attitude_position_and_gimbal_are_kept_with_their_times(link) -> None:
    camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    t0 = time.monotonic()
    gcs.send_as(1, 1, d.MAVLink_attitude_message(1234, 0.1, -0.2, 1.5, 0.01, 0.02, 0.03))
    gcs.send_as(
        1,
        1,
        d.MAVLink_global_position_int_message(1240, 473977420, 85455940, 488000, 42000, 150, -20, 5, 9000),
    )
    half = math.radians(-40.0) / 2
    q = (math.cos(half), 0.0, math.sin(half), 0.0)  # pitch -40 degrees (looking down)
    gcs.send_as(
        1,
        154,
        d.MAVLink_gimbal_device_attitude_status_message(0, 0, 1250, 0, q, 0, 0, 0, 0, math.nan, math.nan, 0),
    )
    gcs.send_as(2, 1, d.MAVLink_attitude_message(99, 3.0, 3.0, 3.0, 0, 0, 0))  # another vehicle: ignored
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        snap = camera.vehicle.latest()
        if snap.attitude and snap.position and snap.gimbal:
            break
        time.sleep(0.01)
    snap = camera.vehicle.latest()
    assert snap.attitude is not None and snap.position is not None and snap.gimbal is not None
    a, p, g = snap.attitude, snap.position, snap.gimbal
    assert (a.roll_rad, a.pitch_rad, a.yaw_rad, a.time_boot_ms) == pytest.approx((0.1, -0.2, 1.5, 1234))
    assert (p.lat_deg, p.lon_deg, p.alt_msl_m, p.alt_rel_m) == pytest.approx(
        (47.397742, 8.545594, 488.0, 42.0)
    )
    assert (p.vn_m_s, p.ve_m_s, p.vd_m_s, math.degrees(p.heading_rad)) == pytest.approx(
        (1.5, -0.2, 0.05, 90.0)
    )
    assert math.degrees(g.pitch_rad) == pytest.approx(-40.0, abs=1e-4) and g.frame == "vehicle"
    assert all(t0 <= x.received_s <= time.monotonic() for x in (a, p, g))


def test_fuzzed_garbage_and_malformed_commands_never_stop_the_component(link) -> None:
    camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    rng = random.Random(14)
    cmds = [
        d.MAV_CMD_CAMERA_TRACK_POINT, d.MAV_CMD_CAMERA_TRACK_RECTANGLE, d.MAV_CMD_CAMERA_STOP_TRACKING,
        d.MAV_CMD_REQUEST_MESSAGE, d.MAV_CMD_SET_MESSAGE_INTERVAL, d.MAV_CMD_GET_MESSAGE_INTERVAL,
        d.MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION,
    ]  # fmt: skip
    weird = [math.nan, math.inf, -math.inf, -1.0, 0.0, 1.0, 1e30, -1e30, 259.0, 269.0, 275.0, 0.5, 2.0**31]
    hb_before = len(gcs.messages("HEARTBEAT"))
    for i in range(400):
        if i % 20 == 0:
            time.sleep(0.005)  # a burst, not a flood: the test is about content, not the kernel's buffer
        kind = i % 4
        if kind == 0:
            gcs.conn.write(os.urandom(rng.randint(1, 300)))  # line noise
        elif kind == 1:  # a valid frame cut short, then another's tail
            buf = d.MAVLink_command_long_message(1, 100, rng.choice(cmds), 0, *[0.0] * 7).pack(gcs.conn.mav)
            gcs.conn.write(buf[: rng.randint(1, len(buf) - 1)] + os.urandom(rng.randint(0, 20)))
        elif kind == 2:  # a well-formed command with nonsense parameters
            gcs.conn.mav.command_long_send(
                1, 100, rng.choice(cmds), rng.randint(0, 255), *[rng.choice(weird) for _ in range(7)]
            )
        else:  # bit flips (CRC errors)
            buf = bytearray(d.MAVLink_heartbeat_message(6, 8, 0, 0, 4, 3).pack(gcs.conn.mav))
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
            gcs.conn.write(bytes(buf))
    time.sleep(1.5)
    stats = camera.stats()
    assert all(t.is_alive() for t in camera._threads)
    assert stats.bad_data > 50 and stats.commands >= 90
    assert stats.handler_errors == 0  # every malformed command was answered, not crashed on
    assert sum(stats.acks.values()) >= 90 and stats.acks.get("DENIED", 0) > 0
    # still a working camera afterwards
    assert len(gcs.messages("HEARTBEAT")) > hb_before
    camera.selector.stop()
    assert gcs.request_message(d.MAVLINK_MSG_ID_CAMERA_INFORMATION) == d.MAV_RESULT_ACCEPTED
    assert gcs.command(d.MAV_CMD_CAMERA_TRACK_POINT, 130 / 640, 215 / 384, 0.0)[2] == d.MAV_RESULT_ACCEPTED


def test_commands_for_other_components_are_left_alone(link) -> None:
    camera, gcs = link
    d = gcs.d
    gcs.wait("HEARTBEAT")
    t = time.monotonic()
    gcs.conn.mav.command_long_send(
        1, 1, d.MAV_CMD_CAMERA_TRACK_POINT, 0, 0.2, 0.55, 0.05, 0, 0, 0, 0
    )  # autopilot's
    gcs.conn.mav.command_long_send(
        2, 100, d.MAV_CMD_CAMERA_TRACK_POINT, 0, 0.2, 0.55, 0.05, 0, 0, 0, 0
    )  # other system
    time.sleep(0.5)
    assert gcs.messages("COMMAND_ACK", since=t) == []
    assert camera.selector.status().state == "idle"


def _tcp_server(port: int) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    srv.settimeout(10)
    return srv


def _heartbeats(conn: socket.socket, seconds: float) -> int:
    from pymavlink.dialects.v20 import ardupilotmega as m

    parser = m.MAVLink(None)
    parser.robust_parsing = True
    conn.settimeout(0.1)
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = conn.recv(4096)
        except TimeoutError:
            continue
        if not data:
            break
        n += sum(1 for msg in parser.parse_buffer(data) or [] if msg.get_type() == "HEARTBEAT")
    return n


def test_tcp_link_absent_at_start_then_dropped_then_back_reconnects() -> None:
    port = free_port()
    camera = MavlinkCamera(MavlinkConfig(f"tcp:127.0.0.1:{port}", retry_s=(0.2,)), TargetSelector()).start()
    try:
        time.sleep(0.8)
        assert camera.stats().link_failures >= 2 and camera.stats().link_opens == 0  # nobody there: retrying
        srv = _tcp_server(port)
        conn, _ = srv.accept()
        assert _heartbeats(conn, 2.5) >= 1
        srv.close()  # the ground station goes away: first stop listening, so the retry cannot land in the old
        conn.close()  # listener's backlog, then drop the connection
        time.sleep(0.5)
        srv = _tcp_server(port)
        conn, _ = srv.accept()
        assert _heartbeats(conn, 2.5) >= 1
        conn.close()
        srv.close()
        st = camera.stats()
        assert st.link_opens == 2
    finally:
        camera.close()


def _plug_pty(link: Path) -> tuple[int, int]:
    """A pseudo-terminal reachable at `link` (a symlink, as udev names a USB serial adapter): (master, slave)."""
    master, slave = os.openpty()
    link.unlink(missing_ok=True)
    link.symlink_to(os.ttyname(slave))
    return master, slave


def _read_heartbeat_bytes(master: int, timeout_s: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout_s
    while b"\xfd" not in data and time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            data += os.read(master, 4096)
    return data


def test_serial_device_unplugged_and_plugged_back_reconnects(tmp_path: Path) -> None:
    pytest.importorskip("serial", reason="pyserial not installed: pip install 'edgedet[link]'")
    link = tmp_path / "ttyAUTOPILOT"
    master, slave = _plug_pty(link)
    camera = MavlinkCamera(MavlinkConfig(f"{link}:57600", retry_s=(0.2,)), TargetSelector()).start()
    try:
        assert b"\xfd" in _read_heartbeat_bytes(master, 3)  # a MAVLink 2 heartbeat on the wire
        os.close(master)  # unplugged: the device's reads fail (EIO) and its name disappears
        os.close(slave)
        link.unlink()
        time.sleep(1.0)
        st = camera.stats()
        assert st.link_failures >= 2 and all(t.is_alive() for t in camera._threads)  # lost, retrying, alive
        master, slave = _plug_pty(link)  # plugged back in under the same name
        assert b"\xfd" in _read_heartbeat_bytes(master, 5)
        assert camera.stats().link_opens == 2
    finally:
        camera.close()
        for fd in (master, slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.mark.parametrize(
    ("text", "kind", "host", "port"),
    [
        ("udpout:127.0.0.1:14550", "udpout", "127.0.0.1", 14550),
        ("udpin:0.0.0.0:14540", "udpin", "0.0.0.0", 14540),
        ("udp:0.0.0.0:14540", "udpin", "0.0.0.0", 14540),
        ("tcp:192.168.1.2:5760", "tcp", "192.168.1.2", 5760),
        ("tcpin:0.0.0.0:5760", "tcpin", "0.0.0.0", 5760),
        ("/dev/ttyTHS1:921600", "serial", "/dev/ttyTHS1", 921600),
        ("/dev/ttyACM0", "serial", "/dev/ttyACM0", 57600),
    ],
)
def test_mavlink_addresses(text: str, kind: str, host: str, port: int) -> None:
    a = parse_mavlink_address(text)
    assert (a.kind, a.host, a.port) == (kind, host, port)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("udpout:127.0.0.1", "HOST:PORT"),
        ("serial:/dev/x", "not a MAVLink connection"),
        ("tcp:h:70000", "port 70000"),
    ],
)
def test_bad_mavlink_addresses(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_mavlink_address(text)


def test_bad_ids_are_refused() -> None:
    with pytest.raises(ConfigError, match="--mavlink-sysid"):
        MavlinkConfig("udpout:127.0.0.1:14550", system_id=0).validate()
    with pytest.raises(ConfigError, match="--mavlink-compid"):
        MavlinkConfig("udpout:127.0.0.1:14550", component_id=300).validate()
