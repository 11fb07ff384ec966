"""FakeAlpaca: a stateful local stand-in for Alpaca's Trading API (+ latest trades).

Tests drive it over real HTTP (the SDK or requests) and steer it through methods:
prices, market open/closed, partial fills, fault injection, close failures. One
lock guards all state, so the ThreadingHTTPServer can serve concurrent clients.
Every exchange is logged (never the secret header) so tests can count calls and
validate them against the OpenAPI spec (tests/spec_check.py).
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .broker import Broker
from .model import ApiError, default_code
from .routes import dispatch

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


@dataclass
class Exchange:
    """One logged request/response pair (request headers are never kept)."""

    method: str
    path: str
    query: dict
    json: object
    status: int | None  # None: the request was left hanging by an injected fault
    response_text: str
    monotonic: float
    wall: float
    answered: float  # time.monotonic() once the answer was ready to send (or the hang began)

    @property
    def response_json(self) -> object:
        try:
            return json.loads(self.response_text) if self.response_text else None
        except ValueError:
            return None


@dataclass
class Fault:
    method: str | None
    path: re.Pattern
    status: int
    body: object
    times: int | None
    delay: float
    hang: bool
    raw: bytes | None
    apply: bool

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, "*", method)) and bool(self.path.search(path))


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent clients must not wait for SYN retries


class FakeAlpaca:
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
        self._log: list[Exchange] = []
        self._forbidden = False
        self._ignore_paging = False
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle ------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeAlpaca:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes
            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = lambda self: fake._handle(self)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self._stopping.clear()
        self._server = _Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-alpaca", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL without /v2 (trading and market-data paths share it)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # releases hanging requests
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeAlpaca:
        return self if self._server else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----- steering the market and the account -------------------------------------------

    def set_price(self, symbol: str, price) -> None:
        with self._lock:
            self._broker.set_price(symbol, _decimal(price))

    def set_market_open(self, is_open: bool) -> None:
        with self._lock:
            self._broker.market_open = is_open
            self._broker.run_engine()

    def set_last_equity(self, value) -> None:
        with self._lock:
            self._broker.last_equity = _decimal(value)

    def set_buying_power(self, value) -> None:
        """Pin buying_power to a value; None goes back to the computed 2x-equity figure."""
        with self._lock:
            self._broker.buying_power_override = None if value is None else _decimal(value)

    def ignore_paging(self, ignore: bool = True) -> None:
        """Answer GET /v2/orders as if before_order_id / after_order_id were not sent (a broker
        or proxy that drops them: the same page comes back whatever the cursor)."""
        with self._lock:
            self._ignore_paging = ignore

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

    def partial_fill(self, order_id: str, qty, price=None) -> None:
        with self._lock:
            self._broker.fill(order_id, _decimal(qty), None if price is None else _decimal(price))

    def fill(self, order_id: str, price=None) -> None:
        """Fill what remains of an order (default price: its limit, else the current price)."""
        with self._lock:
            self._broker.fill(order_id, None, None if price is None else _decimal(price))

    def add_position(self, symbol: str, qty, avg_price) -> None:
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
            self._log.clear()
            self._forbidden = False
            self._ignore_paging = False

    # ----- state for assertions ---------------------------------------------------------

    def account(self) -> dict:
        with self._lock:
            return self._broker.account()

    def orders_list(self, nested: bool = False) -> list[dict]:
        """Every order, oldest first (legs separate unless nested)."""
        with self._lock:
            return self._broker.list_orders(
                status="all", limit=10**9, direction="asc", nested=nested
            )

    def open_orders(self, nested: bool = False) -> list[dict]:
        with self._lock:
            return self._broker.list_orders(
                status="open", limit=10**9, direction="asc", nested=nested
            )

    def positions_list(self) -> list[dict]:
        with self._lock:
            return self._broker.positions_list()

    # ----- faults and the request log -----------------------------------------------------

    def inject(
        self,
        method: str | None,
        path_regex: str,
        status: int = 500,
        body=None,
        times: int | None = 1,
        delay: float = 0.0,
        hang: bool = False,
        raw: bytes | None = None,
        apply: bool = False,
    ) -> None:
        """The next `times` (None: all) matching requests get this answer instead.

        apply=True processes the request first (state changes) and then answers with
        the fault (or hangs), as when a response is lost after the broker acted on it.
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
                )
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

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

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        started, wall = time.monotonic(), time.time()
        method = handler.command
        parts = urlsplit(handler.path)
        path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
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
        if fault and fault.delay:
            time.sleep(fault.delay)
        if not fault or fault.apply:
            status, payload = self._answer(handler, method, path, query, raw_body)
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
        self._send(handler, status, data)

    def _answer(
        self, handler, method: str, path: str, query: dict, raw_body: bytes
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
                if self._ignore_paging and (method, path.rstrip("/")) == ("GET", "/v2/orders"):
                    query = {k: v for k, v in query.items()
                             if k not in ("before_order_id", "after_order_id")}
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
