"""The broker as tradectl sees it: a small Protocol and the plain values it returns.

Amounts are Decimal, times aware UTC. Only `tradectl.broker.alpaca` (with `broker.wire`, which
reads Alpaca's answers) knows Alpaca's HTTP API. A value here holds what Alpaca said: a field
tradectl decides on is always there (else the read fails with BrokerProtocolError); one it only
shows is None when Alpaca did not send it.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

# Alpaca order statuses after which nothing more happens to the order.
FINAL_ORDER_STATUSES = frozenset(
    {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day", "stopped"}
)
# How long a read that follows Alpaca's pages (list_orders) may take in all before it gives up.
ORDERS_READ_SECONDS = 60.0


@dataclass(frozen=True)
class BracketRequest:
    """A bracket order: a market entry (entry None) or a limit entry at `entry`, a stop-loss at
    `stop` and a take-profit at `target`. Validated by `risk` before it is built; the
    `client_order_id` is set when the position is written ahead of the submit. `qty` is 0 only
    while `open --risk` waits for the price that sizes it (open_position.quote_open)."""

    symbol: str
    side: Literal["buy", "sell"]
    qty: int
    stop: Decimal
    target: Decimal
    entry: Decimal | None
    time_in_force: Literal["day", "gtc"]
    client_order_id: str = ""


@dataclass(frozen=True)
class BrokerRequest:
    """A write exactly as it goes to Alpaca: what a dry run shows instead of sending it. The
    adapter sends these very values; the key headers are never part of them."""

    method: str
    url: str  # base URL, path and query
    path: str  # /v2/orders
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # the JSON document, as sent


@dataclass(frozen=True)
class OcoExitRequest:
    """An exit pair for shares already held (Alpaca's `order_class=oco`): a take-profit limit at
    `target` (the parent order) and a stop at `stop` (its leg), both working at once, one filling
    cancels the other. `side` is the exit side: sell for a long position, buy for a short."""

    symbol: str
    side: Literal["buy", "sell"]
    qty: Decimal
    stop: Decimal
    target: Decimal
    client_order_id: str
    time_in_force: Literal["day", "gtc"] = "gtc"


@dataclass(frozen=True)
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    status: str
    qty: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    order_class: str = ""
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    legs: tuple[Order, ...] = field(default=())
    time_in_force: str = ""
    replaced_by: str | None = None  # a PATCH replaced this order by that one
    replaces: str | None = None  # this order replaced that one

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_ORDER_STATUSES


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    side: str
    qty: Decimal  # negative for a short position
    avg_entry_price: Decimal | None
    current_price: Decimal | None
    market_value: Decimal | None
    unrealized_pl: Decimal | None


@dataclass(frozen=True)
class Account:
    """`equity`, `last_equity` and `status` are always Alpaca's; the rest is None when Alpaca
    left it out (a missing flag is not "not blocked", a missing buying power is not 0).
    `portfolio_value` is equity when absent: Alpaca documents the two as equal."""

    account_number: str
    status: str
    currency: str | None
    cash: Decimal | None
    equity: Decimal
    last_equity: Decimal
    portfolio_value: Decimal
    buying_power: Decimal | None
    trading_blocked: bool | None
    account_blocked: bool | None
    trade_suspended_by_user: bool | None

    @property
    def day_pnl(self) -> Decimal:
        """Alpaca's own day change: equity against the previous close's equity."""
        return self.equity - self.last_equity


@dataclass(frozen=True)
class EquityPoint:
    """One bar of Alpaca's portfolio history: the equity at the end of the window that
    starts at `at` (Alpaca labels each window by its start)."""

    at: datetime
    equity: Decimal


@dataclass(frozen=True)
class Clock:
    is_open: bool
    timestamp: datetime
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True)
class SymbolOutcome:
    """One entry of a multi-status answer: a close (or a cancel) per symbol or order."""

    key: str
    http_status: int
    order: Order | None
    error: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.http_status < 300


StreamState = Literal["connecting", "connected", "reconnecting", "unauthorized", "off"]


@dataclass(frozen=True)
class StreamStatus:
    """Alpaca's trade-updates stream as `watch` shows it. `detail` says why it is not connected
    and when it tries again; `dropped` counts the updates never acted on (tradectl could not
    read them, or the loop was too busy to keep them): the next tick reads the orders again."""

    state: StreamState
    detail: str | None = None
    dropped: int = 0


class TradeUpdates(Protocol):
    """Orders as Alpaca's trade updates report them, as they arrive (broker/stream.py)."""

    def take(self, timeout: float) -> list[Order]:
        """What arrived, waiting up to `timeout` seconds for something; returns early (maybe
        with nothing) when the stream's status changes."""
        ...

    def status(self) -> StreamStatus: ...


class NoStream:
    """TradeUpdates when the stream cannot run (alpaca-trade-api is not installed): nothing
    arrives, the status says why, and `watch` runs on its ticks."""

    def __init__(self, reason: str) -> None:
        self._status = StreamStatus("off", reason)

    def __enter__(self) -> NoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def take(self, timeout: float) -> list[Order]:
        time.sleep(timeout)
        return []

    def status(self) -> StreamStatus:
        return self._status


class Broker(Protocol):
    # A write is described first (`*_request`: nothing is sent; a dry run shows it), then sent.
    def bracket_order_request(self, request: BracketRequest) -> BrokerRequest: ...
    def close_all_request(self, *, cancel_orders: bool) -> BrokerRequest: ...
    def close_position_request(self, symbol: str, qty: Decimal | None = None
                               ) -> BrokerRequest: ...
    def replace_order_request(self, order_id: str, *, stop_price: Decimal | None = None,
                              limit_price: Decimal | None = None) -> BrokerRequest: ...
    def cancel_order_request(self, order_id: str) -> BrokerRequest: ...
    def submit_bracket(self, request: BracketRequest) -> Order: ...
    def submit_oco_exit(self, request: OcoExitRequest) -> Order: ...
    # PATCH: a new order (new id) takes the old one's place; the answer is the new order.
    def replace_order(self, order_id: str, *, stop_price: Decimal | None = None,
                      limit_price: Decimal | None = None) -> Order: ...
    def get_order(self, order_id: str) -> Order: ...
    def find_order_by_client_id(self, client_order_id: str) -> Order | None: ...
    # Orders submitted after `after`, newest first: all of them, or at least every `wanted` id.
    # Gives up (BrokerTimeout) after `deadline_seconds` in all, however many pages remain.
    def list_orders(
        self, *, status: str = "open", after: datetime | None = None,
        wanted: Collection[str] = (), deadline_seconds: float = ORDERS_READ_SECONDS,
    ) -> list[Order]: ...
    def list_positions(self) -> list[BrokerPosition]: ...
    def cancel_all_orders(self) -> list[SymbolOutcome]: ...
    def cancel_order(self, order_id: str) -> None: ...
    def close_all_positions(self, *, cancel_orders: bool) -> list[SymbolOutcome]: ...
    # `qty` None closes the whole position; else that many shares of it.
    def close_position(self, symbol: str, qty: Decimal | None = None) -> Order: ...
    def account(self) -> Account: ...
    def clock(self) -> Clock: ...
    def equity_history(self, start: datetime) -> list[EquityPoint]: ...
    def latest_trade_price(self, symbol: str) -> Decimal: ...
