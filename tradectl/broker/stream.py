"""Alpaca's trade-updates stream for `watch`: alpaca-trade-api's Stream in a background thread.

The only module that imports alpaca_trade_api, and only `watch` imports it, when the stream is on:
the SDK brings pandas, numpy and aiohttp (about 0.4 s), which the REST commands never pay. Each
update is read by broker.wire's strict parser into an Order and queued; the watch loop applies
it on its own thread. An update tradectl cannot read is dropped and counted, never acted on.

What the SDK leaves to its caller: after any failure it connects again 10 ms later, forever, and
after refused keys it leaves the connection open (a socket a hundredth of a second). So each
connection is one session of a fresh Stream, ended at its first failure, and tradectl waits before
the next (doubling, capped; far longer after refused keys). The SDK reports a failure only in its
log; the authorization and listening answers are read off the connection itself, by a websockets
protocol subclass passed through the SDK's documented `websocket_params`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections import deque
from typing import Any

from alpaca_trade_api.common import URL
from alpaca_trade_api.stream import Stream
from websockets.legacy.client import WebSocketClientProtocol  # the SDK's: websockets>=9,<11

from tradectl.broker import Order, StreamState, StreamStatus
from tradectl.broker.wire import parse_trade_update
from tradectl.errors import BrokerProtocolError

SDK_LOGGER = "alpaca_trade_api.stream"
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0
# Refused keys do not fix themselves: try again now and then, so a key rotated meanwhile is
# picked up, without knocking on Alpaca's door every second.
UNAUTHORIZED_RETRY_SECONDS = 60.0
MAX_UNAUTHORIZED_RETRY_SECONDS = 600.0
STOP_SECONDS = 3.0
CLOSE_SECONDS = 1.0
MAX_QUEUED = 10_000  # the loop is busy (a slow database): older updates go, the tick reconciles
# Passed to websockets through the SDK. Its own defaults wait 180 s for a pong: a connection
# that died silently (no FIN, no RST) is found out within 30 s here.
WEBSOCKET_PARAMS: dict[str, Any] = {
    "ping_interval": 10, "ping_timeout": 20, "open_timeout": 10,
    "close_timeout": CLOSE_SECONDS, "max_queue": 1024,
}


class TradeUpdateStream:
    """The trading stream, connected in a thread of its own: `take()` hands over the orders
    as updated, `status()` says whether it is connected. Start it, then stop it (or use it as
    a context manager); stopping returns within STOP_SECONDS."""

    def __init__(self, key_id: str, secret_key: str, base_url: str, *,
                 first_retry: float = FIRST_RETRY_SECONDS, max_retry: float = MAX_RETRY_SECONDS,
                 unauthorized_retry: float = UNAUTHORIZED_RETRY_SECONDS) -> None:
        self._key_id, self._secret_key, self._base_url = key_id, secret_key, base_url
        self._first_retry, self._max_retry = first_retry, max_retry
        self._unauthorized_retry = unauthorized_retry
        self._changed = threading.Condition()
        self._orders: deque[Order] = deque()
        self._status = StreamStatus("off")
        self._version = self._seen = 0  # status changes made / handed over by take()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: _Session | None = None
        self._failures = _FailureLog(self)

    def __enter__(self) -> TradeUpdateStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the watch loop sees --------------------------------------------------------

    def take(self, timeout: float) -> list[Order]:
        with self._changed:
            self._changed.wait_for(lambda: self._orders or self._version != self._seen, timeout)
            self._seen = self._version
            taken = list(self._orders)
            self._orders.clear()
            return taken

    def status(self) -> StreamStatus:
        with self._changed:
            return self._status

    # -- start and stop --------------------------------------------------------------------

    def start(self) -> TradeUpdateStream:
        sdk_log = logging.getLogger(SDK_LOGGER)
        sdk_log.addHandler(self._failures)  # also keeps the SDK's tracebacks off the screen
        if not sdk_log.isEnabledFor(logging.WARNING):  # its failures must reach the handler
            sdk_log.setLevel(logging.WARNING)
        self._set("connecting")
        self._thread = threading.Thread(target=self._run, name="trade-updates", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Close the connection and end the thread. A connection still opening may hold the
        daemon thread past `timeout` (websockets' open_timeout); the stream is off anyway."""
        self._stopping.set()
        session = self._session
        if session is not None:
            session.end_soon()
        if self._thread is not None:
            self._thread.join(timeout)
        logging.getLogger(SDK_LOGGER).removeHandler(self._failures)
        self._set("off")

    @property
    def thread_id(self) -> int | None:
        return self._thread.ident if self._thread is not None else None

    # -- the stream thread ---------------------------------------------------------------

    def _run(self) -> None:
        drops = refusals = 0
        while not self._stopping.is_set():
            session = _Session(self)
            self._session = session
            if not self._stopping.is_set():
                try:
                    session.run()
                except Exception as err:  # the SDK failed outside its own loop: retry later
                    session.failure = f"{type(err).__name__}: {err}"
            self._session = None
            if self._stopping.is_set():
                break
            if session.listened:
                drops = refusals = 0
            if session.unauthorized:
                refusals += 1
                delay = min(self._unauthorized_retry * 2 ** (refusals - 1),
                            max(self._unauthorized_retry, MAX_UNAUTHORIZED_RETRY_SECONDS))
                state: StreamState = "unauthorized"
                why = f"Alpaca refused the keys ({session.failure or 'unauthorized'})"
            else:
                drops += 1
                delay = min(self._first_retry * 2 ** (drops - 1), self._max_retry)
                state, why = "reconnecting", f"connection failed: {session.failure or 'it ended'}"
            self._set(state, f"{why}; next try in {delay:g} s")
            if self._stopping.wait(delay):
                break
            self._set("reconnecting", f"{why}; trying again")
        self._set("off")

    def _set(self, state: StreamState, detail: str | None = None) -> None:
        with self._changed:
            if (state, detail) != (self._status.state, self._status.detail):
                self._status = StreamStatus(state, detail, self._status.dropped)
                self._version += 1
                self._changed.notify_all()

    def _received(self, message: Any) -> None:
        try:
            order = parse_trade_update(message)
        except BrokerProtocolError:
            order = None
        with self._changed:
            if order is not None:
                self._orders.append(order)
            if order is None or len(self._orders) > MAX_QUEUED:
                if order is not None:
                    self._orders.popleft()
                self._status = StreamStatus(self._status.state, self._status.detail,
                                            self._status.dropped + 1)
                self._version += 1
            self._changed.notify_all()


