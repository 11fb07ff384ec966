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

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from tradectl.broker import Account, BrokerPosition, Clock, EquityPoint, Order, SymbolOutcome
from tradectl.errors import BrokerProtocolError

T = TypeVar("T")

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)


class JsonNumber:
    """A JSON number that is not an integer, kept as the text Alpaca sent (never a float)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _Unreadable(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):  # which of two values is meant? neither can be trusted
        names = [name for name, _ in pairs]
        repeated = next(n for n in names if names.count(n) > 1)
        raise _Unreadable(f"the key {repeated!r}", "appears twice in one object")
    return found


def decode(content: bytes) -> Any:
    """The JSON of an answer: floats stay text (JsonNumber), NaN/Infinity too (read as such
    they are refused), an object with a repeated key is refused."""
    try:
        return json.loads(content, parse_float=JsonNumber, parse_constant=JsonNumber,
                          object_pairs_hook=_object)
    except _Unreadable as err:
        raise BrokerProtocolError(f"Alpaca sent an answer tradectl cannot read: {err}",
                                  field=err.field) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BrokerProtocolError("Alpaca sent a malformed (non-JSON) answer") from None


def error_body(content: bytes) -> tuple[int | None, str] | None:
    """(code, message) of Alpaca's error body {"code": ..., "message": ...}, if it is one."""
    try:
        body = decode(content)
    except BrokerProtocolError:
        return None
    if type(body) is not dict or type(body.get("message")) is not str:
        return None
    code = body.get("code")
    return (code if type(code) is int else None), _one_line(body["message"])


def _one_line(message: str) -> str:
    return " ".join(message.split())[:300]


# -- the parse functions: every answer goes through one of these ---------------------------


@contextmanager
def _translated() -> Iterator[None]:
    """Whatever reading an answer raises becomes BrokerProtocolError (the outcome of a write is
    unknown: treated like a timeout)."""
    try:
        yield
    except _Unreadable as err:
        raise BrokerProtocolError(f"Alpaca sent an answer tradectl cannot read: {err}",
                                  field=err.field) from None
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError,
            RecursionError) as err:
        raise BrokerProtocolError(
            f"Alpaca sent an answer tradectl cannot read ({type(err).__name__})") from None


def parse_order(raw: Any, where: str = "order") -> Order:
    with _translated():
        return _order(_Fields(raw, where))


def parse_trade_update(raw: Any) -> Order:
    """One message of the trade_updates stream, {"stream": "trade_updates", "data": {"event":
    ..., "order": {...}}}: the order as it stands after the event (a bracket's entry with its
    legs, a leg alone)."""
    with _translated():
        f = _Fields(raw, "trade update")
        if f.raw.get("stream") != "trade_updates":
            f.fail("stream", "is not trade_updates")
        data = _Fields(f.raw.get("data"), "trade update.data")
        data.required(_text, "event")
        return _order(_Fields(data.raw.get("order"), "trade update.data.order"))


def parse_orders(raw: Any, where: str = "orders") -> list[Order]:
    with _translated():
        return [_order(_Fields(item, f"{where}[{i}]")) for i, item in enumerate(_list(raw, where))]


def parse_positions(raw: Any) -> list[BrokerPosition]:
    with _translated():
        return [_position(_Fields(item, f"positions[{i}]"))
                for i, item in enumerate(_list(raw, "positions"))]


def parse_account(raw: Any) -> Account:
    with _translated():
        f = _Fields(raw, "account")
        equity = f.required(_decimal, "equity")
        portfolio_value = f.optional(_decimal, "portfolio_value")
        return Account(
            account_number=f.optional(_text, "account_number") or "",
            status=f.required(_text, "status"),
            currency=f.optional(_text, "currency") or None,
            cash=f.optional(_decimal, "cash"),
            equity=equity,
            last_equity=f.required(_decimal, "last_equity"),
            portfolio_value=equity if portfolio_value is None else portfolio_value,
            buying_power=f.optional(_decimal, "buying_power"),
            trading_blocked=f.optional(_flag, "trading_blocked"),
            account_blocked=f.optional(_flag, "account_blocked"),
            trade_suspended_by_user=f.optional(_flag, "trade_suspended_by_user"),
        )


