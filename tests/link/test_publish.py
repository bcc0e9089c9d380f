"""Tracks out: one JSON message per frame to a real mosquitto broker (paho-mqtt subscriber) and over UDP."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time

import numpy as np
import pytest
from tests.link.conftest import MqttSubscriber, free_port

from edgedet.errors import ConfigError
from edgedet.geo.geodesy import GeoReference
from edgedet.link.publish import MqttPublisher, UdpPublisher, frame_message
from edgedet.link.target import TargetSelector
from edgedet.link.urls import parse_publish_url
from edgedet.types import Detections, Frame, FrameResult, GroundPositions

NAMES = ("car", "truck", "person")


def result(index: int, n: int = 3) -> FrameResult:
    xyxy = np.array([[10 * i + index, 20.0, 10 * i + index + 30.5, 60.25] for i in range(n)], np.float32)
    dets = Detections(xyxy, np.linspace(0.5, 0.9, n), np.arange(n) % 3, np.arange(n) + 100)
    return FrameResult(
        Frame(np.zeros((384, 640, 3), np.uint8), index, index / 30.0), dets, detector_ran=index % 2 == 0
    )


def test_frame_message_holds_every_track_and_the_selected_target() -> None:
    sel = TargetSelector()
    r = result(4)
    sel.observe(r)
    sel.select_point(10 / 640, 40 / 384, 0.0)  # inside track 100 only (x 4..34.5; 101 starts at 14)
    msg = frame_message(r, NAMES, sel)
    assert msg["frame"] == 4 and msg["time_s"] == pytest.approx(4 / 30, abs=1e-6)
    assert (msg["width"], msg["height"], msg["detector_ran"]) == (640, 384, True)
    assert msg["tracks"][1] == {
        "id": 101,
        "class_id": 1,
        "class": "truck",
        "score": 0.7,
        "xyxy": [14.0, 20.0, 44.5, 60.2],
    }
    assert (
        msg["target"]["id"] == 100 and msg["target"]["state"] == "active" and msg["target"]["mode"] == "point"
    )
    assert msg["target"]["box_norm"] == pytest.approx([4 / 640, 20 / 384, 34.5 / 640, 60.25 / 384], abs=1e-5)
    assert (
        frame_message(result(5, n=0), NAMES)["tracks"] == []
        and frame_message(result(5), NAMES)["target"] is None
    )


def test_mqtt_every_frame_reaches_a_subscriber_through_mosquitto(mosquitto) -> None:
    host, port = mosquitto
    with MqttSubscriber(host, port) as sub:
        pub = MqttPublisher(f"mqtt://{host}:{port}/edgedet/tracks", NAMES)
        assert pub.wait_connected(5)
        for i in range(200):
            pub.write(result(i))
            time.sleep(0.002)
        pub.close()
        got = sub.wait(200)
    assert pub.stats() == {"url": pub.url.url, "published": 200, "dropped_full": 0, "dropped_send": 0}
    assert [m["frame"] for m in got] == list(range(200))
    assert all(len(m["tracks"]) == 3 and m["tracks"][2]["class"] == "person" for m in got)
    assert got[7]["tracks"][0]["xyxy"] == [7.0, 20.0, 37.5, 60.2]


def test_mqtt_broker_absent_then_killed_drops_are_counted_and_the_loop_never_waits(mosquitto) -> None:
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed: pip install 'edgedet[link]'")
    port = free_port(socket.SOCK_STREAM)  # nothing listens there
    pub = MqttPublisher(f"mqtt://127.0.0.1:{port}/t", NAMES, queue_size=8)
    worst = 0.0
    for i in range(100):
        t = time.perf_counter()
        pub.write(result(i))
        worst = max(worst, time.perf_counter() - t)
    time.sleep(0.3)
    pub.close()
    st = pub.stats()
    assert worst < 0.05
    assert st["published"] == 0 and st["dropped_full"] + st["dropped_send"] == 100
    assert pub.lost_frames == 0 and pub.status().complete  # a live output: drops are counted, not "lost"
    assert "published 0 messages" in pub.status().format()


def test_udp_every_frame_arrives_as_one_datagram() -> None:
    port = free_port()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", port))
    rx.settimeout(2)
    sel = TargetSelector()
    pub = UdpPublisher(f"udp://127.0.0.1:{port}", NAMES, selector=sel)
    got = []
    try:
        for i in range(100):
            pub.write(result(i))
            time.sleep(0.001)
        pub.close()
        while len(got) < 100:
            got.append(json.loads(rx.recv(65536)))
    finally:
        rx.close()
    assert [m["frame"] for m in got] == list(range(100))
    assert pub.stats()["published"] == 100 and pub.lost_frames == 0


def test_udp_without_listener_never_blocks() -> None:
    pub = UdpPublisher(f"udp://127.0.0.1:{free_port()}", NAMES)
    for i in range(50):
        pub.write(result(i))
    pub.close()
    st = pub.stats()
    # Loopback reports the closed port (ICMP) on later sends: those are counted as dropped, the rest "sent".
    assert st["published"] + st["dropped_send"] + st["dropped_full"] == 50


def test_full_queue_drops_the_oldest_and_counts() -> None:
    class Stuck(UdpPublisher):
        gate = threading.Event()

        def _send(self, payload: bytes) -> bool:
            self.gate.wait(5)
            return True

    pub = Stuck(f"udp://127.0.0.1:{free_port()}", NAMES, queue_size=4)
    for i in range(20):
        pub.write(result(i))
    time.sleep(0.05)
    st = pub.stats()
    assert st["dropped_full"] >= 15  # 20 written, at most 4 queued + 1 in the sender's hands
    Stuck.gate.set()
    pub.close()
    assert pub.stats()["published"] + pub.stats()["dropped_full"] == 20


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mqtt://broker", "needs a topic"),
        ("mqtt://broker/a/#", "wildcards"),
        ("mqtt://broker/t?qos=3", "qos"),
        ("http://x/t", "unknown scheme"),
        ("udp://host", "needs a port"),
    ],
)
def test_bad_publish_urls(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_publish_url(url)


def test_mqtt_defaults() -> None:
    u = parse_publish_url("mqtt://10.0.0.2/drone/tracks?qos=1")
    assert (u.host, u.port, u.topic, u.qos) == ("10.0.0.2", 1883, "drone/tracks", 1)


def test_frame_message_carries_ground_positions_as_the_json_lines_do() -> None:
    r = result(3)
    nan = np.nan
    geo = GroundPositions(
        np.array([47.1, nan, 47.3]), np.array([8.1, nan, 8.3]), np.array([1.5, nan, -2.0]),
        np.array([10.0, nan, 12.5]), np.array([0.4, nan, 0.6]),
    )  # fmt: skip
    msg = frame_message(dataclasses.replace(r, geo=geo), NAMES)
    t0, t1, t2 = msg["tracks"]
    assert {k: t0[k] for k in GroundPositions.FIELDS} == {
        "lat": 47.1, "lon": 8.1, "east_m": 1.5, "north_m": 10.0, "sigma_m": 0.4,
    }  # fmt: skip
    assert all(t1[k] is None for k in GroundPositions.FIELDS) and t2["north_m"] == 12.5
    json.dumps(msg, allow_nan=False)  # nulls, never NaN
    assert not set(GroundPositions.FIELDS) & set(frame_message(r, NAMES)["tracks"][0])  # no pose: no keys


# Demo flight seed 0, split "demo": track 248 (a truck) is in view from frame 0 (see test_mavlink_demo.py).
DEMO_FRAMES = 45
TRUCK = 248


def demo_truth(frames: int) -> list[tuple[np.ndarray, dict[int, tuple[float, float]]]]:
    """Per frame of `--source demo:frames=N`: the gt rows and each object's true ground (east_m, north_m)."""
    from edgedet.scenes import DemoScene

    scene = DemoScene(seed=0, frames=frames, split="demo")
    return [(gt, where) for _img, gt, where in scene.iter_truth()]


