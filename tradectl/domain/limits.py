"""A limit set in dollars (`500`) or as a percentage of a base (`1%`): the base is the day's
starting equity (Alpaca's `last_equity`) for the day's limits, the equity for `open --risk`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

CENT = Decimal("0.01")


class Threshold(Protocol):
    """What a percentage-or-dollars limit is (config.Amount has it)."""

    @property
    def value(self) -> Decimal: ...
    @property
    def percent(self) -> bool: ...


@dataclass(frozen=True)
class PercentOf:
    """A percentage of a base the caller names (`open --risk 0.5%`: of the equity)."""

    value: Decimal
    percent: bool = True


Limit = Decimal | Threshold  # plain dollars, or a threshold that may be a percentage


def limit_dollars(limit: Limit, base: Decimal | None) -> Decimal | None:
    """The limit in dollars (a percentage of `base`, rounded down to the cent); None for a
    percentage whose base is not known."""
    if isinstance(limit, Decimal):
        return limit
    if not limit.percent:
        return limit.value
    if base is None:
        return None
    return (base * limit.value / 100).quantize(CENT, rounding=ROUND_DOWN)


def limit_text(limit: Limit) -> str:
    """As set: `1%`, or `$500.00`."""
    if isinstance(limit, Decimal):
        return f"${limit:,.2f}"
    return f"{limit.value}%" if limit.percent else f"${limit.value:,.2f}"


def is_percent(limit: Limit) -> bool:
    return not isinstance(limit, Decimal) and limit.percent
