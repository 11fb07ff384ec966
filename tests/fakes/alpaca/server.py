"""FakeAlpaca: a stateful local stand-in for Alpaca's Trading API (+ latest trades).

Tests drive it over real HTTP (the SDK or requests) and steer it through methods:
prices, market open/closed, the trading day's close, partial fills, expiries,
pending cancels, fault injection, answer rewrites, close failures. One lock guards
all state, so the ThreadingHTTPServer can serve concurrent clients. Every exchange
is logged (never the secret header) so tests can count calls and validate them
against the OpenAPI spec (tests/adapters/spec_check.py).

The same port serves the trade_updates websocket at /stream (stream.py), fed by the
order engine; its connections and events are kept apart from the REST request log.

What each behaviour is modelled on is written in broker.py's docstring.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from .broker import Broker
from .clock_steering import ClockSteering
from .model import ApiError, JsonObject, Query, default_code
from .routes import dispatch
from .stream import StreamClients, StreamEvent, TradeStream

DEFAULT_MESSAGES = {
    400: "bad request",
    401: "request is not authorized",
    403: "forbidden",
    404: "not found",
    422: "unprocessable entity",
    429: "rate limit exceeded",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
RATE_LIMIT = 200

# What the steering methods take as a price or a quantity: Decimal(str(value)) of it.
Number: TypeAlias = Decimal | int | float | str


@dataclass
class Exchange:
    """One logged request/response pair (request headers are never kept)."""

    method: str
    path: str
    query: Query
    json: Any  # the parsed body, the text of one that is not JSON, or None
    status: int | None  # None: the request was left hanging by an injected fault
    response_text: str
    monotonic: float
    wall: float
    answered: float  # time.monotonic() once the answer was ready to send (or the hang began)

    @property
    def response_json(self) -> Any:
        try:
            return json.loads(self.response_text) if self.response_text else None
        except ValueError:
            return None


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str]
    status: int
    body: object
    times: int | None
    delay: float
    hang: bool
    raw: bytes | None
    apply: bool
    drip: float = 0.0  # seconds between the answer's bytes (headers and body)
    headers: dict[str, str] | None = None  # sent as well, e.g. a Content-Encoding
    answer: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, "*", method)) and bool(self.path.search(path))


@dataclass
class Rewrite:
    method: str | None
    path: re.Pattern[str]
    fn: Callable[[Any], object]
    times: int | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, "*", method)) and bool(self.path.search(path))


def _decimal(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent clients must not wait for SYN retries


class FakeAlpaca(ClockSteering):
    def __init__(
        self,
        api_key: str = "PKTESTKEY0000000000",
        secret_key: str = "testsecret0000000000000000000000000000000",
        latency: float = 0.0,
    ):
        self.api_key = api_key
        self.secret_key = secret_key
        self.latency = latency
        self._lock = threading.RLock()
        self._broker = Broker()
        self._faults: list[Fault] = []
        self._rewrites: list[Rewrite] = []
        self._log: list[Exchange] = []
        self._forbidden = False
        self._stream_keys_refused = False
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._scheme = "http"
        self._thread: threading.Thread | None = None
        self._stream = TradeStream(self._stream_keys_valid, lambda: self.latency)
        self._broker.on_trade_update = self._stream.publish

    # ----- lifecycle ------------------------------------------------------------------

    def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> FakeAlpaca:
        """Serve on 127.0.0.1 over http, or over https with `tls` (a server context)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes
            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = lambda self: fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._stopping.clear()
        self._stream.open()
        self._server = _Server(("127.0.0.1", port), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-alpaca", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL without /v2 (trading and market-data paths share it)."""
        return f"{self._scheme}://127.0.0.1:{self._port}"

    @property
    def stream_url(self) -> str:
        """The trade_updates websocket; alpaca-trade-api's Stream derives it (with a trailing
        slash, also served) from base_url=fake.url."""
        return f"ws://127.0.0.1:{self._port}/stream"

    @property
    def _port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake is not running: start() it first")
        return self._server.server_port

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._stopping.set()  # releases hanging requests
        self._server.shutdown()
        self._stream.close_all(timeout=2.0)  # close 1001 to each stream client
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeAlpaca:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- steering the market and the account -------------------------------------------

    def set_price(self, symbol: str, price: Number) -> None:
        with self._lock:
            self._broker.set_price(symbol, _decimal(price))

    def set_market_open(self, is_open: bool) -> None:
        with self._lock:
            self._broker.market_open = is_open
            self._broker.run_engine()

    def end_trading_day(self) -> list[str]:
        """The market closes: every open time_in_force=day order expires (entries, bracket
        legs, OCO orders; expired_at set), gtc orders stay, orders queued while the market
        was already closed wait for the next open. last_equity and each position's lastday
        price become the closing values, so the day's P&L restarts at 0. Answers the ids
        of the orders that expired, oldest first."""
        with self._lock:
            return self._broker.end_day()

    def start_trading_day(self) -> None:
        """The market opens again: queued orders go "new" and the engine fills what it can."""
        self.set_market_open(True)

    def set_cancels_pending(self, enabled: bool = True) -> None:
        """From now on a cancel (DELETE /v2/orders/{id}, DELETE /v2/orders, the cancel part
        of DELETE /v2/positions?cancel_orders=true) leaves each routed order
        "pending_cancel": it can still fill and its shares stay held until
        release_cancels(). Held legs and "accepted" orders still cancel at once."""
        with self._lock:
            self._broker.cancels_pending = enabled

    def release_cancels(self) -> list[str]:
        """Every pending_cancel order becomes canceled (canceled_at set); answers their ids."""
        with self._lock:
            return self._broker.release_cancels()

    def expire(self, order_id: str) -> None:
        """The order expires now, e.g. the unfilled rest of a partly filled bracket entry
        (partial_fill first); the rest of its group (bracket legs, OCO sibling) is canceled."""
        with self._lock:
            self._broker.expire(order_id)

    def hold_status(self, order_id: str, status: str) -> None:
        """Leave an open order in a passing status the engine never makes by itself:
        "pending_new" (routed, not yet acknowledged by the venue) or "pending_replace" (a
        replace in flight); e.g. to check what Alpaca refuses meanwhile (the spec: no replace
        of an accepted, pending_new, pending_cancel or pending_replace order)."""
        if status not in ("pending_new", "pending_replace"):
            raise ValueError(f"hold_status takes pending_new or pending_replace, got {status!r}")
        with self._lock:
            order = self._broker.get_order(order_id)
            if not order.is_open or order.status == "held":
                raise ValueError(f"order {order_id} is {order.status}: it cannot be {status}")
            order.status = status

    def set_last_equity(self, value: Number) -> None:
        with self._lock:
            self._broker.last_equity = _decimal(value)

    def set_buying_power(self, value: Number | None) -> None:
        """Pin buying_power to a value; None goes back to the computed 2x-equity figure."""
        with self._lock:
            self._broker.buying_power_override = None if value is None else _decimal(value)

    def set_forbidden(self, forbidden: bool) -> None:
        """Answer every authorised request 403, like keys of the wrong (paper/live) mode."""
        with self._lock:
            self._forbidden = forbidden

    @property
    def auto_fill(self) -> bool:
        return self._broker.auto_fill

    @auto_fill.setter
    def auto_fill(self, enabled: bool) -> None:
        """False leaves market orders open until fill()/partial_fill() or auto_fill=True."""
        with self._lock:
            self._broker.auto_fill = enabled
            self._broker.run_engine()

    def partial_fill(self, order_id: str, qty: Number, price: Number | None = None) -> None:
        with self._lock:
            self._broker.fill(order_id, _decimal(qty), None if price is None else _decimal(price))

    def fill(self, order_id: str, price: Number | None = None) -> None:
        """Fill what remains of an order (default price: its limit, else the current price)."""
        with self._lock:
            self._broker.fill(order_id, None, None if price is None else _decimal(price))

    def add_position(self, symbol: str, qty: Number, avg_price: Number) -> None:
        """A position opened outside the fake (no order, cash unchanged); qty < 0 is short."""
        with self._lock:
            self._broker.add_position(symbol, _decimal(qty), _decimal(avg_price))

    def fail_close(
        self, symbol: str, status: int | None = 403, message: str = "position close rejected"
    ) -> None:
        """Make closing `symbol` fail (single close and close-all); status None undoes it."""
        with self._lock:
            if status is None:
                self._broker.fail_close.pop(symbol.upper(), None)
            else:
                self._broker.fail_close[symbol.upper()] = (status, message)

    def reset(self) -> None:
        """Back to a fresh account: no orders, positions, prices, faults or log."""
        with self._lock:
            self._broker.reset()
            self._faults.clear()
            self._rewrites.clear()
            self._log.clear()
            self._forbidden = self._stream_keys_refused = False
            self._stream.pause(False)
            self._stream.unavailable(False)
            self._stream.clear_events()

    # ----- the trade_updates stream --------------------------------------------------------

    def stream_clients(self) -> StreamClients:
        """How many stream connections are open, authorised, listening to trade_updates, and
        how many upgrades were ever accepted (a client that reconnected counts twice)."""
        return self._stream.clients()

    def wait_for_stream(
        self, until: Callable[[StreamClients], bool], timeout: float = 5.0
    ) -> StreamClients:
        """Block until until(stream_clients()) holds, e.g. lambda c: c.listening == 1;
        TimeoutError after `timeout` seconds."""
        return self._stream.wait(until, timeout)

    def drop_stream_connections(self) -> int:
        """Cut every stream connection as a network drop would (no close frame: clients see
        1006); answers how many. Clients may reconnect at once; events made while a client
        is away are lost to it, as on Alpaca."""
        return self._stream.drop()

    def refuse_stream_connections(self, refused: bool = True) -> None:
        """New stream connections are answered 503 (the stream's gateway down) until called
        with False; with drop_stream_connections(), the stream stays down."""
        self._stream.unavailable(refused)

    def pause_stream(self) -> None:
        """From now on trade updates are made and logged but sent to nobody (a gap that is
        never replayed); connections stay open and auth/listen are still answered."""
        self._stream.pause(True)

    def resume_stream(self) -> None:
        """Trade updates made from now on are sent again (the gap stays lost)."""
        self._stream.pause(False)

    def refuse_stream_keys(self, refused: bool = True) -> None:
        """The stream answers authenticate "unauthorized" while REST still takes the keys (not
        an Alpaca behaviour on record: it keeps a test of refused stream keys to the stream)."""
        with self._lock:
            self._stream_keys_refused = refused

    def send_trade_update(self, data: JsonObject) -> None:
        """Send `data` to every listening client as a trade update's data, as if the engine had
        made it (e.g. one a client cannot read); logged in stream_events like the others."""
        self._stream.publish(data)

    @property
    def stream_events(self) -> list[StreamEvent]:
        """Every trade update the engine made since start (or reset), oldest first, each with
        how many connections it was sent to."""
        return self._stream.events()

    def _stream_keys_valid(self, key_id: object, secret_key: object) -> bool:
        with self._lock:
            return (
                key_id == self.api_key and secret_key == self.secret_key
                and not (self._forbidden or self._stream_keys_refused)
            )

    # ----- state for assertions ---------------------------------------------------------

    def account(self) -> JsonObject:
        with self._lock:
            return self._broker.account()

    def orders_list(self, nested: bool = False) -> list[JsonObject]:
        """Every order, oldest first (legs separate unless nested)."""
        with self._lock:
            return self._broker.list_orders(
                status="all", limit=10**9, direction="asc", nested=nested
            )

    def open_orders(self, nested: bool = False) -> list[JsonObject]:
        with self._lock:
            return self._broker.list_orders(
                status="open", limit=10**9, direction="asc", nested=nested
            )

    def positions_list(self) -> list[JsonObject]:
        with self._lock:
            return self._broker.positions_list()

    def order(self, order_id: str, nested: bool = False) -> JsonObject:
        """One order as GET /v2/orders/{id} would answer it."""
        with self._lock:
            return self._broker.order_dict(self._broker.get_order(order_id), nested)

    # ----- faults and the request log -----------------------------------------------------

    def inject(
        self,
        method: str | None,
        path_regex: str,
        status: int = 500,
        body: object = None,
        times: int | None = 1,
        delay: float = 0.0,
        hang: bool = False,
        raw: bytes | None = None,
        apply: bool = False,
        drip: float = 0.0,
        headers: dict[str, str] | None = None,
        answer: bool = False,
    ) -> None:
        """The next `times` (None: all) matching requests get this answer instead.

        drip > 0 sends the answer a byte at a time, `drip` seconds apart (a stalling proxy);
        `headers` are added to it (e.g. {"Content-Encoding": "gzip"} with a `raw` body).

        apply=True processes the request first (state changes) and then answers with
        the fault (or hangs), as when a response is lost after the broker acted on it.
        answer=True: only the delay applies, then the request is processed and answered as
        usual (a slow broker: an order that reaches the book `delay` seconds after it is sent).
        """
        with self._lock:
            self._faults.append(
                Fault(
                    method and method.upper(),
                    re.compile(path_regex),
                    status,
                    body,
                    times,
                    delay,
                    hang,
                    raw,
                    apply,
                    drip,
                    headers,
                    answer,
                )
            )

    def rewrite(
        self,
        method: str | None,
        path_regex: str,
        fn: Callable[[Any], object],
        times: int | None = None,
    ) -> None:
        """Edit what the fake answers: for the next `times` (None: all) matching requests
        the fake acts as usual, then answers fn(payload) instead of payload (the parsed JSON
        it would send, a deep copy; None for an empty body). Matching rewrites chain in the
        order they were added. Not applied when an inject()ed fault answers instead.
        E.g. fake.rewrite("GET", "^/v2/account$", lambda a: {**a, "equity": "NaN"})."""
        with self._lock:
            self._rewrites.append(
                Rewrite(method and method.upper(), re.compile(path_regex), fn, times)
            )

    def ignore_paging(self, enabled: bool = True) -> None:
        """GET /v2/orders ignores before_order_id / after_order_id, as a broken proxy that
        strips them would: a client paging back gets the newest page again and again."""
        with self._lock:
            self._broker.ignore_paging = enabled

    def clear_faults(self) -> None:
        """Drop every injected fault and every rewrite."""
        with self._lock:
            self._faults.clear()
            self._rewrites.clear()

    @property
    def requests(self) -> list[Exchange]:
        with self._lock:
            return list(self._log)

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        )

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ----- request handling --------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _take_rewrites(self, method: str, path: str) -> list[Rewrite]:
        with self._lock:
            taken = [r for r in self._rewrites if r.matches(method, path)]
            for rewrite in taken:
                if rewrite.times is not None:
                    rewrite.times -= 1
                    if rewrite.times <= 0:
                        self._rewrites.remove(rewrite)
            return taken

    def _rewritten(
        self, method: str, path: str, status: int, payload: object
    ) -> tuple[int, object]:
        for rewrite in self._take_rewrites(method, path):
            try:
                payload = rewrite.fn(copy.deepcopy(payload))
            except Exception as exc:  # a bug in the test's fn: answer loudly
                traceback.print_exc()
                return 500, {"code": 50010000, "message": f"fake_alpaca rewrite error: {exc!r}"}
        return status, payload

    @staticmethod
    def _delayed(fault: Fault | None) -> Fault | None:
        """Wait out the fault's delay; None when it then answers as usual (answer=True)."""
        if fault and fault.delay:
            time.sleep(fault.delay)
        return None if fault is None or fault.answer else fault

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        started, wall = time.monotonic(), time.time()
        method = handler.command
        parts = urlsplit(handler.path)
        path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        if self._stream.wants_upgrade(handler, path):
            self._upgrade(handler, path)
            return
        raw_body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        try:
            logged_json = json.loads(raw_body) if raw_body else None
        except ValueError:
            logged_json = raw_body.decode("utf-8", "replace")

        def record(status: int | None, text: str) -> None:
            with self._lock:
                self._log.append(
                    Exchange(method, path, query, logged_json, status, text, started, wall,
                             time.monotonic())
                )

        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(method, path)
        fault = self._delayed(fault)
        if not fault or fault.apply:
            status, payload = self._answer(handler, method, path, query, raw_body)
        if not fault:
            status, payload = self._rewritten(method, path, status, payload)
        if fault and fault.hang:
            record(None, "")
            self._stopping.wait()
            handler.close_connection = True
            return
        if fault:
            status = fault.status
            payload = (
                fault.body
                if fault.body is not None
                else {
                    "code": default_code(status),
                    "message": DEFAULT_MESSAGES.get(status, "error"),
                }
            )
        data = b"" if payload is None else json.dumps(payload).encode()
        if fault and fault.raw is not None:
            data = fault.raw
        record(status, data.decode("utf-8", "replace"))
        if fault and (fault.drip or fault.headers):
            self._send_shaped(handler, status, data, fault)
            return
        self._send(handler, status, data)

    def _send_shaped(self, handler: BaseHTTPRequestHandler, status: int, data: bytes,
                     fault: Fault) -> None:
        """An answer with extra headers, or dripped a byte at a time until the client leaves
        or the fake stops."""
        head = [f"HTTP/1.1 {status} {DEFAULT_MESSAGES.get(status, 'OK')}",
                "Content-Type: application/json", f"Content-Length: {len(data)}",
                *(f"{k}: {v}" for k, v in (fault.headers or {}).items())]
        answer = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        handler.close_connection = True
        try:
            if not fault.drip:
                handler.wfile.write(answer)
                return
            for i in range(len(answer)):
                if self._stopping.wait(fault.drip):
                    return
                handler.wfile.write(answer[i:i + 1])
                handler.wfile.flush()
        except OSError:  # the client gave up: what a drip is for
            return

    def _upgrade(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        """A websocket upgrade: held for the connection's life, never in the request log.
        An inject()ed fault matching GET /stream refuses it (status and body; delay and hang
        apply; raw and apply do not), e.g. to keep a reconnecting client out."""
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault("GET", path)
        if fault is None:
            self._stream.serve(handler)
        else:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.hang:
                self._stopping.wait()
            else:
                body = fault.body if fault.body is not None else {
                    "code": default_code(fault.status),
                    "message": DEFAULT_MESSAGES.get(fault.status, "error"),
                }
                self._send(handler, fault.status, json.dumps(body).encode())
        handler.close_connection = True

    def _answer(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, query: Query,
        raw_body: bytes,
    ) -> tuple[int, object]:
        if (
            handler.headers.get("APCA-API-KEY-ID") != self.api_key
            or handler.headers.get("APCA-API-SECRET-KEY") != self.secret_key
        ):
            return 401, {"code": 40110000, "message": "request is not authorized"}
        try:
            body = json.loads(raw_body, parse_float=Decimal) if raw_body else None
        except ValueError:
            return 400, ApiError(400, "request body format is invalid").body
        try:
            with self._lock:
                if self._forbidden:
                    return 403, {"code": 40310000, "message": "forbidden"}
                return dispatch(self._broker, method, path, query, body)
        except Exception as exc:  # a bug in the fake: answer loudly, don't drop the connection
            traceback.print_exc()
            return 500, {"code": 50010000, "message": f"fake_alpaca internal error: {exc!r}"}

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        handler.send_response(status)
        handler.send_header("X-RateLimit-Limit", str(RATE_LIMIT))
        handler.send_header("X-RateLimit-Remaining", "0" if status == 429 else str(RATE_LIMIT - 1))
        handler.send_header("X-RateLimit-Reset", str(int(time.time()) + 60))
        if status != 204:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if status != 204:
            handler.wfile.write(data)
