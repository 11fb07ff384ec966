"""The field readers under wire.py: an answer's JSON decoded with its numbers kept as text,
one object read field by field (`Fields`, naming the field that could not be read), and the
value rules wire.py's docstring states (plain decimals, RFC 3339 times with an offset, JSON
booleans). Anything unreadable raises `Unreadable`; `translated()` turns it, and whatever else
reading raised, into BrokerProtocolError."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

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


class Unreadable(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):  # which of two values is meant? neither can be trusted
        names = [name for name, _ in pairs]
        repeated = next(n for n in names if names.count(n) > 1)
        raise Unreadable(f"the key {repeated!r}", "appears twice in one object")
    return found


def decode(content: bytes) -> Any:
    """The JSON of an answer: floats stay text (JsonNumber), NaN/Infinity too (read as such
    they are refused), an object with a repeated key is refused."""
    try:
        return json.loads(content, parse_float=JsonNumber, parse_constant=JsonNumber,
                          object_pairs_hook=_object)
    except Unreadable as err:
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
    return (code if type(code) is int else None), one_line(body["message"])


def one_line(message: str) -> str:
    return " ".join(message.split())[:300]


@contextmanager
def translated() -> Iterator[None]:
    """Whatever reading an answer raises becomes BrokerProtocolError (the outcome of a write is
    unknown: treated like a timeout)."""
    try:
        yield
    except Unreadable as err:
        raise BrokerProtocolError(f"Alpaca sent an answer tradectl cannot read: {err}",
                                  field=err.field) from None
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError,
            RecursionError) as err:
        raise BrokerProtocolError(
            f"Alpaca sent an answer tradectl cannot read ({type(err).__name__})") from None


def json_list(raw: Any, where: str) -> list[Any]:
    if type(raw) is not list:
        raise Unreadable(where, "is null" if raw is None else "is not a list")
    return raw


class Fields:
    """One JSON object of an answer, read field by field; `where` names it in errors."""

    def __init__(self, raw: Any, where: str) -> None:
        if type(raw) is not dict:
            raise Unreadable(where, "is null" if raw is None else "is not a JSON object")
        self.raw: dict[str, Any] = raw
        self.where = where

    def fail(self, name: str, problem: str) -> NoReturn:
        raise Unreadable(f"{self.where}.{name}", problem)

    def optional(self, read: Callable[[Any], T], name: str) -> T | None:
        """None when the field is absent or null (or "" for a number or a time)."""
        value = self.raw.get(name)
        if value is None or (value == "" and read is not read_text and read is not read_flag):
            return None
        try:
            return read(value)
        except (ValueError, ArithmeticError) as err:  # OverflowError is an ArithmeticError
            self.fail(name, f"is not readable ({shown(value)}: {err})")

    def required(self, read: Callable[[Any], T], name: str) -> T:
        value = self.optional(read, name)
        if value is None or value == "":
            self.fail(name, "is missing" if self.raw.get(name) is None else "is empty")
        return value


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_text(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("not a string")
    return value


def read_flag(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("not a JSON boolean")
    return value


def read_decimal(value: Any) -> Decimal:
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


def read_amount(value: Any) -> Decimal:
    """A quantity or a price of an order: never negative."""
    amount = read_decimal(value)
    if amount < 0:
        raise ValueError("negative")
    return amount


def read_time(value: Any) -> datetime:
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
