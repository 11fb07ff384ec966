"""Alpaca's answers, read strictly and in one place: JSON text in, tradectl's values out, or
BrokerProtocolError naming the field that could not be read.

The rules: money and quantities are finite plain decimals (`-12.5`; a JSON string, or a JSON
number through its own text), never NaN/Infinity, spaces, `_`, `+`, exponents or non-ASCII
digits. Booleans are JSON booleans. Times are RFC 3339 with an offset (`Z` or `+hh:mm`), up to 9
fraction digits (cut to microseconds), returned in UTC; naive times, leap seconds, lower-case
`t`/`z` are refused. A field tradectl decides on must be there; one it only shows may be
missing (null, or "" for a number or a time, reads as missing). Unknown fields and unknown
order statuses are kept out of the way, never fatal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tradectl.broker import Account, BrokerPosition, Clock, EquityPoint, Order, SymbolOutcome
from tradectl.broker.wire_fields import (
    Fields,
    json_list,
    one_line,
    read_amount,
    read_decimal,
    read_flag,
    read_text,
    read_time,
    shown,
    translated,
)
from tradectl.broker.wire_fields import decode as decode  # every answer: decode, then a parse_*
from tradectl.broker.wire_fields import error_body as error_body

# -- the parse functions: every answer goes through one of these ---------------------------


def parse_order(raw: Any, where: str = "order") -> Order:
    with translated():
        return _order(Fields(raw, where))


def parse_trade_update(raw: Any) -> Order:
    """One message of the trade_updates stream, {"stream": "trade_updates", "data": {"event":
    ..., "order": {...}}}: the order as it stands after the event (a bracket's entry with its
    legs, a leg alone)."""
    with translated():
        f = Fields(raw, "trade update")
        if f.raw.get("stream") != "trade_updates":
            f.fail("stream", "is not trade_updates")
        data = Fields(f.raw.get("data"), "trade update.data")
        data.required(read_text, "event")
        return _order(Fields(data.raw.get("order"), "trade update.data.order"))


def parse_orders(raw: Any, where: str = "orders") -> list[Order]:
    with translated():
        return [_order(Fields(item, f"{where}[{i}]"))
                for i, item in enumerate(json_list(raw, where))]


def parse_positions(raw: Any) -> list[BrokerPosition]:
    with translated():
        return [_position(Fields(item, f"positions[{i}]"))
                for i, item in enumerate(json_list(raw, "positions"))]


def parse_account(raw: Any) -> Account:
    with translated():
        f = Fields(raw, "account")
        equity = f.required(read_decimal, "equity")
        portfolio_value = f.optional(read_decimal, "portfolio_value")
        return Account(
            account_number=f.optional(read_text, "account_number") or "",
            status=f.required(read_text, "status"),
            currency=f.optional(read_text, "currency") or None,
            cash=f.optional(read_decimal, "cash"),
            equity=equity,
            last_equity=f.required(read_decimal, "last_equity"),
            portfolio_value=equity if portfolio_value is None else portfolio_value,
            buying_power=f.optional(read_decimal, "buying_power"),
            trading_blocked=f.optional(read_flag, "trading_blocked"),
            account_blocked=f.optional(read_flag, "account_blocked"),
            trade_suspended_by_user=f.optional(read_flag, "trade_suspended_by_user"),
        )


def parse_clock(raw: Any) -> Clock:
    """/v2/clock speaks New York time (-04:00 / -05:00): every time comes back in UTC."""
    with translated():
        f = Fields(raw, "clock")
        return Clock(
            is_open=f.required(read_flag, "is_open"),
            timestamp=f.required(read_time, "timestamp"),
            next_open=f.required(read_time, "next_open"),
            next_close=f.required(read_time, "next_close"),
        )


def parse_equity_history(raw: Any) -> list[EquityPoint]:
    """GET /v2/account/portfolio/history: `timestamp` (UNIX seconds, each window's start) and
    `equity` side by side, of one length. A null equity (a window before the account had any)
    is left out; any other unreadable value fails the whole answer."""
    with translated():
        f = Fields(raw, "portfolio_history")
        stamps = json_list(f.raw.get("timestamp"), "portfolio_history.timestamp")
        equities = json_list(f.raw.get("equity"), "portfolio_history.equity")
        if len(stamps) != len(equities):
            f.fail("equity", f"has {len(equities)} values for {len(stamps)} timestamps")
        points = []
        for i, (stamp, equity) in enumerate(zip(stamps, equities, strict=True)):
            if type(stamp) is not int or not 0 < stamp < 2**34:
                f.fail(f"timestamp[{i}]", f"is not a UNIX time ({shown(stamp)})")
            if equity is None:
                continue
            try:
                value = read_decimal(equity)
            except ValueError as err:
                f.fail(f"equity[{i}]", f"is not readable ({shown(equity)}: {err})")
            points.append(EquityPoint(datetime.fromtimestamp(stamp, UTC), value))
        return points


def parse_latest_trade(raw: Any, symbol: str) -> Decimal:
    """The price of GET /v2/stocks/{symbol}/trades/latest: a JSON number, through its text."""
    with translated():
        f = Fields(raw, "latest trade")
        named = f.optional(read_text, "symbol")
        if named and named.upper() != symbol.upper():
            f.fail("symbol", f"is {shown(named)}, not {symbol}")
        trade = Fields(f.raw.get("trade"), "latest trade.trade")
        price = trade.required(read_decimal, "p")
        if price <= 0:
            trade.fail("p", f"is not a positive price ({price})")
        return price


def parse_canceled_orders(raw: Any) -> list[SymbolOutcome]:
    """The 207 answer of DELETE /v2/orders: one entry per order, keyed by its id."""
    return _multi_status(raw, "cancel-all", "id", order_required=False)


def parse_closed_positions(raw: Any) -> list[SymbolOutcome]:
    """The 207 answer of DELETE /v2/positions: one entry per symbol; a closed one carries the
    closing order."""
    return _multi_status(raw, "close-all", "symbol", order_required=True)


def _multi_status(raw: Any, where: str, key: str, *, order_required: bool) -> list[SymbolOutcome]:
    with translated():
        outcomes = []
        for index, item in enumerate(json_list(raw, where)):
            f = Fields(item, f"{where}[{index}]")
            status = f.raw.get("status")
            if type(status) is not int or not 100 <= status <= 599:
                f.fail("status", "is not an HTTP status (an integer)")
            body = f.raw.get("body")
            if not 200 <= status < 300:
                message = body.get("message") if type(body) is dict else None
                shown = one_line(message) if type(message) is str else "failed"
                error = f"Alpaca {status}: {shown}"
                outcomes.append(SymbolOutcome(f.required(read_text, key), status, None, error))
                continue
            if body is None and order_required:
                f.fail("body", "is missing: a closed position carries its closing order")
            order = None if body is None else _order(Fields(body, f"{f.where}.body"))
            outcomes.append(SymbolOutcome(f.required(read_text, key), status, order, None))
        return outcomes


# -- the values inside -----------------------------------------------------------------------


def _order(f: Fields) -> Order:
    legs = f.raw.get("legs")
    if legs is not None and type(legs) is not list:
        f.fail("legs", "is not a list")
    return Order(
        id=f.required(read_text, "id"),
        client_order_id=f.optional(read_text, "client_order_id") or "",
        symbol=f.required(read_text, "symbol"),
        side=f.optional(read_text, "side") or "",
        type=f.optional(read_text, "type") or f.optional(read_text, "order_type") or "",
        status=f.required(read_text, "status"),  # kept as sent: `held` and future ones too
        qty=f.optional(read_amount, "qty"),
        filled_qty=f.required(read_amount, "filled_qty"),  # a fill is never assumed to be 0
        filled_avg_price=f.optional(read_amount, "filled_avg_price"),
        limit_price=f.optional(read_amount, "limit_price"),
        stop_price=f.optional(read_amount, "stop_price"),
        order_class=f.optional(read_text, "order_class") or "",
        submitted_at=f.optional(read_time, "submitted_at"),
        filled_at=f.optional(read_time, "filled_at"),
        canceled_at=f.optional(read_time, "canceled_at"),
        legs=tuple(_order(Fields(leg, f"{f.where}.legs[{i}]")) for i, leg in
                   enumerate(legs or ())),
        time_in_force=f.optional(read_text, "time_in_force") or "",
        replaced_by=f.optional(read_text, "replaced_by") or None,
        replaces=f.optional(read_text, "replaces") or None,
    )


def _position(f: Fields) -> BrokerPosition:
    qty = f.required(read_decimal, "qty")
    return BrokerPosition(
        symbol=f.required(read_text, "symbol"),
        side=f.optional(read_text, "side") or ("short" if qty < 0 else "long"),
        qty=qty,
        avg_entry_price=f.optional(read_decimal, "avg_entry_price"),
        current_price=f.optional(read_decimal, "current_price"),
        market_value=f.optional(read_decimal, "market_value"),
        unrealized_pl=f.optional(read_decimal, "unrealized_pl"),
    )