def ground_errors(messages: list[dict], truth: list) -> dict[int, list[float]]:
    """Ground-position error (m) of every published track matched to a true object (image IoU >= 0.5), by
    object id; also checks that each track's lat/lon and east/north name the same point."""
    from edgedet.boxes import iou_matrix
    from edgedet.scenes import DemoScene

    home = DemoScene(seed=0, frames=1, split="demo").config
    ref = GeoReference(home.origin_lat_deg, home.origin_lon_deg, 0.0)
    errors: dict[int, list[float]] = {}
    for m in messages:
        gt, where = truth[m["frame"]]
        tracks = [t for t in m["tracks"] if t["lat"] is not None]
        if not tracks or not len(gt):
            continue
        boxes = gt[:, 2:6].copy()
        boxes[:, 2:] += boxes[:, :2]
        iou = iou_matrix(np.array([t["xyxy"] for t in tracks]), boxes)
        for t, row in zip(tracks, iou, strict=True):
            j = int(np.argmax(row))
            if row[j] < 0.5:
                continue
            oid = int(gt[j, 1])
            e, n = where[oid]
            errors.setdefault(oid, []).append(float(np.hypot(t["east_m"] - e, t["north_m"] - n)))
            en = ref.to_enu(t["lat"], t["lon"], 0.0)
            assert np.hypot(en[0] - t["east_m"], en[1] - t["north_m"]) < 0.01, t
    return errors


@pytest.mark.parametrize("transport", ["udp", "mqtt"])
def test_demo_run_publishes_ground_positions_that_match_the_scene(
    transport: str, request, tmp_path, monkeypatch
) -> None:
    """`edgedet run --source demo --telemetry demo --publish ...`: a real subscriber (a UDP socket, or paho
    through mosquitto) gets lat/lon/east/north/sigma per track, within a few metres of the scene's truth."""
    from edgedet.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["run", "--source", f"demo:frames={DEMO_FRAMES}", "--telemetry", "demo", "--detect-every", "1"]
    if transport == "udp":
        port = free_port()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", port))
        sock.settimeout(5)
        try:
            assert main([*argv, "--publish", f"udp://127.0.0.1:{port}"]) == 0
            got = [json.loads(sock.recv(65536)) for _ in range(DEMO_FRAMES)]
        finally:
            sock.close()
    else:
        host, port = request.getfixturevalue("mosquitto")
        with MqttSubscriber(host, port) as sub:
            assert main([*argv, "--publish", f"mqtt://{host}:{port}/edgedet/tracks"]) == 0
            got = sub.wait(DEMO_FRAMES)
    assert [m["frame"] for m in got] == list(range(DEMO_FRAMES))
    assert all(set(GroundPositions.FIELDS) <= set(t) for m in got for t in m["tracks"])
    errors = ground_errors(got, demo_truth(DEMO_FRAMES))
    truck = errors.get(TRUCK, [])
    assert len(truck) >= DEMO_FRAMES // 2, truck  # the truck is tracked with a position most of the run
    assert max(truck) < 3.0 and float(np.median(truck)) < 1.0, truck
    everything = [e for v in errors.values() for e in v]
    assert len(everything) > 3 * DEMO_FRAMES and float(np.median(everything)) < 1.0
