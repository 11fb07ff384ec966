"""`--dry-run`: a write command's plan, shown instead of executed. The plan (`open_plan`,
`close_plan`, `adjust_plan`, `halt_plan`) is the one the real command executes: its reads, the
risk rules judged with their figures, the exact requests (`Broker.*_request`: method, URL, body;
never the keys). Nothing is written to the database and nothing is sent to the broker or to an
alert channel.

Every plan is shown in the same envelope, `DryRun`, around its command's summary (`plan` in the
JSON: `OpenSummary`, `HaltSummary`, ..., below), so one renderer draws them all, matching the
summary's type, and imports only this module to do so (see docs/architecture.md, "Where a new
command goes").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from tradectl.broker import BrokerRequest, Order
from tradectl.domain.bracket import RiskSizing
from tradectl.domain.money import Money, Price, Quantity
from tradectl.domain.pre_trade import RuleCheck
from tradectl.errors import ExitCode

P = TypeVar("P")

# A dry run makes no client_order_id: the real command makes a new one when it writes ahead.
CLIENT_ORDER_ID_PLACEHOLDER = "tradectl-<new id, made when the order is written ahead>"


@dataclass(frozen=True)
class DryRun(Generic[P]):
    """What `command` would do. `exit_code` is the one the real command would exit with:
    3 when a rule refuses, 4 when the broker could not be read, 5 the database."""

    command: str
    trading_mode: str
    plan: P
    checks: tuple[RuleCheck, ...] = ()
    requests: tuple[BrokerRequest, ...] = ()
    refusal: str | None = None  # the first rule that refuses, in the real command's words
    notes: tuple[str, ...] = ()
    exit_code: ExitCode = ExitCode.OK
    dry_run: bool = True  # for the JSON reader: nothing was written or sent


@dataclass(frozen=True)
class OrderToCancel:
    """An order working at Alpaca that the command would cancel (`halt`, `close`)."""

    id: str
    symbol: str
    side: str
    type: str
    qty: Quantity | None
    status: str
    price: Price | None  # the limit, or the stop
    leg: bool  # a bracket's (or an OCO's) take-profit or stop-loss
    tracked: bool  # an order of a position tradectl opened

    @classmethod
    def of(cls, order: Order, *, leg: bool, tracked: bool) -> OrderToCancel:
        return cls(order.id, order.symbol, order.side, order.type, order.qty, order.status,
                   order.limit_price or order.stop_price, leg, tracked)


@dataclass(frozen=True)
class OpenSummary:
    """`open --dry-run`'s `plan`: the bracket, the figures the rules judged, where they came
    from (docs/json.md)."""

    symbol: str
    side: str
    qty: int
    entry: Price | None  # None: at market
    stop: Price
    target: Price
    time_in_force: str
    base_price: Price | None
    base_source: str  # "--entry", "the last trade", or why there is none
    notional: Money
    risk: Money
    sizing: RiskSizing | None
    equity: Money | None
    buying_power: Money | None
    day_pnl: Money | None
    broker_positions: int | None  # positions the broker holds; None without a broker
    cycle_id: int | None
    cycle_status: str


@dataclass(frozen=True)
class CloseSummary:
    """`close --dry-run`'s `plan` (docs/json.md)."""

    position_id: int
    symbol: str
    side: str
    status: str
    action: str
    qty: Quantity | None  # the shares to close at market
    account_qty: Quantity | None  # the account's shares in the symbol
    cancel: tuple[OrderToCancel, ...]
    stop: Price
    target: Price
    last_price: Price | None
    unrealized_pl: Money | None
    cycle_status: str


@dataclass(frozen=True)
class LegPlan:
    """`action`: replace (PATCH its working order) | unchanged (already at that price: nothing
    sent) | recorded (no working order: the row keeps the price for the next restore)."""

    leg: str  # stop | target
    old_price: Price | None
    new_price: Price
    action: str
    order_id: str | None  # the working order that would be replaced
    order_status: str | None

    def price_fields(self) -> dict[str, Decimal]:
        """The PATCH's price: `stop_price` of a stop, `limit_price` of a take-profit."""
        return {"stop_price" if self.leg == "stop" else "limit_price": self.new_price}


@dataclass(frozen=True)
class AdjustSummary:
    """`adjust --dry-run`'s `plan` (docs/json.md)."""

    position_id: int
    symbol: str
    side: str
    status: str
    last_trade: Price | None  # what the new prices are checked against
    entry: Price | None  # a pending limit entry's price: checked against too
    legs: tuple[LegPlan, ...] = ()
    stop: Price | None = None  # the prices after the adjust
    target: Price | None = None


@dataclass(frozen=True)
class PositionToClose:
    symbol: str
    side: str  # long | short
    qty: Quantity
    last_price: Price | None
    market_value: Money | None
    unrealized_pl: Money | None
    position_ids: tuple[int, ...]  # tradectl's rows for it; none: opened elsewhere


@dataclass(frozen=True)
class HaltSummary:
    """`halt --dry-run`'s `plan` (docs/json.md)."""

    reason: str
    cycle_id: int | None  # the cycle the stop would latch (None: a first one would be made)
    already_stopped: bool
    orders: tuple[OrderToCancel, ...] = ()
    positions: tuple[PositionToClose, ...] = ()
    entries_to_cancel: tuple[str, ...] = ()  # tracked symbols with an entry still working
    closed_locally: tuple[str, ...] = ()  # positions recorded without a broker
    market_open: bool | None = None
    equity: Money | None = None
    day_pnl: Money | None = None
    alerts: tuple[str, ...] = ()  # where the alert would go
    spooled_stops: int = 0  # stops made without the database, recorded first
