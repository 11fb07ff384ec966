"""The fake's trade_updates websocket: Alpaca's trading stream, on the REST API's host:port.

What the protocol is modelled on ([docs] = alpacahq/alpaca-docs
content/api-references/trading-api/streaming.md, Alpaca's "Websocket Streaming" page;
[sdk] = alpaca-trade-api 3.2.0 alpaca_trade_api/stream.py, class TradingStream):
- The upgrade: GET /stream with the RFC 6455 opening handshake (Alpaca serves
  wss://paper-api.alpaca.markets/stream [docs]). The SDK turns the base URL's http into ws and
  appends "/stream/" [sdk], so /stream/ is served too. No extension is negotiated (the SDK offers
  permessage-deflate; a server may decline it).
- Every message the fake sends is one JSON object in one BINARY frame: "the trade_updates stream
  coming from wss://paper-api.alpaca.markets/stream uses binary frames" [docs]; the SDK decodes
  it with json.loads, which takes bytes [sdk]. Clients may send text or binary frames.
- {"action": "authenticate", "data": {"key_id", "secret_key"}} is answered {"stream":
  "authorization", "data": {"status": "authorized", "action": "authenticate"}} [docs]. Wrong
  keys, or keys of the other mode (FakeAlpaca.set_forbidden), get status "unauthorized" with
  "message": "access key verification failed" (the answer quoted in alpacahq/alpaca-ts#24). The
  connection stays open: a listen on a connection "not authorized yet" is answered [docs] with
  {"stream": "authorization", "data": {"status": "unauthorized", "action": "listen"}}, as
  alpacahq/alpaca-trade-api-python#48 also shows after a failed authenticate.
- {"action": "listen", "data": {"streams": [...]}} is answered {"stream": "listening", "data":
  {"streams": [...]}} listing the requested streams that exist (only "trade_updates"); the list
  replaces the previous one, [] stops the updates [docs].
- Trade updates: {"stream": "trade_updates", "data": {...}} [docs "Example"], the data built by
  broker.Broker (its docstring lists the events and their fields), sent to every authorised
  connection listening to trade_updates, in the order the engine made the changes. Nothing is
  replayed: an event made while a client is away (or while paused) is lost to it.
- Not sourced, the fake's choice: a message that is not JSON, not an object or has an unknown
  action is answered {"stream": "error", "data": {"message": ...}}; MessagePack (which Alpaca
  offers on request) is not spoken; auth by HTTP headers is not accepted.
- Pings get pongs; a client's close frame is echoed and the socket closed; FakeAlpaca.stop()
  sends close 1001 ("going away") and waits for the client's answer; drop() ends every
  connection with no close frame, as a network drop (clients see 1006).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from io import BufferedIOBase

from .model import JsonObject

PATHS = ("/stream", "/stream/")
STREAMS = ("trade_updates",)
HANDSHAKE_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 1 << 20
EVENT_LOG_LIMIT = 100_000  # long benchmark runs must not grow the log without bound
UNAUTHORIZED_MESSAGE = "access key verification failed"


@dataclass(frozen=True)
class StreamClients:
    """Connections now open (connected), of which authorised, of which listening to
    trade_updates; accepted counts every upgrade since the fake was created."""

    connected: int
    authorized: int
    listening: int
    accepted: int


@dataclass(frozen=True)
class StreamEvent:
    """One trade update the engine made: its data, and to how many connections it went
    (0: nobody was listening, the stream was paused, or every client was away)."""

    data: JsonObject
    delivered: int
    wall: float
    monotonic: float

    @property
    def event(self) -> str:
        return str(self.data["event"])

    @property
    def order_id(self) -> str:
        return str(self.data["order"]["id"])


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


# ----- RFC 6455 framing -----------------------------------------------------------------------


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + HANDSHAKE_GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final, unmasked frame (servers never mask)."""
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, size])
    elif size < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")
    return head + payload


def close_frame(code: int | None, reason: str = "") -> bytes:
    payload = b"" if code is None else code.to_bytes(2, "big") + reason.encode()
    return encode_frame(OP_CLOSE, payload)


def _read_exactly(rfile: BufferedIOBase, size: int) -> bytes:
    data = rfile.read(size) if size else b""
    if len(data) != size:
        raise EOFError("connection closed")
    return data