class _Session:
    """One connection: a fresh SDK Stream run in the stream thread (its asyncio loop) until its
    first failure or a stop. Everything but run() and end_soon() runs on that loop."""

    def __init__(self, owner: TradeUpdateStream) -> None:
        self.owner = owner
        self.loop: asyncio.AbstractEventLoop | None = None
        self.protocol: _ObservedProtocol | None = None
        self.listened = self.unauthorized = self.ending = False
        self.failure: str | None = None
        params = {**WEBSOCKET_PARAMS,
                  "create_protocol": functools.partial(_ObservedProtocol, session=self)}
        self.sdk = Stream(owner._key_id, owner._secret_key, base_url=URL(owner._base_url),
                          data_stream_url=URL(owner._base_url),  # unused: no market data
                          raw_data=True, websocket_params=params)

    def run(self) -> None:
        self.sdk.subscribe_trade_updates(self._update)
        self.sdk.run()

    def end_soon(self) -> None:
        """From another thread: end the session now if its loop runs (else it ends itself at
        its next hook, which sees the stop)."""
        loop = self.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the session is over
                loop.call_soon_threadsafe(self.end)

    # -- on the session's loop -----------------------------------------------------------

    def bind(self, protocol: _ObservedProtocol | None = None) -> None:
        self.loop = asyncio.get_running_loop()  # before the stop check: see end_soon()
        if protocol is not None:
            self.protocol = protocol
        if self.owner._stopping.is_set():
            self.end()

    def failed(self, message: str) -> None:
        """The SDK logged a failure; it would connect again in 10 ms: end the session."""
        if not self.ending:
            self.failure = self.failure or message.split(": ", 1)[-1].strip() or message
            self.bind()
            self.end()

    def end(self) -> None:
        if not self.ending:
            self.ending = True
            asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        await self.sdk.stop_ws()  # its loop returns at the next turn instead of reconnecting
        protocol = self.protocol
        if protocol is None:
            return
        with contextlib.suppress(Exception):  # a connection that failed: only cutting it is left
            await asyncio.wait_for(protocol.close(), CLOSE_SECONDS)
        if protocol.transport is not None:
            protocol.transport.abort()

    def answer(self, message: str | bytes) -> None:
        """Every message the connection receives, before the SDK reads it: the authorization
        and listening answers are the session's state (the SDK keeps them to itself)."""
        try:
            body = json.loads(message)
        except ValueError:
            return
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return
        if body.get("stream") == "authorization" and data.get("status") != "authorized":
            self.unauthorized = True
            self.failure = str(data.get("message") or data.get("status"))
        elif body.get("stream") == "listening" and "trade_updates" in (data.get("streams") or ()):
            self.listened = True
            self.owner._set("connected")

    async def _update(self, message: Any) -> None:
        self.owner._received(message)


class _ObservedProtocol(WebSocketClientProtocol):
    """websockets' client protocol, showing the session what arrives (create_protocol is
    websockets' documented hook for this, passed through the SDK's websocket_params)."""

    def __init__(self, *args: Any, session: _Session, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = session
        session.bind(self)

    async def recv(self) -> str | bytes:
        message = await super().recv()
        self.session.answer(message)
        return message


class _FailureLog(logging.Handler):
    """The SDK's log records of the stream thread at WARNING and above: how it reports a failed
    connection (then it would retry at once)."""

    def __init__(self, owner: TradeUpdateStream) -> None:
        super().__init__(logging.WARNING)
        self.owner = owner

    def emit(self, record: logging.LogRecord) -> None:
        session = self.owner._session
        if session is not None and record.thread == self.owner.thread_id:
            with contextlib.suppress(RuntimeError):  # not on the session's loop
                session.failed(record.getMessage())
