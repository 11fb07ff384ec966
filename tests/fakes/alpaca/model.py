"""Value types of the fake broker: errors, orders, positions and their JSON shapes.

Field names and types follow the Order / Position schemas of Alpaca's Trading API
spec (money and quantities are JSON strings, absent values are JSON null). The
lifecycle timestamps and links of the Order schema are kept per order: expired_at
(a day order at the close), canceled_at, replaced_at / replaced_by on the order a
PATCH replaced and replaces on its successor.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias

# A JSON object as the fake answers or receives it (values: whatever json.loads gives).
JsonObject: TypeAlias = dict[str, Any]
# A request's query string, one value per name (parse_qsl's last one wins).
Query: TypeAlias = dict[str, str]

# Statuses of an order that can still fill ("held" = bracket leg waiting for its parent, a
# status the spec's OrderStatus enum lacks; "pending_cancel" = a cancel was asked for but the
# venue has not confirmed it, and the order can still fill meanwhile).
OPEN_STATUSES = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "partially_filled",
        "held",
        "accepted_for_bidding",
        "pending_cancel",
        "pending_replace",
    }
)

_sequence = itertools.count()


class ApiError(Exception):
    """An Alpaca-style error answer: HTTP status plus a {"code", "message", ...} body."""

    def __init__(self, status: int, message: str, code: int | None = None, **extra: object):
        super().__init__(message)
        self.status = status
        self.body = {"code": code or default_code(status), "message": message, **extra}


def default_code(status: int) -> int:
    """Alpaca's error codes are the HTTP status followed by 10000, e.g. 422 -> 42210000."""
    return status * 100000 + 10000


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # isoformat with fixed microseconds: strftime's parsing of its format made a large order
    # list the slowest part of the fake's answer.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def money(value: Decimal | None) -> str | None:
    """Decimal -> plain string without exponent or trailing zeros ("150.5", "100000")."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


@functools.cache
def asset_id(symbol: str) -> str:
    """A stable uuid per symbol, so asset_id is the same across orders and positions."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/asset/{symbol}"))


@dataclass
class Order:
    symbol: str
    qty: Decimal
    side: str
    type: str
    time_in_force: str
    order_class: str = ""
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "new"
    position_intent: str = "buy_to_open"
    extended_hours: bool = False
    parent_id: str | None = None
    leg_ids: list[str] = field(default_factory=list)
    triggered: bool = False  # stop_limit orders: stop reached, now a resting limit
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = field(default_factory=lambda: next(_sequence))
    created_at: datetime = field(default_factory=now)
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None

    def __post_init__(self) -> None:
        self.updated_at = self.created_at

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    def to_dict(self, legs: list[JsonObject] | None = None) -> JsonObject:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "submitted_at": rfc3339(self.created_at),
            "filled_at": rfc3339(self.filled_at),
            "expired_at": rfc3339(self.expired_at),
            "canceled_at": rfc3339(self.canceled_at),
            "failed_at": None,
            "replaced_at": rfc3339(self.replaced_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": money(self.qty),
            "filled_qty": money(self.filled_qty),
            "filled_avg_price": money(self.filled_avg_price),
            "order_class": self.order_class,
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": self.position_intent,
            "time_in_force": self.time_in_force,
            "limit_price": money(self.limit_price),
            "stop_price": money(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": legs,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass
class Position:
    """qty is signed (negative = short); cost_basis is signed the same way."""

    symbol: str
    qty: Decimal
    cost_basis: Decimal

    @property
    def avg_entry_price(self) -> Decimal:
        return self.cost_basis / self.qty

    def to_dict(self, price: Decimal, lastday_price: Decimal, held: Decimal) -> JsonObject:
        market_value = self.qty * price
        unrealized = market_value - self.cost_basis
        intraday = (price - lastday_price) * self.qty
        return {
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "qty": money(self.qty),
            "qty_available": money(abs(self.qty) - held),
            "avg_entry_price": money(self.avg_entry_price),
            "side": "long" if self.qty > 0 else "short",
            "market_value": money(market_value),
            "cost_basis": money(self.cost_basis),
            "unrealized_pl": money(unrealized),
            "unrealized_plpc": money(unrealized / abs(self.cost_basis)),
            "unrealized_intraday_pl": money(intraday),
            "unrealized_intraday_plpc": money(intraday / abs(lastday_price * self.qty)),
            "current_price": money(price),
            "lastday_price": money(lastday_price),
            "change_today": money((price - lastday_price) / lastday_price),
        }


def account_dict(
    account_id: str,
    created_at: datetime,
    cash: Decimal,
    last_equity: Decimal,
    long_mv: Decimal,
    short_mv: Decimal,
    buying_power: Decimal,
) -> JsonObject:
    """The Account schema; short_mv is negative, equity = cash + long_mv + short_mv."""
    equity = cash + long_mv + short_mv
    exposure = long_mv - short_mv
    return {
        "id": account_id,
        "account_number": "PA" + account_id.replace("-", "")[:10].upper(),
        "status": "ACTIVE",
        "currency": "USD",
        "cash": money(cash),
        "portfolio_value": money(equity),
        "equity": money(equity),
        "last_equity": money(last_equity),
        "long_market_value": money(long_mv),
        "short_market_value": money(short_mv),
        "position_market_value": money(long_mv - short_mv),
        "buying_power": money(buying_power),
        "regt_buying_power": money(buying_power),
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": money(max(cash, Decimal(0))),
        "options_buying_power": money(buying_power / 2),
        "initial_margin": money(exposure / 2),
        "maintenance_margin": money(exposure * Decimal("0.3")),
        "last_maintenance_margin": "0",
        "sma": money(equity),
        "multiplier": "2",
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "intraday_adjustments": "0",
        "pending_reg_taf_fees": "0",
        "daytrade_count": 0,
        "balance_asof": created_at.date().isoformat(),
        "created_at": rfc3339(created_at),
        "pattern_day_trader": False,
        "trade_suspended_by_user": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "shorting_enabled": True,
        "options_approved_level": 0,
        "options_trading_level": 0,
    }
