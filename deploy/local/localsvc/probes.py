"""Readiness probes that speak each server's own protocol, and "who holds this port".

An open TCP port only says something is listening; these send the first request of the real
protocol and check the answer, so "ready" means a client would get through.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import pathlib
import socket
import struct

# One probe must not hang the caller: loopback answers in microseconds, a server that has
# accepted the connection but not finished booting may take a while, and we poll again anyway.
PROBE_TIMEOUT_S = 2.0

HOST = "127.0.0.1"


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        chunks += chunk
    return bytes(chunks)


def kafka_api_versions_request(correlation_id: int, client_id: str = "headwater-probe") -> bytes:
    """An ApiVersions v0 request (api key 18) with request header v1, size-prefixed."""
    client = client_id.encode()
    header = struct.pack(">hhih", 18, 0, correlation_id, len(client)) + client
    return struct.pack(">i", len(header)) + header


def parse_kafka_api_versions_response(payload: bytes, correlation_id: int) -> int:
    """Return the number of API keys the broker reports; raise ValueError if it is not an answer."""
    if len(payload) < 10:
        raise ValueError("short ApiVersions response")
    got_id: int
    error_code: int
    count: int
    got_id, error_code, count = struct.unpack(">ihi", payload[:10])
    if got_id != correlation_id:
        raise ValueError(f"correlation id {got_id} != {correlation_id}")
    if error_code != 0:
        raise ValueError(f"ApiVersions error code {error_code}")
    if count <= 0 or len(payload) < 10 + 6 * count:
        raise ValueError(f"ApiVersions reports {count} API keys")
    return count


def kafka_ready(port: int, host: str = HOST) -> bool:
    correlation_id = os.getpid() & 0x7FFFFFFF
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            sock.sendall(kafka_api_versions_request(correlation_id))
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if not 0 < size < 1 << 20:
                return False
            parse_kafka_api_versions_response(_recv_exact(sock, size), correlation_id)
            return True
    except (OSError, ValueError):
        return False


def mqtt_connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session and a 60 s keep-alive."""
    ident = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack(">H", len(ident)) + ident
    assert len(body) < 128, "one-byte remaining length is enough for a probe"
    return bytes([0x10, len(body)]) + body


def mqtt_ready(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            sock.sendall(mqtt_connect_packet(f"hw-probe-{os.getpid()}"))
            connack = _recv_exact(sock, 4)
            ok = connack[0] == 0x20 and connack[1] == 2 and connack[3] == 0
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs a clean close
            return ok
    except OSError:
        return False


AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def is_amqp_connection_start(frame_head: bytes) -> bool:
    """True if the first 11 bytes are a method frame on channel 0 carrying Connection.Start."""
    if len(frame_head) < 11:
        return False
    frame_type, channel, _size, class_id, method_id = struct.unpack(">BHIHH", frame_head[:11])
    return frame_type == 1 and channel == 0 and (class_id, method_id) == (10, 10)


def amqp_ready(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            sock.sendall(AMQP_HEADER)
            return is_amqp_connection_start(_recv_exact(sock, 11))
    except OSError:
        return False


def is_mysql_greeting(head: bytes) -> bool:
    """True if the first 5 bytes are a MySQL/MariaDB server's first packet (sequence 0): its
    greeting (protocol version 10) or an error packet (0xff), which it sends instead when no
    account matches the client's host; either way the server is up and answering."""
    if len(head) < 5:
        return False
    size = head[0] | head[1] << 8 | head[2] << 16
    return size > 0 and head[3] == 0 and head[4] in (10, 0xFF)


def mysql_ready(port: int, host: str = HOST) -> bool:
    """The server speaks first: its greeting (handshake v10) means it accepts clients."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            return is_mysql_greeting(_recv_exact(sock, 5))
    except OSError:
        return False


def redis_ready(port: int, host: str = HOST) -> bool:
    """A Redis server answers PING with +PONG (-LOADING while it replays its data: not yet)."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            sock.sendall(b"PING\r\n")
            return _recv_exact(sock, 7) == b"+PONG\r\n"
    except OSError:
        return False


def nats_ready(port: int, host: str = HOST) -> bool:
    """A NATS server greets every client with its INFO line."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            return _recv_exact(sock, 5) == b"INFO "
    except OSError:
        return False


def http_answers(port: int, host: str = HOST) -> bool:
    """True if an HTTP server answers on the port (SeaweedFS's S3 gateway, any status)."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return _recv_exact(sock, 5) == b"HTTP/"
    except OSError:
        return False


def ssh_ready(port: int, host: str = HOST) -> bool:
    """True if an SSH server sends its banner on the port."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            return _recv_exact(sock, 4) == b"SSH-"
    except OSError:
        return False


def tcp_answers(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if we could listen on host:port now.

    SO_REUSEADDR lets the bind succeed over TIME_WAIT leftovers of a server we just stopped,
    while on Linux it still fails if anything is listening on the port (on host or 0.0.0.0).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class Holder:
    """A process that listens on a port, as far as /proc lets us see it."""

    pid: int
    command: str


def _listening_inodes(port: int, proc: pathlib.Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(inode)
    return inodes


def port_holders(port: int, proc: pathlib.Path = pathlib.Path("/proc")) -> list[Holder]:
    """The processes listening on a TCP port (empty if none, or if we may not look)."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    holders: list[Holder] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in wanted:
                holders.append(Holder(int(entry.name), command_line(int(entry.name), proc)))
                break
    return holders


def command_line(pid: int, proc: pathlib.Path = pathlib.Path("/proc")) -> str:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
