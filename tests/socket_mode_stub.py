"""A local stand-in for Slack's Socket Mode WebSocket endpoint (the URL ``apps.connections.open`` hands out).

Why: ``pcp serve`` with ``SLACK_APP_TOKEN`` runs slack_sdk's builtin ``SocketModeClient``; testing that path end to
end needs a real WebSocket peer speaking Slack's envelope protocol (``hello``, envelopes, acks), with nothing
patched. Standard library only: a minimal RFC 6455 server (Upgrade handshake, masked client frames, unmasked server
frames, ping/pong, close). Usage: ``with SocketModeStub() as sm: slack.socket_mode_url = sm.url``; then
``sm.wait_connected()``, ``eid = sm.send_envelope("slash_commands", payload)``, ``sm.wait_ack(eid)``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import threading
import uuid
from typing import Any

Json = dict[str, Any]
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
HELLO: Json = {
    "type": "hello",
    "num_connections": 1,
    "debug_info": {"host": "applink-pcp-stub", "build_number": 1, "approximate_connection_time": 18060},
    "connection_info": {"app_id": "A0PCP"},
}


def _frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame: servers never mask (RFC 6455 §5.1)."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


class _Conn:
    """One client connection: buffered reads so the handshake never swallows the first frame."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer, self.send_lock, self.closed = sock, b"", threading.Lock(), False

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("client hung up")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_until(self, marker: bytes, limit: int = 65536) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk or len(self.buffer) > limit:
                raise ConnectionError("no complete HTTP request")
            self.buffer += chunk
        data, _, self.buffer = self.buffer.partition(marker)
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """A whole message: (opcode, unmasked payload), continuation frames joined."""
        opcode, payload, fin = None, b"", False
        while not fin:
            b1, b2 = self.read(2)
            size = b2 & 0x7F
            if size >= 126:
                (size,) = struct.unpack("!H" if size == 126 else "!Q", self.read(2 if size == 126 else 8))
            mask = self.read(4) if b2 & 0x80 else b"\0\0\0\0"
            data = self.read(size)
            payload += bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))
            opcode, fin = opcode if opcode is not None else b1 & 0x0F, bool(b1 & 0x80)
        return opcode, payload

    def send(self, opcode: int, payload: bytes) -> None:
        with self.send_lock:
            if not self.closed:
                self.sock.sendall(_frame(opcode, payload))

    def close(self, code: int | None = None) -> None:
        """Send a close frame (when ``code`` is given), then drop the socket; safe to call twice."""
        with contextlib.suppress(OSError):
            if code is not None:
                self.send(CLOSE, struct.pack("!H", code))
        with self.send_lock:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()


class SocketModeStub:
    """Slack's Socket Mode server on 127.0.0.1 (ephemeral port): one thread accepts, one per connection reads."""

    def __init__(self) -> None:
        self.received: list[Json] = []  # every JSON text message from clients (acks), in order
        self.paths: list[str] = []  # request path (with the ticket query) of each handshake
        self.pings = 0  # pings answered; the client pings right after connecting and every ping_interval
        self._conns: list[_Conn] = []
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()  # guards the state above; notified on every change
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    def start(self) -> SocketModeStub:
        if self._listener is None:
            self._listener = socket.create_server(("127.0.0.1", 0))
            self._acceptor = threading.Thread(target=self._accept_loop, name="socket-mode-stub", daemon=True)
            self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close every connection with 1001 (going away), stop accepting and join all threads."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)  # first, so no connection is added after the snapshot below
        with self._cond:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            conn.close(1001)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> SocketModeStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """A ``ws://`` URL shaped like Slack's ``wss://wss-primary.slack.com/link/?ticket=...``."""
        if self._listener is None:
            raise RuntimeError("SocketModeStub is not started")
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket=pcp-test-ticket&app_id=A0PCP"

    def wait_connected(self, timeout: float = 10.0, count: int = 1) -> None:
        """Block until ``count`` clients completed the handshake and were sent ``hello``."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.paths) >= count, timeout):
                got = len(self.paths)
                raise AssertionError(f"expected {count} Socket Mode connection(s) within {timeout}s, got {got}")

    def send_envelope(self, type_: str, payload: Json, *, accepts_response_payload: bool = True) -> str:
        """Push one envelope (``slash_commands``, ``interactive``, ``events_api``) to the newest live connection."""
        envelope_id = str(uuid.uuid4())
        message = {"envelope_id": envelope_id, "type": type_, "payload": payload, "retry_attempt": 0}
        message |= {"retry_reason": "", "accepts_response_payload": accepts_response_payload}
        with self._cond:
            live = [conn for conn in self._conns if not conn.closed]
        if not live:
            raise RuntimeError("no Socket Mode client is connected")
        live[-1].send(TEXT, json.dumps(message).encode())
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 3.0) -> Json:
        """The client's ack for ``envelope_id`` (``{"envelope_id": ...}``, maybe with ``payload``), once it arrived."""

        def ack() -> Json | None:
            return next((m for m in self.received if m.get("envelope_id") == envelope_id), None)

        with self._cond:
            if not self._cond.wait_for(lambda: ack() is not None, timeout):
                raise AssertionError(f"no ack for envelope {envelope_id} within {timeout}s; received: {self.received}")
            return ack()  # type: ignore[return-value]

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # stop() closed the listener
            conn = _Conn(sock)
            thread = threading.Thread(target=self._serve, args=(conn,), name="socket-mode-stub-conn", daemon=True)
            with self._cond:
                self._conns.append(conn)
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, conn: _Conn) -> None:
        try:
            if self._handshake(conn):
                conn.send(TEXT, json.dumps(HELLO).encode())
                with self._cond:
                    self._cond.notify_all()
                self._read_loop(conn)
        except (ConnectionError, OSError, ValueError):
            pass  # the client hung up (or the process was killed): nothing to report
        finally:
            conn.close()
            with self._cond:
                self._cond.notify_all()

    def _handshake(self, conn: _Conn) -> bool:
        """Answer the HTTP Upgrade with 101 and the Sec-WebSocket-Accept the client verifies; 400 otherwise."""
        request_line, *lines = conn.read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        key = headers.get("sec-websocket-key")
        if not key or headers.get("upgrade", "").lower() != "websocket" or not request_line.startswith("GET "):
            conn.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        conn.sock.sendall(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        with self._cond:
            self.paths.append(request_line.split(" ")[1])
        return True

    def _read_loop(self, conn: _Conn) -> None:
        while True:
            opcode, payload = conn.read_frame()
            if opcode == PING:
                conn.send(PONG, payload)
                with self._cond:
                    self.pings += 1
            elif opcode == CLOSE:
                conn.close(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000)  # echo, then hang up
                return
            elif opcode == TEXT:
                text = payload.decode("utf-8", "replace")
                try:
                    message = json.loads(text)
                except ValueError:
                    message = None
                with self._cond:
                    self.received.append(message if isinstance(message, dict) else {"raw": text})
                    self._cond.notify_all()