def read_frame(rfile: BufferedIOBase) -> tuple[bool, int, bytes]:
    """(fin, opcode, unmasked payload) of the next client frame."""
    first, second = _read_exactly(rfile, 2)
    fin, opcode = bool(first & 0x80), first & 0x0F
    if first & 0x70:
        raise ProtocolError(1002, "reserved bits set")
    if not second & 0x80:
        raise ProtocolError(1002, "client frames must be masked")
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(_read_exactly(rfile, 2), "big")
    elif size == 127:
        size = int.from_bytes(_read_exactly(rfile, 8), "big")
    if opcode >= 0x8 and (size > 125 or not fin):
        raise ProtocolError(1002, "invalid control frame")
    if size > MAX_MESSAGE:
        raise ProtocolError(1009, "message too big")
    mask = _read_exactly(rfile, 4)
    masked = _read_exactly(rfile, size)
    key = (mask * (size // 4 + 1))[:size]
    payload = (int.from_bytes(masked, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
    return fin, opcode, payload


# ----- one connection -------------------------------------------------------------------------


class _Connection:
    """A client's socket. Messages go out in order through a writer thread, each `latency`
    seconds after it was queued, so a slow client never blocks the engine."""

    def __init__(self, sock: socket.socket, rfile: BufferedIOBase, latency: Callable[[], float]):
        self.sock, self.rfile, self._latency = sock, rfile, latency
        self.authorized = False
        self.streams: tuple[str, ...] = ()
        self.closing = False  # a close frame is queued or sent: nothing may follow it
        self._outbox: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()
        self._send_lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="fake-alpaca-ws", daemon=True)

    @property
    def listening(self) -> bool:
        return self.authorized and "trade_updates" in self.streams

    def start(self) -> None:
        self._writer.start()

    def send_now(self, data: bytes) -> bool:
        try:
            with self._send_lock:
                self.sock.sendall(data)
            return True
        except OSError:
            return False

    def queue(self, data: bytes) -> None:
        if not self.closing:
            self._outbox.put((time.monotonic() + self._latency(), data))

    def queue_message(self, message: JsonObject) -> None:
        self.queue(encode_frame(OP_BINARY, json.dumps(message).encode()))

    def queue_close(self, code: int | None, reason: str = "") -> None:
        self.queue(close_frame(code, reason))
        self.closing = True

    def _write_loop(self) -> None:
        while (item := self._outbox.get()) is not None:
            due, data = item
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            if not self.send_now(data):
                return

    def finish(self, timeout: float) -> None:
        """Let the queued frames go out (a close frame last), then end the TCP connection."""
        self._outbox.put(None)
        if self._writer.is_alive():
            self._writer.join(timeout)
        self.abort()

    def abort(self) -> None:
        """End the TCP connection now, with no close frame: the reader sees EOF."""
        self.closing = True
        self._outbox.put(None)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


# ----- the endpoint ---------------------------------------------------------------------------


class TradeStream:
    """Every open connection, the pause switch and the event log; one condition guards them
    (taken after FakeAlpaca's lock when the engine publishes, never the other way round)."""

    def __init__(self, authorize: Callable[[object, object], bool], latency: Callable[[], float]):
        self._authorize = authorize
        self._latency = latency
        self._changed = threading.Condition()
        self._connections: set[_Connection] = set()
        self._accepted = 0
        self._paused = False
        self._closing = False
        self._unavailable = False  # new connections refused (503), open ones untouched
        self._events: deque[StreamEvent] = deque(maxlen=EVENT_LOG_LIMIT)

    @staticmethod
    def wants_upgrade(handler: BaseHTTPRequestHandler, path: str) -> bool:
        return (
            handler.command == "GET"
            and path in PATHS
            and handler.headers.get("Upgrade", "").lower() == "websocket"
        )

    # ----- steering and state ----------------------------------------------------------------

    def open(self) -> None:
        with self._changed:
            self._closing = False

    def clients(self) -> StreamClients:
        with self._changed:
            return self._count()

    def _count(self) -> StreamClients:
        open_ = [c for c in self._connections if not c.closing]
        return StreamClients(
            connected=len(open_),
            authorized=sum(c.authorized for c in open_),
            listening=sum(c.listening for c in open_),
            accepted=self._accepted,
        )

    def wait(self, until: Callable[[StreamClients], bool], timeout: float) -> StreamClients:
        with self._changed:
            if not self._changed.wait_for(lambda: until(self._count()), timeout):
                raise TimeoutError(f"stream clients still {self._count()} after {timeout}s")
            return self._count()

    def unavailable(self, refused: bool) -> None:
        with self._changed:
            self._unavailable = refused

    def pause(self, paused: bool) -> None:
        with self._changed:
            self._paused = paused

    def events(self) -> list[StreamEvent]:
        with self._changed:
            return list(self._events)

    def clear_events(self) -> None:
        with self._changed:
            self._events.clear()

    def drop(self) -> int:
        with self._changed:
            dropped = [c for c in self._connections if not c.closing]
            for connection in dropped:
                connection.abort()
            self._changed.notify_all()
        return len(dropped)

    def close_all(self, timeout: float) -> None:
        """Refuse new upgrades, send close 1001 to every client, wait for them to answer;
        whatever is still open after `timeout` is cut."""
        with self._changed:
            self._closing = True
            for connection in self._connections:
                if not connection.closing:
                    connection.queue_close(1001, "going away")
            self._changed.notify_all()
            self._changed.wait_for(lambda: not self._connections, timeout)
            for connection in self._connections:
                connection.abort()
            self._changed.wait_for(lambda: not self._connections, 1.0)

    # ----- events from the engine ------------------------------------------------------------

    def publish(self, data: JsonObject) -> None:
        with self._changed:
            targets = [] if self._paused else [c for c in self._connections if c.listening]
            if targets:
                frame = encode_frame(
                    OP_BINARY, json.dumps({"stream": "trade_updates", "data": data}).encode()
                )
                for connection in targets:
                    connection.queue(frame)
            self._events.append(StreamEvent(data, len(targets), time.time(), time.monotonic()))

    # ----- serving one connection (in its ThreadingHTTPServer thread) -------------------------

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Complete the handshake and answer the client until it leaves or is cut off."""
        key = handler.headers.get("Sec-WebSocket-Key", "")
        tokens = {t.strip().lower() for t in handler.headers.get("Connection", "").split(",")}
        if handler.headers.get("Sec-WebSocket-Version") != "13":
            self._refuse(handler, 426, "unsupported websocket version")
            return
        if not key or "upgrade" not in tokens:
            self._refuse(handler, 400, "bad websocket handshake")
            return
        connection = _Connection(handler.connection, handler.rfile, self._latency)
        with self._changed:
            refused = self._closing or self._unavailable
            if not refused:
                self._connections.add(connection)
                self._accepted += 1
                self._changed.notify_all()
        if refused:  # the fake is stopping, or the stream is made unavailable
            self._refuse(handler, 503, "service unavailable")
            return
        connection.send_now(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(key).encode()
            + b"\r\n\r\n"
        )
        connection.start()
        try:
            self._read_loop(connection)
        finally:
            connection.finish(timeout=self._latency() + 2.0)
            with self._changed:
                self._connections.discard(connection)
                self._changed.notify_all()

    @staticmethod
    def _refuse(handler: BaseHTTPRequestHandler, status: int, message: str) -> None:
        body = json.dumps({"code": status * 100000 + 10000, "message": message}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _read_loop(self, connection: _Connection) -> None:
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                fin, opcode, payload = read_frame(connection.rfile)
            except ProtocolError as error:
                connection.queue_close(error.code, error.reason)
                return
            except (OSError, EOFError, ValueError):
                return  # dropped, or the socket was shut down under the reader
            if opcode == OP_CLOSE:
                if not connection.closing:  # the client closes: echo its code [RFC 6455 5.5.1]
                    connection.queue_close(
                        int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    )
                return
            if opcode == OP_PING:
                if not connection.closing:
                    connection.send_now(encode_frame(OP_PONG, payload))
                continue
            if opcode == OP_PONG:
                continue
            if opcode not in (OP_TEXT, OP_BINARY, OP_CONTINUATION) or (
                (opcode == OP_CONTINUATION) != bool(parts)
            ):
                connection.queue_close(1002, "unexpected frame")
                return
            parts.append(payload)
            size += len(payload)
            if size > MAX_MESSAGE:
                connection.queue_close(1009, "message too big")
                return
            if fin:
                self._answer(connection, b"".join(parts))
                parts, size = [], 0

    def _answer(self, connection: _Connection, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._reply(connection, _error("invalid message: not a JSON object"))
            return
        action, data = message.get("action"), message.get("data")
        if action == "authenticate":
            self._authenticate(connection, data)
        elif action == "listen":
            self._listen(connection, data)
        else:
            self._reply(connection, _error(f"unknown action: {action!r}"))

    def _reply(self, connection: _Connection, message: JsonObject) -> None:
        with self._changed:
            connection.queue_message(message)

    def _authenticate(self, connection: _Connection, data: object) -> None:
        fields = data if isinstance(data, dict) else {}
        ok = self._authorize(fields.get("key_id"), fields.get("secret_key"))
        answer: JsonObject = {
            "status": "authorized" if ok else "unauthorized", "action": "authenticate"
        }
        if not ok:
            answer["message"] = UNAUTHORIZED_MESSAGE
        with self._changed:
            connection.authorized = ok
            if not ok:
                connection.streams = ()
            connection.queue_message({"stream": "authorization", "data": answer})
            self._changed.notify_all()

    def _listen(self, connection: _Connection, data: object) -> None:
        streams = data.get("streams") if isinstance(data, dict) else None
        if not isinstance(streams, list):
            self._reply(connection, _error("invalid listen message: data.streams must be a list"))
            return
        with self._changed:
            # The answer is queued under the same lock as the change, so every event published
            # after it follows it on the wire.
            if not connection.authorized:
                connection.queue_message(
                    {"stream": "authorization", "data": {"status": "unauthorized",
                                                         "action": "listen"}}
                )
                return
            connection.streams = tuple(dict.fromkeys(s for s in streams if s in STREAMS))
            connection.queue_message(
                {"stream": "listening", "data": {"streams": list(connection.streams)}}
            )
            self._changed.notify_all()


def _error(message: str) -> JsonObject:
    return {"stream": "error", "data": {"message": message}}
