"""Money, prices and quantities: Decimal always, never float. What kind of number a value is
(`Price`, `Money`, `Quantity`: the one JSON writer formats each its way), and how numbers read,
the same in every output: prices on Alpaca's tick, money in dollars and cents, quantities as
whole shares where whole. Pure functions; render and the services' messages use them alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

Price = Annotated[Decimal, "price"]  # on Alpaca's tick: 145.00, 0.1234
Money = Annotated[Decimal, "money"]  # dollars: at least cents, finer digits kept
Quantity = Annotated[Decimal, "quantity"]  # shares: 10, 2.5

CENT = Decimal("0.01")


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