def parse_clock(raw: Any) -> Clock:
    """/v2/clock speaks New York time (-04:00 / -05:00): every time comes back in UTC."""
    with _translated():
        f = _Fields(raw, "clock")
        return Clock(
            is_open=f.required(_flag, "is_open"),
            timestamp=f.required(_time, "timestamp"),
            next_open=f.required(_time, "next_open"),
            next_close=f.required(_time, "next_close"),
        )


def parse_equity_history(raw: Any) -> list[EquityPoint]:
    """GET /v2/account/portfolio/history: `timestamp` (UNIX seconds, each window's start) and
    `equity` side by side, of one length. A null equity (a window before the account had any)
    is left out; any other unreadable value fails the whole answer."""
    with _translated():
        f = _Fields(raw, "portfolio_history")
        stamps = _list(f.raw.get("timestamp"), "portfolio_history.timestamp")
        equities = _list(f.raw.get("equity"), "portfolio_history.equity")
        if len(stamps) != len(equities):
            f.fail("equity", f"has {len(equities)} values for {len(stamps)} timestamps")
        points = []
        for i, (stamp, equity) in enumerate(zip(stamps, equities, strict=True)):
            if type(stamp) is not int or not 0 < stamp < 2**34:
                f.fail(f"timestamp[{i}]", f"is not a UNIX time ({_shown(stamp)})")
            if equity is None:
                continue
            try:
                value = _decimal(equity)
            except ValueError as err:
                f.fail(f"equity[{i}]", f"is not readable ({_shown(equity)}: {err})")
            points.append(EquityPoint(datetime.fromtimestamp(stamp, UTC), value))
        return points


def parse_latest_trade(raw: Any, symbol: str) -> Decimal:
    """The price of GET /v2/stocks/{symbol}/trades/latest: a JSON number, through its text."""
    with _translated():
        f = _Fields(raw, "latest trade")
        named = f.optional(_text, "symbol")
        if named and named.upper() != symbol.upper():
            f.fail("symbol", f"is {_shown(named)}, not {symbol}")
        trade = _Fields(f.raw.get("trade"), "latest trade.trade")
        price = trade.required(_decimal, "p")
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
    with _translated():
        outcomes = []
        for index, item in enumerate(_list(raw, where)):
            f = _Fields(item, f"{where}[{index}]")
            status = f.raw.get("status")
            if type(status) is not int or not 100 <= status <= 599:
                f.fail("status", "is not an HTTP status (an integer)")
            body = f.raw.get("body")
            if not 200 <= status < 300:
                message = body.get("message") if type(body) is dict else None
                shown = _one_line(message) if type(message) is str else "failed"
                error = f"Alpaca {status}: {shown}"
                outcomes.append(SymbolOutcome(f.required(_text, key), status, None, error))
                continue
            if body is None and order_required:
                f.fail("body", "is missing: a closed position carries its closing order")
            order = None if body is None else _order(_Fields(body, f"{f.where}.body"))
            outcomes.append(SymbolOutcome(f.required(_text, key), status, order, None))
        return outcomes


# -- the values inside -----------------------------------------------------------------------


