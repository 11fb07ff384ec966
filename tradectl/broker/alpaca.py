"""The Alpaca adapter: the Broker Protocol over Alpaca's Trading API v2 and its market-data API.

Requests go through `broker.rest` (its own small client on `requests`: timeouts, no silent
retries of order submissions, bounded retries of reads, rate limit); every answer is read by
`broker.wire`, strictly: what tradectl cannot read is a BrokerProtocolError, never a guess.
No Alpaca SDK is imported here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar

from tradectl.broker import (
    ORDERS_READ_SECONDS,
    Account,
    BracketRequest,
    BrokerPosition,
    BrokerRequest,
    Clock,
    EquityPoint,
    OcoExitRequest,
    Order,
    SymbolOutcome,
    wire,
)
from tradectl.broker.rest import RATE_BURST, RATE_PER_SECOND, AlpacaRest, segment
from tradectl.broker.scrub import scrubbed_error, scrubbed_outcomes
from tradectl.errors import BrokerError, BrokerProtocolError, BrokerTimeout

__all__ = ["ORDERS_PAGE", "RATE_BURST", "RATE_PER_SECOND", "AlpacaBroker"]

ORDERS_PAGE = 500  # Alpaca's maximum `limit` for GET /v2/orders


P = ParamSpec("P")
R = TypeVar("R")


def _keys_scrubbed(method: Callable[Concatenate[AlpacaBroker, P], R]
                   ) -> Callable[Concatenate[AlpacaBroker, P], R]:
    """What answered at Alpaca's URL, without the keys: the BrokerError a call raises carries
    no run of a key (broker/scrub.py), whoever wrote its text."""
    @functools.wraps(method)
    def call(self: AlpacaBroker, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except BrokerError as err:
            raise scrubbed_error(err, self._secrets)  # noqa: B904  (the same error, scrubbed)
    return call


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`sleep` and `clock` (monotonic seconds) are there for tests to stand in for time."""
        self._rest = AlpacaRest(api_key=api_key, secret_key=secret_key, base_url=base_url,
                                data_url=data_url, timeout=timeout, sleep=sleep, clock=clock)
        self._secrets = (api_key, secret_key)

    @property
    def requests_sent(self) -> int:
        return self._rest.requests_sent

    def close(self) -> None:
        self._rest.close()

    # -- orders ---------------------------------------------------------------------------

    def bracket_order_request(self, request: BracketRequest) -> BrokerRequest:
        return self._rest.request("POST", "/orders", body=bracket_order_body(request))

    @_keys_scrubbed
    def submit_bracket(self, request: BracketRequest) -> Order:
        """One POST, never retried: a timeout raises BrokerTimeout and the caller settles the
        outcome by client_order_id."""
        return wire.parse_order(self._rest.send_request(self.bracket_order_request(request)))

    @_keys_scrubbed
    def submit_oco_exit(self, request: OcoExitRequest) -> Order:
        """One POST, never retried, like submit_bracket. The take-profit is the parent (a limit
        order); no top-level limit_price: Alpaca takes it from take_profit (alpaca-py#489)."""
        body = {
            "symbol": request.symbol,
            "qty": format(request.qty, "f"),
            "side": request.side,
            "type": "limit",
            "time_in_force": request.time_in_force,
            "order_class": "oco",
            "client_order_id": request.client_order_id,
            "take_profit": {"limit_price": _price(request.target)},
            "stop_loss": {"stop_price": _price(request.stop)},
        }
        return wire.parse_order(self._rest.send("POST", "/orders", body=body))

    def replace_order_request(self, order_id: str, *, stop_price: Decimal | None = None,
                              limit_price: Decimal | None = None) -> BrokerRequest:
        return self._rest.request("PATCH", f"/orders/{segment(order_id)}",
                                  body=replace_order_body(stop_price, limit_price))

    @_keys_scrubbed
    def replace_order(self, order_id: str, *, stop_price: Decimal | None = None,
                      limit_price: Decimal | None = None) -> Order:
        """PATCH /v2/orders/{id}, never retried: after a lost answer the old order's
        `replaced_by` (in the next orders read) says whether it was replaced."""
        request = self.replace_order_request(order_id, stop_price=stop_price,
                                             limit_price=limit_price)
        return wire.parse_order(self._rest.send_request(request))

    @_keys_scrubbed
    def get_order(self, order_id: str) -> Order:
        raw = self._rest.read("GET", f"/orders/{segment(order_id)}", params={"nested": "true"})
        return wire.parse_order(raw)

    @_keys_scrubbed
    def find_order_by_client_id(self, client_order_id: str) -> Order | None:
        try:
            raw = self._rest.read("GET", "/orders:by_client_order_id",
                                  params={"client_order_id": client_order_id})
        except BrokerError as err:
            if err.status == 404:
                return None
            raise
        return wire.parse_order(raw)

    @_keys_scrubbed
    def list_orders(
        self, *, status: str = "open", after: datetime | None = None,
        wanted: Collection[str] = (), page_size: int | None = None,
        deadline_seconds: float = ORDERS_READ_SECONDS,
    ) -> list[Order]:
        """Orders (legs nested) submitted after `after`, newest first.

        Alpaca answers at most 500 a request. A full page is followed by the next with
        `before_order_id` (which cannot be combined with `after`, so the window's edge is applied
        here) until the window is read, or until every `wanted` order id is in hand. When more
        orders are wanted than a page holds, the oldest page is read beside the newest: the stop
        of a large book still reads its orders in one round trip.

        Bounded: a page that does not move past the previous ones (a server ignoring
        `before_order_id`) is a BrokerProtocolError, and the whole read gives up with
        BrokerTimeout after `deadline_seconds`, so the caller always gets control back.
        """
        clock = self._rest.clock
        deadline = clock() + deadline_seconds
        size = page_size or ORDERS_PAGE
        base: dict[str, Any] = {"status": status, "limit": size, "nested": "true"}
        window = dict(base, direction="desc")
        if after is not None:
            window["after"] = after.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if len(wanted) > size:
            with ThreadPoolExecutor(max_workers=2) as pool:
                newest = pool.submit(self._orders_page, window, deadline)
                oldest_first = pool.submit(self._orders_page, dict(window, direction="asc"),
                                           deadline)
                page, oldest = newest.result(), oldest_first.result()[::-1]
        else:
            page, oldest = self._orders_page(window, deadline), []
        oldest_ids = {o.id for o in oldest}
        orders = {o.id: o for o in page}
        missing = set(wanted) - orders.keys() - oldest_ids
        # Read to the end: a short page, or the newest pages have met the oldest one.
        complete = len(page) < size or 0 < len(oldest) < size or not oldest_ids.isdisjoint(orders)
        pages = 1
        while not complete and (missing or not wanted):
            if clock() >= deadline:
                raise BrokerTimeout(f"reading Alpaca's orders took over {deadline_seconds:g} s "
                                    f"({pages} pages): stopped")
            cursor = page[-1].id
            page = self._orders_page(dict(base, direction="desc", before_order_id=cursor),
                                     deadline)
            pages += 1
            if any(o.id in orders for o in page):
                raise BrokerProtocolError(
                    f"Alpaca answered orders already read for the page before {cursor}: "
                    "the paging (before_order_id) did not move", field="orders.before_order_id")
            inside = [o for o in page if after is None or o.submitted_at is None
                      or o.submitted_at > after]
            orders.update((o.id, o) for o in inside)
            missing -= orders.keys()
            complete = (len(page) < size or len(inside) < len(page)  # past the window's edge
                        or not oldest_ids.isdisjoint(o.id for o in inside))
        orders.update((o.id, o) for o in oldest if o.id not in orders)
        return list(orders.values())

    def _orders_page(self, params: dict[str, Any], deadline: float) -> list[Order]:
        return wire.parse_orders(self._rest.read("GET", "/orders", params=params,
                                                 deadline=deadline))

    def cancel_order_request(self, order_id: str) -> BrokerRequest:
        return self._rest.request("DELETE", f"/orders/{segment(order_id)}")

    @_keys_scrubbed
    def cancel_order(self, order_id: str) -> None:
        # Not retried: after a lost answer a second DELETE says 422 "not cancelable".
        self._rest.send_request(self.cancel_order_request(order_id))

    @_keys_scrubbed
    def cancel_all_orders(self) -> list[SymbolOutcome]:
        return scrubbed_outcomes(wire.parse_canceled_orders(self._rest.read("DELETE", "/orders")),
                                 self._secrets)

    # -- positions ------------------------------------------------------------------------

    @_keys_scrubbed
    def list_positions(self) -> list[BrokerPosition]:
        return wire.parse_positions(self._rest.read("GET", "/positions"))

    def close_all_request(self, *, cancel_orders: bool) -> BrokerRequest:
        params = {"cancel_orders": "true"} if cancel_orders else None
        return self._rest.request("DELETE", "/positions", params=params)

    @_keys_scrubbed
    def close_all_positions(self, *, cancel_orders: bool) -> list[SymbolOutcome]:
        """DELETE /v2/positions. Not retried here: the emergency stop decides how to fall back."""
        request = self.close_all_request(cancel_orders=cancel_orders)
        return scrubbed_outcomes(wire.parse_closed_positions(self._rest.send_request(request)),
                                 self._secrets)

    def close_position_request(self, symbol: str, qty: Decimal | None = None) -> BrokerRequest:
        params = {"qty": format(qty, "f")} if qty is not None else None
        return self._rest.request("DELETE", f"/positions/{segment(symbol)}", params=params)

    @_keys_scrubbed
    def close_position(self, symbol: str, qty: Decimal | None = None) -> Order:
        """One DELETE, never retried here (services/close_position decides)."""
        return wire.parse_order(self._rest.send_request(self.close_position_request(symbol, qty)))

    # -- account and market ---------------------------------------------------------------

    @_keys_scrubbed
    def account(self) -> Account:
        return wire.parse_account(self._rest.read("GET", "/account"))

    @_keys_scrubbed
    def clock(self) -> Clock:
        return wire.parse_clock(self._rest.read("GET", "/clock"))

    @_keys_scrubbed
    def equity_history(self, start: datetime) -> list[EquityPoint]:
        """Today's equity in 1-minute bars from `start` (the New York day's start), extended
        hours included: GET /v2/account/portfolio/history."""
        params = {"start": start.isoformat(), "timeframe": "1Min",
                  "intraday_reporting": "extended_hours"}
        return wire.parse_equity_history(
            self._rest.read("GET", "/account/portfolio/history", params=params))

    @_keys_scrubbed
    def latest_trade_price(self, symbol: str) -> Decimal:
        """The market-data API (ALPACA_DATA_URL), not the trading base URL."""
        raw = self._rest.read("GET", f"/stocks/{segment(symbol)}/trades/latest", api="data")
        return wire.parse_latest_trade(raw, symbol)


def bracket_order_body(request: BracketRequest) -> dict[str, Any]:
    """POST /v2/orders for a bracket: the entry (market, or limit at `entry`) and its two legs."""
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
    return body


def replace_order_body(stop_price: Decimal | None, limit_price: Decimal | None
                       ) -> dict[str, Any]:
    """PATCH /v2/orders/{id}: only the prices that move."""
    body: dict[str, Any] = {}
    if stop_price is not None:
        body["stop_price"] = _price(stop_price)
    if limit_price is not None:
        body["limit_price"] = _price(limit_price)
    return body


def _price(value: Decimal) -> str:
    return format(value, "f")
