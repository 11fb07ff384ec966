"""Money, prices and quantities: Decimal always, never float. What kind of number a value is
(`Price`, `Money`, `Quantity`: the one JSON writer formats each its way); Alpaca's tick and the
prices and dollar amounts a user may type; and how numbers read, the same in every output:
prices on Alpaca's tick, money in dollars and cents, quantities as whole shares where whole.
Pure functions; render and the services' messages use them alike."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from tradectl.domain.limits import Limit, PercentOf
from tradectl.errors import InputError

Price = Annotated[Decimal, "price"]  # on Alpaca's tick: 145.00, 0.1234
Money = Annotated[Decimal, "money"]  # dollars: at least cents, finer digits kept
Quantity = Annotated[Decimal, "quantity"]  # shares: 10, 2.5

CENT = Decimal("0.01")
SUB_DOLLAR_TICK = Decimal("0.0001")
MAX_PRICE = Decimal("1000000")

_PLAIN_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,12})?")
_DOLLARS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
_PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?%")


def tick_for(price: Decimal) -> Decimal:
    """Alpaca's minimum price increment: a cent at or above $1, a hundredth of a cent below."""
    return CENT if price >= 1 else SUB_DOLLAR_TICK


def parse_dollars(text: str, option: str) -> Decimal:
    """A positive amount of dollars and cents (`500`, `250.50`): no signs, exponents or
    fractions of a cent."""
    value = text.strip()
    if not _DOLLARS.fullmatch(value) or Decimal(value) <= 0:
        raise InputError(f"{option} must be a positive dollar amount such as 500 or 250.50, "
                         f"got {text!r}")
    return Decimal(value)


def parse_risk_budget(text: str) -> Limit:
    """`open --risk`: dollars (`250`), or a percentage of the account's equity (`0.5%`)."""
    value = text.strip()
    if not value.endswith("%"):
        return parse_dollars(value, "--risk")
    if not _PERCENT.fullmatch(value) or not 0 < Decimal(value[:-1]) <= 100:
        raise InputError(f"--risk must be dollars such as 250, or a percentage of the equity "
                         f"from 0.0001% to 100% such as 0.5%, got {text!r}")
    return PercentOf(Decimal(value[:-1]))


def parse_price(text: str, option: str) -> Decimal:
    """A positive price on Alpaca's tick; `145.000` is accepted as 145.00, `145.001` is not."""
    value = text.strip()
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise InputError(f"{option} must be a positive price such as 145.20, got {text!r}")
    try:
        price = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InputError(f"{option} must be a positive price, got {text!r}") from None
    if price <= 0 or price > MAX_PRICE:
        raise InputError(f"{option} must be above 0 and at most {MAX_PRICE}, got {text!r}")
    tick = tick_for(price)
    on_tick = price.quantize(tick)
    if on_tick != price:
        places = "two decimals at or above $1" if tick == CENT else "four decimals below $1"
        raise InputError(f"{option} {value} is off Alpaca's tick: use at most {places}")
    return on_tick


def price_text(value: Decimal) -> str:
    """A price as Alpaca ticks it (145.00, 0.1234); an average finer than the tick keeps its
    digits rather than being rounded."""
    places = CENT if abs(value) >= 1 or value == 0 else Decimal("0.0001")
    on_tick = value.quantize(places)
    return format(on_tick if on_tick == value else value.normalize(), "f")


def cents(value: Decimal) -> str:
    """Money as text with at least cents (-12.5 -> -12.50); finer digits are kept, not rounded."""
    on_cents = value.quantize(CENT)
    return format(on_cents if on_cents == value else value.normalize(), "f")


def quantity_text(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral() else format(value.normalize(), "f")


def money(value: Decimal | None) -> str:
    """For tables: a price with thousands separators, '-' when unknown."""
    if value is None:
        return "-"
    whole, _, fraction = price_text(abs(value)).partition(".")
    sign = "-" if value < 0 else ""
    return f"{sign}{int(whole):,}" + (f".{fraction}" if fraction else "")


def dollars(value: Decimal | None) -> str:
    """An amount of money, everywhere a person reads one: -$1,257.50, never -$0.00."""
    if value is None:
        return "-"
    cents_ = value.quantize(CENT)
    sign = "-" if cents_ < 0 else ""
    return f"{sign}${abs(cents_):,.2f}"


def quantity(value: Decimal | None) -> str:
    return "-" if value is None else quantity_text(value)


def price_or_none(value: Decimal | None) -> str:
    return "unknown" if value is None else price_text(value)
