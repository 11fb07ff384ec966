"""The Alpaca adapter: the only module that imports alpaca-trade-api.

The SDK carries auth, the HTTP session and Alpaca's error format; this module adds what tradectl
needs on top: a timeout on every call, no silent retries of order submissions (the SDK's own
429/504 retry is switched off), bounded retries of reads, decimal strings out and Decimal in,
and SDK/requests errors turned into tradectl's BrokerError family.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests

from tradectl.broker import (
    Account,
    BracketRequest,
    BrokerPosition,
    Clock,
    Order,
    SymbolOutcome,
)
from tradectl.errors import BrokerError, BrokerTimeout, BrokerUnreachable

T = TypeVar("T")

READ_ATTEMPTS = 3
ORDERS_PAGE = 500  # Alpaca's maximum `limit` for GET /v2/orders
READ_BACKOFF = (0.2, 0.6)  # seconds before the 2nd and 3rd attempt
# Alpaca allows 200 requests a minute per account. A burst plus a minute of refill must stay
# under it in any 60 s window: 40 + 150 = 190.
RATE_BURST = 40
RATE_PER_SECOND = 150 / 60


class _TokenBucket:
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


class BrokerProtocolError(BrokerTimeout):
    """Alpaca answered something that is not the JSON it documents. Like a timeout, the outcome
    of a write is unknown."""


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout; the SDK passes none, so every request gets ours."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = (min(timeout, 5.0), timeout)  # (connect, read)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class AlpacaBroker:
    """The Broker Protocol over Alpaca's Trading API v2 and its stock market-data API."""

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        base_url: str,
        data_url: str,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from alpaca_trade_api.common import URL
        from alpaca_trade_api.rest import REST

        self._rest = REST(
            key_id=api_key,
            secret_key=secret_key,
            base_url=URL(base_url.rstrip("/")),
            api_version="v2",
            raw_data=True,
        )
        self._rest._retry = 0  # never re-send a request on 429/504: we decide what is safe
        self._rest._session = _TimeoutSession(timeout)
        self._data_url = URL(data_url.rstrip("/"))
        self._sleep, self._timeout = sleep, timeout
        self._bucket = _TokenBucket(RATE_PER_SECOND, RATE_BURST)
        self._count_lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        self._rest._session.close()

    # -- orders ---------------------------------------------------------------------------

    def submit_bracket(self, request: BracketRequest) -> Order:
        """One POST, never retried: a timeout raises BrokerTimeout and the caller settles the
        outcome by client_order_id."""
        body: dict[str, Any] = {
            "symbol": request.symbol,
            "qty": str(request.qty),
            "side": request.side,
            "type": "market" if request.entry is None else "limit",
            "time_in_force": request.time_in_force,
            "order_class": "bracket",
            "client_order_id": request.client_order_id,
            "take_profit": {"limit_price": _price(request.target)},
            "stop_loss": {"stop_price": _price(request.stop)},
        }
        if request.entry is not None:
            body["limit_price"] = _price(request.entry)
        return parse_order(self._call(lambda: self._rest.post("/orders", body)))

    def get_order(self, order_id: str) -> Order:
        return parse_order(self._read(lambda: self._rest.get(f"/orders/{order_id}",
                                                             {"nested": "true"})))

    def find_order_by_client_id(self, client_order_id: str) -> Order | None:
        try:
            raw = self._read(
                lambda: self._rest.get(
                    "/orders:by_client_order_id", {"client_order_id": client_order_id}
                )
            )
        except BrokerError as err:
            if err.status == 404:
                return None
            raise
        return parse_order(raw)

    def list_orders(
        self, *, status: str = "open", after: datetime | None = None,
        wanted: Collection[str] = (), page_size: int | None = None,
    ) -> list[Order]:
        """Orders (legs nested) submitted after `after`, newest first.

        Alpaca answers at most 500 a request. A full page is followed by the next with
        `before_order_id` (which cannot be combined with `after`, so the window's edge is applied
        here) until the window is read, or until every `wanted` order id is in hand. When more
        orders are wanted than a page holds, the oldest page is read beside the newest: the stop
        of a large book still reads its orders in one round trip.
        """
        size = page_size or ORDERS_PAGE
        base: dict[str, Any] = {"status": status, "limit": size, "nested": "true"}
        window = dict(base, direction="desc")
        if after is not None:
            window["after"] = after.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if len(wanted) > size:
            with ThreadPoolExecutor(max_workers=2) as pool:
                newest = pool.submit(self._orders_page, window)
                oldest_first = pool.submit(self._orders_page, dict(window, direction="asc"))
                page, oldest = newest.result(), oldest_first.result()[::-1]
        else:
            page, oldest = self._orders_page(window), []
        oldest_ids = {o.id for o in oldest}
        orders = {o.id: o for o in page}
        missing = set(wanted) - orders.keys() - oldest_ids
        # Read to the end: a short page, or the newest pages have met the oldest one.
        complete = len(page) < size or 0 < len(oldest) < size or not oldest_ids.isdisjoint(orders)
        while not complete and (missing or not wanted):
            page = self._orders_page(dict(base, direction="desc", before_order_id=page[-1].id))
            inside = [o for o in page if after is None or o.submitted_at is None
                      or o.submitted_at > after]
            orders.update((o.id, o) for o in inside)
            missing -= orders.keys()
            complete = (len(page) < size or len(inside) < len(page)  # past the window's edge
                        or not oldest_ids.isdisjoint(o.id for o in inside))
        orders.update((o.id, o) for o in oldest if o.id not in orders)
        return list(orders.values())

    def _orders_page(self, params: dict[str, Any]) -> list[Order]:
        return [parse_order(o) for o in self._read(lambda: self._rest.get("/orders", params))]

    def cancel_order(self, order_id: str) -> None:
        # Not retried: after a lost answer a second DELETE says 422 "not cancelable".
        self._call(lambda: self._rest.delete(f"/orders/{order_id}"))

    def cancel_all_orders(self) -> list[SymbolOutcome]:
        raw = self._read(lambda: self._rest.delete("/orders")) or []
        return [_outcome(str(item.get("id", "")), item) for item in raw]

    # -- positions ------------------------------------------------------------------------

    def list_positions(self) -> list[BrokerPosition]:
        return [parse_position(p) for p in self._read(lambda: self._rest.get("/positions"))]

    def close_all_positions(self, *, cancel_orders: bool) -> list[SymbolOutcome]:
        """DELETE /v2/positions (the SDK's close_all_positions sends no cancel_orders).
        Not retried here: the emergency stop decides how to fall back."""
        params = {"cancel_orders": "true"} if cancel_orders else None
        raw = self._call(lambda: self._rest.delete("/positions", params)) or []
        return [_outcome(str(item.get("symbol", "")), item) for item in raw]

    def close_position(self, symbol: str) -> Order:
        return parse_order(self._call(lambda: self._rest.delete(f"/positions/{symbol}")))

    # -- account and market ---------------------------------------------------------------

    def account(self) -> Account:
        return parse_account(self._read(lambda: self._rest.get("/account")))

    def clock(self) -> Clock:
        raw = self._read(lambda: self._rest.get("/clock"))
        return Clock(
            is_open=bool(raw["is_open"]),
            timestamp=_time_required(raw["timestamp"]),
            next_open=_time_required(raw["next_open"]),
            next_close=_time_required(raw["next_close"]),
        )

    def latest_trade_price(self, symbol: str) -> Decimal:
        """The market-data API (ALPACA_DATA_URL), not the trading base URL."""
        raw = self._read(
            lambda: self._rest._request(
                "GET", f"/stocks/{symbol}/trades/latest", base_url=self._data_url,
                api_version="v2",
            )
        )
        try:
            # `p` is a JSON number: go through its text, never through binary float arithmetic.
            return Decimal(str(raw["trade"]["p"]))
        except (KeyError, TypeError, ArithmeticError):
            raise BrokerProtocolError(f"no latest trade for {symbol} in Alpaca's answer") from None

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, send: Callable[[], T]) -> T:
        """One request, errors translated; never retried."""
        from alpaca_trade_api.rest import APIError

        self._bucket.take()
        with self._count_lock:
            self.requests_sent += 1
        try:
            return send()
        except APIError as err:
            raise _api_error(err.status_code, err.code, str(err)) from None
        except requests.exceptions.ConnectTimeout:
            raise BrokerUnreachable(
                "could not connect to Alpaca in time", hint=_NETWORK_HINT
            ) from None
        except requests.exceptions.ReadTimeout:
            raise BrokerTimeout("Alpaca did not answer in time", hint=_NETWORK_HINT) from None
        except requests.exceptions.ConnectionError as err:
            if _never_connected(err):
                raise BrokerUnreachable(
                    "could not connect to Alpaca (connection refused or unknown host)",
                    hint=_NETWORK_HINT,
                ) from None
            raise BrokerTimeout("the connection to Alpaca broke mid-request") from None
        except requests.exceptions.HTTPError as err:
            status = err.response.status_code if err.response is not None else None
            raise _api_error(status, None, f"HTTP {status} from Alpaca") from None
        except requests.exceptions.JSONDecodeError:
            raise BrokerProtocolError("Alpaca sent a malformed (non-JSON) answer") from None

    def _read(self, send: Callable[[], T]) -> T:
        """Reads and cancels are idempotent: retry transient failures, a bounded number of times,
        and not once ALPACA_TIMEOUT has been spent: a server that does not answer costs one
        timeout, not three."""
        started = time.monotonic()
        for attempt in range(READ_ATTEMPTS):
            try:
                return self._call(send)
            except BrokerError as err:
                spent = time.monotonic() - started
                if not err.transient or attempt == READ_ATTEMPTS - 1 or spent >= self._timeout:
                    raise
                self._sleep(READ_BACKOFF[attempt])
        raise AssertionError("unreachable")  # pragma: no cover


