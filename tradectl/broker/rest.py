"""Alpaca's REST APIs over one bounded HTTP client (`tradectl.net`, on httpcore): the key headers,
the trading and market-data base URLs, a total deadline and a size cap on every request,
Alpaca's error body turned into BrokerError, bounded retries of reads (never of order
submissions), and a client-side rate limit.

Answers come back as decoded JSON for `broker.wire` to read; nothing here decides on them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote, urlencode

from tradectl import __version__
from tradectl.broker import BrokerRequest, wire
from tradectl.errors import BrokerError, BrokerProtocolError, BrokerTimeout, BrokerUnreachable
from tradectl.net import BoundedHttp, HttpFailure

READ_ATTEMPTS = 3
READ_BACKOFF = (0.2, 0.6)  # seconds before the 2nd and 3rd attempt
CONNECT_TIMEOUT_CAP = 5.0
# Alpaca allows 200 requests a minute per account. A burst plus a minute of refill must stay
# under it in any 60 s window: 40 + 150 = 190.
RATE_BURST = 40
RATE_PER_SECOND = 150 / 60
NETWORK_HINT = "check the network and ALPACA_BASE_URL / ALPACA_DATA_URL"
API_PREFIX = "/v2"

Api = Literal["trading", "data"]


class TokenBucket:
    """Client-side rate limit shared by every thread using one adapter."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._clock, self._sleep = float(burst), clock, sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1 - 1e-9:  # float refill can land a hair under a whole token
                    self._tokens = max(self._tokens - 1, 0.0)
                    return
                wait = (1 - self._tokens) / self._rate
            self._sleep(wait)


def segment(value: str) -> str:
    """A symbol or an id as one path segment, whatever it holds."""
    return quote(value, safe="")


class AlpacaRest:
    """One session to Alpaca's Trading API v2 and its market-data API (paths start after /v2)."""

    def __init__(self, *, api_key: str, secret_key: str, base_url: str, data_url: str,
                 timeout: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # The pool opens no connection until the first request (and imports httpcore only now).
        self._http = BoundedHttp(base_url, data_url, headers={
            "APCA-API-KEY-ID": api_key,
            "APCA-API-SECRET-KEY": secret_key,
            "Accept": "application/json",
            "User-Agent": f"tradectl/{__version__}",
        })
        self._urls = {"trading": base_url.rstrip("/") + API_PREFIX,
                      "data": data_url.rstrip("/") + API_PREFIX}
        self._timeout, self._sleep, self.clock = timeout, sleep, clock
        self._bucket = TokenBucket(RATE_PER_SECOND, RATE_BURST)
        self._count_lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> BrokerRequest:
        """A trading-API write as a value: what `send_request` sends, or a dry run shows."""
        query = f"?{urlencode(params)}" if params else ""
        return BrokerRequest(method, self._urls["trading"] + path + query, API_PREFIX + path,
                             dict(params or {}), body)

    def send_request(self, request: BrokerRequest) -> Any:
        """Send a described write, once (see `send`)."""
        path = request.path.removeprefix(API_PREFIX)
        return self.send(request.method, path, params=request.params or None, body=request.body)

    def send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None, api: Api = "trading",
             deadline: float | None = None) -> Any:
        """One request, never retried: its decoded JSON answer (None for an empty one).
        `deadline` (on `clock`) shortens the timeouts so the request ends by then; once it has
        passed nothing is sent."""
        total = self._timeout
        if deadline is not None:
            left = deadline - self.clock()
            if left <= 0:
                raise BrokerTimeout("Alpaca's answers did not come within the read's time bound")
            total = min(total, left)
        self._bucket.take()
        with self._count_lock:
            self.requests_sent += 1
        try:
            # No redirects: a redirected POST could be re-sent somewhere else (the SDK's rule).
            # `total` bounds the whole exchange, connect to last byte (ALPACA_TIMEOUT).
            answer = self._http.request(method, self._urls[api] + path, params=_query(params),
                                        json=body, total=total,
                                        connect=min(total, CONNECT_TIMEOUT_CAP))
        except HttpFailure as err:
            raise _broker_failure(err) from None
        status, content = answer.status, answer.content
        if status >= 300:
            raise api_error(status, content)
        return wire.decode(content) if content else None

    def read(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             api: Api = "trading", deadline: float | None = None) -> Any:
        """Reads and cancels are idempotent: transient failures are tried again, a bounded
        number of times, and not once ALPACA_TIMEOUT has been spent (a server that does not
        answer costs one timeout, not three) nor past `deadline`."""
        started = self.clock()
        for attempt in range(READ_ATTEMPTS):
            try:
                return self.send(method, path, params=params, api=api, deadline=deadline)
            except BrokerError as err:
                now = self.clock()
                if (not err.transient or attempt == READ_ATTEMPTS - 1
                        or now - started >= self._timeout
                        or (deadline is not None and now + READ_BACKOFF[attempt] >= deadline)):
                    raise
                self._sleep(READ_BACKOFF[attempt])
        raise AssertionError("unreachable")  # pragma: no cover


def api_error(status: int, content: bytes) -> BrokerError:
    """Alpaca's error body {"code", "message"} as a BrokerError with a hint at the fix."""
    found = wire.error_body(content) if status >= 400 else None
    code, message = found if found else (None, None)
    hint = None
    text = message or ""
    if status in (401, 403) and "insufficient" not in text and "buying power" not in text:
        hint = "invalid keys, or keys of the other mode: check ALPACA_API_KEY and TRADING_MODE"
    elif status == 429:
        hint = "rate limited by Alpaca: wait a minute and try again"
    elif status >= 500:
        hint = "Alpaca had a server error: try again shortly"
    elif status < 400:
        hint = "a redirect: check ALPACA_BASE_URL / ALPACA_DATA_URL (https, no /v2)"
    shown = f"Alpaca {status}: {message}" if message else f"HTTP {status} from Alpaca"
    return BrokerError(shown, status=status, code=code, hint=hint)


def _query(params: dict[str, Any] | None) -> dict[str, str] | None:
    """As requests sent them: a None value leaves the parameter out, others as their str()."""
    if not params:
        return None
    return {k: str(v) for k, v in params.items() if v is not None}


def _broker_failure(err: HttpFailure) -> BrokerError:
    """Never sent -> BrokerUnreachable; sent, with no usable answer -> BrokerTimeout (the
    outcome is unknown: a read is tried again, an order is looked up by its client id)."""
    if err.kind == "url":
        return BrokerUnreachable("the Alpaca URL is not usable", hint=NETWORK_HINT)
    if err.kind == "tls":
        return BrokerUnreachable(f"could not reach Alpaca: {err.message}", hint=NETWORK_HINT)
    if err.kind == "connect":
        return BrokerUnreachable(
            "could not connect to Alpaca (connection refused, unknown host, or no connection "
            "in time)", hint=NETWORK_HINT)
    if err.kind == "timeout":
        return BrokerTimeout("Alpaca did not answer in time", hint=NETWORK_HINT)
    if err.kind == "broken":
        return BrokerTimeout("the connection to Alpaca broke mid-request")
    return BrokerProtocolError(f"Alpaca's answer was not read: {err.message}")