def _order(f: _Fields) -> Order:
    legs = f.raw.get("legs")
    if legs is not None and type(legs) is not list:
        f.fail("legs", "is not a list")
    return Order(
        id=f.required(_text, "id"),
        client_order_id=f.optional(_text, "client_order_id") or "",
        symbol=f.required(_text, "symbol"),
        side=f.optional(_text, "side") or "",
        type=f.optional(_text, "type") or f.optional(_text, "order_type") or "",
        status=f.required(_text, "status"),  # kept as sent: `held` and future ones too
        qty=f.optional(_amount, "qty"),
        filled_qty=f.required(_amount, "filled_qty"),  # a fill is never assumed to be 0
        filled_avg_price=f.optional(_amount, "filled_avg_price"),
        limit_price=f.optional(_amount, "limit_price"),
        stop_price=f.optional(_amount, "stop_price"),
        order_class=f.optional(_text, "order_class") or "",
        submitted_at=f.optional(_time, "submitted_at"),
        filled_at=f.optional(_time, "filled_at"),
        canceled_at=f.optional(_time, "canceled_at"),
        legs=tuple(_order(_Fields(leg, f"{f.where}.legs[{i}]")) for i, leg in
                   enumerate(legs or ())),
        time_in_force=f.optional(_text, "time_in_force") or "",
        replaced_by=f.optional(_text, "replaced_by") or None,
        replaces=f.optional(_text, "replaces") or None,
    )


def _position(f: _Fields) -> BrokerPosition:
    qty = f.required(_decimal, "qty")
    return BrokerPosition(
        symbol=f.required(_text, "symbol"),
        side=f.optional(_text, "side") or ("short" if qty < 0 else "long"),
        qty=qty,
        avg_entry_price=f.optional(_decimal, "avg_entry_price"),
        current_price=f.optional(_decimal, "current_price"),
        market_value=f.optional(_decimal, "market_value"),
        unrealized_pl=f.optional(_decimal, "unrealized_pl"),
    )


def _list(raw: Any, where: str) -> list[Any]:
    if type(raw) is not list:
        raise _Unreadable(where, "is null" if raw is None else "is not a list")
    return raw


class _Fields:
    """One JSON object of an answer, read field by field; `where` names it in errors."""

    def __init__(self, raw: Any, where: str) -> None:
        if type(raw) is not dict:
            raise _Unreadable(where, "is null" if raw is None else "is not a JSON object")
        self.raw: dict[str, Any] = raw
        self.where = where

    def fail(self, name: str, problem: str) -> NoReturn:
        raise _Unreadable(f"{self.where}.{name}", problem)

    def optional(self, read: Callable[[Any], T], name: str) -> T | None:
        """None when the field is absent or null (or "" for a number or a time)."""
        value = self.raw.get(name)
        if value is None or (value == "" and read is not _text and read is not _flag):
            return None
        try:
            return read(value)
        except (ValueError, ArithmeticError) as err:  # OverflowError is an ArithmeticError
            self.fail(name, f"is not readable ({_shown(value)}: {err})")

    def required(self, read: Callable[[Any], T], name: str) -> T:
        value = self.optional(read, name)
        if value is None or value == "":
            self.fail(name, "is missing" if self.raw.get(name) is None else "is empty")
        return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("not a string")
    return value


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("not a JSON boolean")
    return value


def _decimal(value: Any) -> Decimal:
    if type(value) is str:
        text = value
    elif type(value) is JsonNumber:
        text = value.text
    elif type(value) is int:
        text = str(value)
    else:
        raise ValueError("not a number")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError("not a plain decimal")
    return Decimal(text)


def _amount(value: Any) -> Decimal:
    """A quantity or a price of an order: never negative."""
    amount = _decimal(value)
    if amount < 0:
        raise ValueError("negative")
    return amount


def _time(value: Any) -> datetime:
    match = _RFC3339.fullmatch(value) if type(value) is str else None
    if match is None:
        raise ValueError("not an RFC 3339 time with an offset")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8)
    zone = UTC
    if offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if minutes > 59:
            raise ValueError("offset minutes past 59")
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))  # ValueError past 24h
    moment = datetime(year, month, day, hour, minute, second,  # ValueError on a leap second
                      int(fraction[:6].ljust(6, "0")), tzinfo=zone)
    return moment.astimezone(UTC)  # OverflowError at the ends of the calendar
