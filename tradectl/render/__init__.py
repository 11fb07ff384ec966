"""All terminal output. This module: consoles, one-line errors and warnings and number formats;
`json.py` writes every --json document; one sibling module per command renders its results."""

from __future__ import annotations

import sys
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str, hint: str | None = None) -> None:
    """One line on stderr."""
    line = f"error: {message}" + (f" ({hint})" if hint else "")
    sys.stderr.write(" ".join(line.splitlines()) + "\n")  # any line break: \r, \v, U+2028...
    sys.stderr.flush()


def warning(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def price_text(value: Decimal) -> str:
    """A price as Alpaca ticks it (145.00, 0.1234); an average finer than the tick keeps its
    digits rather than being rounded."""
    places = Decimal("0.01") if abs(value) >= 1 or value == 0 else Decimal("0.0001")
    on_tick = value.quantize(places)
    return format(on_tick if on_tick == value else value.normalize(), "f")


def cents(value: Decimal) -> str:
    """Money as text with at least cents (-12.5 -> -12.50); finer digits are kept, not rounded."""
    on_cents = value.quantize(Decimal("0.01"))
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
    """An amount of money: -$1,257.50."""
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def quantity(value: Decimal | None) -> str:
    return "-" if value is None else quantity_text(value)


# How a position's status is coloured wherever it is shown.
STATUS_STYLE = {
    "open": "green", "pending": "yellow", "closing": "yellow", "closed": "dim",
    "cancelled": "dim", "rejected": "red", "failed": "red",
}