_NETWORK_HINT = "check the network and ALPACA_BASE_URL / ALPACA_DATA_URL"


def _api_error(status: int | None, code: Any, message: str) -> BrokerError:
    hint = None
    if status in (401, 403) and "insufficient" not in message and "buying power" not in message:
        hint = "invalid keys, or keys of the other mode: check ALPACA_API_KEY and TRADING_MODE"
    elif status == 429:
        hint = "rate limited by Alpaca: wait a minute and try again"
    elif status is not None and status >= 500:
        hint = "Alpaca had a server error: try again shortly"
    return BrokerError(
        f"Alpaca {status}: {message}" if status else message,
        status=status,
        code=code if isinstance(code, int) else None,
        hint=hint,
    )


def _never_connected(err: requests.exceptions.ConnectionError) -> bool:
    # Refused connections and unknown hosts are NewConnectionError (DNS failures too, in 1.26
    # and as a subclass in urllib3 2): the request was never sent.
    from urllib3.exceptions import NewConnectionError

    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, NewConnectionError)


def _outcome(key: str, item: dict[str, Any]) -> SymbolOutcome:
    status = int(item.get("status") or 0)
    body = item.get("body")
    if 200 <= status < 300 and isinstance(body, dict) and "id" in body:
        return SymbolOutcome(key=key, http_status=status, order=parse_order(body), error=None)
    message = body.get("message") if isinstance(body, dict) else None
    return SymbolOutcome(
        key=key,
        http_status=status,
        order=None,
        error=None if 200 <= status < 300 else f"Alpaca {status}: {message or 'failed'}",
    )


