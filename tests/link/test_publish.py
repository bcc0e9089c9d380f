"""Tracks out: one JSON message per frame to a real mosquitto broker (paho-mqtt subscriber) and over UDP."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest
from tests.link.conftest import free_port

from edgedet.errors import ConfigError
from edgedet.link.publish import MqttPublisher, UdpPublisher, frame_message
from edgedet.link.target import TargetSelector
from edgedet.link.urls import parse_publish_url
from edgedet.types import Detections, Frame, FrameResult

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
    paho = pytest.importorskip(
        "paho.mqtt.client", reason="paho-mqtt not installed: pip install 'edgedet[link]'"
    )
    host, port = mosquitto
    got: list[dict] = []
    subscribed = threading.Event()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("edgedet/tracks", qos=0)
    sub.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    sub.connect(host, port)
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        pub = MqttPublisher(f"mqtt://{host}:{port}/edgedet/tracks", NAMES)
        assert pub.wait_connected(5)
        for i in range(200):
            pub.write(result(i))
            time.sleep(0.002)
        pub.close()
        deadline = time.monotonic() + 5
        while len(got) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sub.loop_stop()
        sub.disconnect()
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
