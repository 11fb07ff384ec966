"""The broker as tradectl sees it: a small Protocol and the plain values it returns.

Amounts are Decimal, times aware UTC. Only `tradectl.broker.alpaca` knows about Alpaca's SDK.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

# Alpaca order statuses after which nothing more happens to the order.
FINAL_ORDER_STATUSES = frozenset(
    {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day", "stopped"}
)


@dataclass(frozen=True)
class BracketRequest:
    """A bracket order: a market entry (entry None) or a limit entry at `entry`, a stop-loss at
    `stop` and a take-profit at `target`. Validated by `risk` before it is built; the
    `client_order_id` is set when the position is written ahead of the submit."""

    symbol: str
    side: Literal["buy", "sell"]
    qty: int
    stop: Decimal
    target: Decimal
    entry: Decimal | None
    time_in_force: Literal["day", "gtc"]
    client_order_id: str = ""


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

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_ORDER_STATUSES


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    side: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None
    market_value: Decimal | None
    unrealized_pl: Decimal | None


@dataclass(frozen=True)
class Account:
    account_number: str
    status: str
    currency: str
    cash: Decimal
    equity: Decimal
    last_equity: Decimal
    portfolio_value: Decimal
    buying_power: Decimal
    trading_blocked: bool
    account_blocked: bool
    trade_suspended_by_user: bool

    @property
    def day_pnl(self) -> Decimal:
        """Alpaca's own day change: equity against the previous close's equity."""
        return self.equity - self.last_equity


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


class Broker(Protocol):
    def submit_bracket(self, request: BracketRequest) -> Order: ...
    def get_order(self, order_id: str) -> Order: ...
    def find_order_by_client_id(self, client_order_id: str) -> Order | None: ...
    # Orders submitted after `after`, newest first: all of them, or at least every `wanted` id.
    def list_orders(
        self, *, status: str = "open", after: datetime | None = None,
        wanted: Collection[str] = (),
    ) -> list[Order]: ...
    def list_positions(self) -> list[BrokerPosition]: ...
    def cancel_all_orders(self) -> list[SymbolOutcome]: ...
    def cancel_order(self, order_id: str) -> None: ...
    def close_all_positions(self, *, cancel_orders: bool) -> list[SymbolOutcome]: ...
    def close_position(self, symbol: str) -> Order: ...
    def account(self) -> Account: ...
    def clock(self) -> Clock: ...
    def latest_trade_price(self, symbol: str) -> Decimal: ...
