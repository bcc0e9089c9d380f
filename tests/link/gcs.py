"""A pymavlink ground station for the link tests and benchmarks: what QGroundControl does, scripted.

It listens (`udpin`, as a ground station on 14550 does) or connects, keeps every message it receives with its
arrival time, and sends commands as COMMAND_LONG. MAVLink 2 (the camera tracking messages need it).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

os.environ.setdefault("MAVLINK20", "1")  # before mavutil picks its protocol version

from pymavlink import mavutil

GCS_SYSID = 255
GCS_COMPID = 190  # MAV_COMP_ID_MISSIONPLANNER


class GroundStation:
    def __init__(self, device: str) -> None:
        os.environ["MAVLINK20"] = "1"
        self.conn = mavutil.mavlink_connection(
            device, source_system=GCS_SYSID, source_component=GCS_COMPID, dialect="ardupilotmega"
        )
        self.d = mavutil.mavlink
        self.received: list[tuple[float, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._rx, daemon=True)
        self._thread.start()

    def _rx(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.conn.recv_match(blocking=True, timeout=0.05)
            except OSError:
                continue
            if msg is None or msg.get_type() == "BAD_DATA":
                continue
            with self._lock:
                self.received.append((time.monotonic(), msg))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.conn.close()

    # --- reading ---------------------------------------------------------------------------------------------

    def messages(self, kind: str, since: float = 0.0) -> list[tuple[float, Any]]:
        with self._lock:
            return [(t, m) for t, m in self.received if t >= since and m.get_type() == kind]

    def wait(
        self, kind: str, since: float = 0.0, timeout_s: float = 5.0, where: Any = None
    ) -> tuple[float, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, m in self.messages(kind, since):
                if where is None or where(m):
                    return t, m
            time.sleep(0.005)
        raise TimeoutError(f"no {kind} within {timeout_s} s")

    # --- sending ---------------------------------------------------------------------------------------------

    def command(
        self, command: int, *params: float, target: tuple[int, int] = (1, 100), timeout_s: float = 5.0
    ) -> tuple[float, float, int]:
        """Send COMMAND_LONG and wait for its ACK: (sent time, ack time, MAV_RESULT)."""
        p = [float(v) for v in params] + [0.0] * (7 - len(params))
        t = time.monotonic()
        self.conn.mav.command_long_send(target[0], target[1], command, 0, *p)
        ta, ack = self.wait("COMMAND_ACK", since=t, timeout_s=timeout_s, where=lambda m: m.command == command)
        return t, ta, int(ack.result)

    def request_message(self, msg_id: int, param2: float = 0.0) -> int:
        return self.command(self.d.MAV_CMD_REQUEST_MESSAGE, msg_id, param2)[2]

    def send_as(self, sysid: int, compid: int, msg: Any) -> None:
        """Send `msg` with another sender id (to play the autopilot or a gimbal)."""
        mav = self.conn.mav
        old = (mav.srcSystem, mav.srcComponent)
        mav.srcSystem, mav.srcComponent = sysid, compid
        try:
            mav.send(msg)
        finally:
            mav.srcSystem, mav.srcComponent = old
