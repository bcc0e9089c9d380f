"""Real peers on loopback for the link tests: a GStreamer video receiver, a mosquitto broker, free ports.

Debian packages these need (CI's .ci/run installs them): gstreamer1.0-tools, gstreamer1.0-plugins-good/-bad
(rtph264depay, tsdemux, srtsrc/srtsink), gstreamer1.0-libav (avdec_h264), python3-gi, mosquitto.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port(kind: int = socket.SOCK_DGRAM, even: bool = False) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 now (even when asked: RTP's convention)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if even and port % 2:
            continue
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def gst_receiver_problem() -> str | None:
    """Why the GStreamer receiver cannot run here, or None."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (the receiver runs on the system python with python3-gi)"
    code = (
        "import gi; gi.require_version('Gst','1.0'); from gi.repository import Gst; Gst.init(None); "
        "missing=[n for n in ('udpsrc','rtph264depay','h264parse','avdec_h264','appsink','tsdemux','srtsrc') "
        "if Gst.ElementFactory.find(n) is None]; print(' '.join(missing))"
    )
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run {SYSTEM_PYTHON}: {exc}"
    if out.returncode != 0:
        return "python3-gi / GStreamer missing: apt install python3-gi gstreamer1.0-plugins-good gstreamer1.0-libav"
    if out.stdout.strip():
        return f"GStreamer elements missing: {out.stdout.strip()} (apt install gstreamer1.0-plugins-bad gstreamer1.0-libav)"
    return None


class Receiver:
    """tests/link/gst_receiver.py as a subprocess; `frames` fills with (time.monotonic(), w, h, code)."""

    def __init__(self, mode: str, port: int) -> None:
        self.mode, self.port = mode, port
        self.frames: list[tuple[float, int, int, int]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 20.0) -> Receiver:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(HERE / "gst_receiver.py"), self.mode, str(self.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"receiver did not start: {line!r} {err[-500:]}")
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if parts and parts[0] == "FRAME":
                with self._lock:
                    self.frames.append((float(parts[1]), int(parts[2]), int(parts[3]), int(parts[4])))

    def codes(self) -> list[int]:
        with self._lock:
            return [f[3] for f in self.frames]

    def wait_frames(self, n: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.frames) >= n:
                    return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Ask it to stop (stdin EOF), then end it."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crashed ground station."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait(5)


@pytest.fixture
def receiver() -> Iterator[type[Receiver]]:
    """Receiver(mode, port).start(); every receiver started through it is stopped after the test."""
    problem = gst_receiver_problem()
    if problem:
        pytest.skip(problem)
    made: list[Receiver] = []

    class Tracked(Receiver):
        def __init__(self, mode: str, port: int) -> None:
            super().__init__(mode, port)
            made.append(self)

    yield Tracked
    for r in made:
        r.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A mosquitto broker on a free loopback port (Debian's mosquitto package); yields (host, port)."""
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if exe is None:
        pytest.skip("mosquitto not installed: apt install mosquitto")
    port = free_port(socket.SOCK_STREAM)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("mosquitto did not start listening")
    yield "127.0.0.1", port
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class MqttSubscriber:
    """A paho-mqtt subscriber on `topic` of a broker (the mosquitto fixture's); `got` fills with each message's
    JSON. Use as a context manager: entering waits until the broker confirmed the subscription."""

    def __init__(self, host: str, port: int, topic: str = "edgedet/tracks") -> None:
        self.paho = pytest.importorskip(
            "paho.mqtt.client", reason="paho-mqtt not installed: pip install 'edgedet[link]'"
        )
        self.got: list[dict] = []
        self._subscribed = threading.Event()
        c = self.client = self.paho.Client(self.paho.CallbackAPIVersion.VERSION2)
        c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=0)
        c.on_subscribe = lambda c, u, mid, rc, p: self._subscribed.set()
        c.on_message = lambda c, u, m: self.got.append(json.loads(m.payload))
        self.host, self.port = host, port

    def __enter__(self) -> MqttSubscriber:
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        if not self._subscribed.wait(5):
            self.__exit__()
            pytest.fail("the MQTT subscription was not confirmed within 5 s")
        return self

    def wait(self, n: int, timeout_s: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.got

    def __exit__(self, *exc: object) -> None:
        self.client.loop_stop()
        self.client.disconnect()
