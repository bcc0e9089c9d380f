"""Byte transports for MAVLink: UDP (out or in), TCP (client or server) and serial, each able to reopen.

pymavlink's `mavutil` connections pick the protocol version through a process-wide environment variable and
module global; the camera component instead encodes and decodes with a dialect's `MAVLink` object and moves
bytes through these small transports, which it owns and can reopen.

Contract: `recv(timeout_s)` returns bytes (b"" when nothing arrived in time) and raises OSError when the link
is broken (the caller reopens); `send(data)` raises OSError when the bytes could not be handed over (the caller
counts the message as dropped). Neither blocks longer than its timeout.
"""

from __future__ import annotations

import select
import socket
from typing import Any, Protocol

from edgedet.link.urls import MavlinkAddress

_BUF = 65536


class Transport(Protocol):
    #: True when each recv() returns whole datagrams (UDP): a parser can start afresh on each, so a corrupt
    #: datagram cannot swallow the packets of the next one; False for byte streams (TCP, serial).
    datagrams: bool

    def recv(self, timeout_s: float) -> bytes: ...
    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


def _resolve(host: str, port: int, kind: int) -> tuple[int, Any]:
    family, _t, _p, _c, addr = socket.getaddrinfo(host, port, type=kind)[0]
    return family, addr


def _big_receive_buffer(sock: socket.socket) -> None:
    # The kernel's default (~200 KiB, about 90 datagrams with its per-packet overhead) overflows when a burst
    # arrives while this process is busy: ask for 1 MiB (the kernel caps it at net.core.rmem_max).
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    except OSError:
        pass


class UdpOut:
    """`udpout:HOST:PORT`: send to HOST:PORT from an ephemeral port; replies come back to that port."""

    datagrams = True

    def __init__(self, host: str, port: int) -> None:
        family, self._addr = _resolve(host, port, socket.SOCK_DGRAM)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        _big_receive_buffer(self._sock)
        self._sock.setblocking(False)

    def recv(self, timeout_s: float) -> bytes:
        r, _, _ = select.select([self._sock], [], [], timeout_s)
        if not r:
            return b""
        try:
            return self._sock.recv(_BUF)
        except (ConnectionRefusedError, BlockingIOError):
            # ICMP port-unreachable from an earlier send (nobody listening yet): not a broken link for UDP
            return b""

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendto(data, self._addr)
        except ConnectionRefusedError:
            pass  # the ground station is not listening yet; UDP has no link to lose

    def close(self) -> None:
        self._sock.close()


class UdpIn:
    """`udpin:HOST:PORT`: listen on HOST:PORT; send to whoever spoke last (as pymavlink does)."""

    datagrams = True

    def __init__(self, host: str, port: int) -> None:
        family, addr = _resolve(host, port, socket.SOCK_DGRAM)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _big_receive_buffer(self._sock)
        self._sock.bind(addr)
        self._sock.setblocking(False)
        self._peer: Any = None

    @property
    def bound_port(self) -> int:
        return int(self._sock.getsockname()[1])

    def recv(self, timeout_s: float) -> bytes:
        r, _, _ = select.select([self._sock], [], [], timeout_s)
        if not r:
            return b""
        try:
            data, self._peer = self._sock.recvfrom(_BUF)
        except (ConnectionRefusedError, BlockingIOError):
            return b""
        return data

    def send(self, data: bytes) -> None:
        if self._peer is None:
            return  # nobody has spoken yet: nowhere to send (heartbeats start once the GCS is heard)
        try:
            self._sock.sendto(data, self._peer)
        except ConnectionRefusedError:
            pass

    def close(self) -> None:
        self._sock.close()


class TcpClient:
    """`tcp:HOST:PORT`: connect (within `connect_timeout_s`); a closed or reset connection raises OSError."""

    datagrams = False

    def __init__(self, host: str, port: int, connect_timeout_s: float = 2.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(1.0)  # a send that cannot progress for a second counts as a broken link

    def recv(self, timeout_s: float) -> bytes:
        r, _, _ = select.select([self._sock], [], [], timeout_s)
        if not r:
            return b""
        data = self._sock.recv(_BUF)
        if not data:
            raise ConnectionResetError("the peer closed the TCP connection")
        return data

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close(self) -> None:
        self._sock.close()


class TcpServer:
    """`tcpin:HOST:PORT`: listen and serve one client at a time; a new client replaces a dropped one."""

    datagrams = False

    def __init__(self, host: str, port: int) -> None:
        family, addr = _resolve(host, port, socket.SOCK_STREAM)
        self._listen = socket.socket(family, socket.SOCK_STREAM)
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(addr)
        self._listen.listen(1)
        self._client: socket.socket | None = None

    def recv(self, timeout_s: float) -> bytes:
        watch = [self._listen] + ([self._client] if self._client is not None else [])
        r, _, _ = select.select(watch, [], [], timeout_s)
        if self._listen in r:
            conn, _ = self._listen.accept()
            conn.settimeout(1.0)
            if self._client is not None:
                self._client.close()
            self._client = conn
            return b""
        if self._client is not None and self._client in r:
            try:
                data = self._client.recv(_BUF)
            except OSError:
                data = b""
            if not data:
                self._client.close()
                self._client = None
            return data
        return b""

    def send(self, data: bytes) -> None:
        if self._client is None:
            return
        try:
            self._client.sendall(data)
        except OSError:
            self._client.close()
            self._client = None
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._listen.close()


class Serial:
    """A serial device (pyserial) at a baud rate; unplugging raises OSError (pyserial's SerialException is
    one)."""

    datagrams = False

    def __init__(self, device: str, baud: int) -> None:
        from edgedet._optional import require

        serial = require("serial", f"--mavlink {device}")
        try:
            self._port = serial.Serial(device, baudrate=baud, timeout=0, write_timeout=1.0)
        except serial.SerialException as exc:
            raise OSError(str(exc)) from exc
        self._serial = serial

    def recv(self, timeout_s: float) -> bytes:
        try:
            r, _, _ = select.select([self._port.fileno()], [], [], timeout_s)
            if not r:
                return b""
            data = self._port.read(self._port.in_waiting or 1)
        except self._serial.SerialException as exc:
            raise OSError(str(exc)) from exc
        return bytes(data)

    def send(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except self._serial.SerialException as exc:
            raise OSError(str(exc)) from exc

    def close(self) -> None:
        self._port.close()


def open_transport(address: MavlinkAddress) -> Transport:
    """Open the transport for `address`; raises OSError when it cannot be opened now."""
    if address.kind == "udpout":
        return UdpOut(address.host, address.port)
    if address.kind == "udpin":
        return UdpIn(address.host, address.port)
    if address.kind == "tcp":
        return TcpClient(address.host, address.port)
    if address.kind == "tcpin":
        return TcpServer(address.host, address.port)
    return Serial(address.host, address.port)


__all__ = ["Serial", "TcpClient", "TcpServer", "Transport", "UdpIn", "UdpOut", "open_transport"]