def _price(value: Decimal) -> str:
    return format(value, "f")


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    # Alpaca sends nanoseconds and "Z": Python 3.11's parser takes both (keeping microseconds).
    parsed = datetime.fromisoformat(str(value))
    # /v2/clock answers in New York time: keep every time in UTC.
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _time_required(value: Any) -> datetime:
    parsed = _time(value)
    if parsed is None:
        raise BrokerProtocolError("Alpaca's answer lacks a timestamp")
    return parsed


def parse_order(raw: dict[str, Any]) -> Order:
    try:
        return Order(
            id=str(raw["id"]),
            client_order_id=str(raw.get("client_order_id") or ""),
            symbol=str(raw["symbol"]),
            side=str(raw.get("side") or ""),
            type=str(raw.get("type") or raw.get("order_type") or ""),
            status=str(raw["status"]),
            qty=_dec(raw.get("qty")),
            filled_qty=_dec(raw.get("filled_qty")) or Decimal(0),
            filled_avg_price=_dec(raw.get("filled_avg_price")),
            limit_price=_dec(raw.get("limit_price")),
            stop_price=_dec(raw.get("stop_price")),
            order_class=str(raw.get("order_class") or ""),
            submitted_at=_time(raw.get("submitted_at")),
            filled_at=_time(raw.get("filled_at")),
            canceled_at=_time(raw.get("canceled_at")),
            legs=tuple(parse_order(leg) for leg in raw.get("legs") or ()),
        )
    except (KeyError, TypeError, ArithmeticError, ValueError) as err:
        raise BrokerProtocolError(f"Alpaca sent an order tradectl cannot read ({err})") from None


def parse_position(raw: dict[str, Any]) -> BrokerPosition:
    try:
        return BrokerPosition(
            symbol=str(raw["symbol"]),
            side=str(raw.get("side") or "long"),
            qty=Decimal(str(raw["qty"])),
            avg_entry_price=Decimal(str(raw["avg_entry_price"])),
            current_price=_dec(raw.get("current_price")),
            market_value=_dec(raw.get("market_value")),
            unrealized_pl=_dec(raw.get("unrealized_pl")),
        )
    except (KeyError, TypeError, ArithmeticError) as err:
        raise BrokerProtocolError(f"Alpaca sent a position tradectl cannot read ({err})") from None


def parse_account(raw: dict[str, Any]) -> Account:
    def money(name: str) -> Decimal:
        return _dec(raw.get(name)) or Decimal(0)

    try:
        return Account(
            account_number=str(raw.get("account_number") or ""),
            status=str(raw.get("status") or ""),
            currency=str(raw.get("currency") or "USD"),
            cash=money("cash"),
            equity=money("equity"),
            last_equity=money("last_equity"),
            portfolio_value=money("portfolio_value") or money("equity"),
            buying_power=money("buying_power"),
            trading_blocked=bool(raw.get("trading_blocked")),
            account_blocked=bool(raw.get("account_blocked")),
            trade_suspended_by_user=bool(raw.get("trade_suspended_by_user")),
        )
    except (TypeError, ArithmeticError) as err:
        raise BrokerProtocolError(f"Alpaca sent an account tradectl cannot read ({err})") from None
