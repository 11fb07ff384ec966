"""A bracket's input and shape: the symbol, the side and the whole shares, the stop and target on
the right sides of the price, and the quantity a dollar risk buys. Plain values in, verdicts
out; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from tradectl.domain.money import CENT, Money, Price, dollars, price_text
from tradectl.errors import InputError

Side = Literal["buy", "sell"]


class BracketSpec(Protocol):
    """What the rules read of a bracket (broker.BracketRequest has it): the domain imports no
    adapter."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def qty(self) -> int: ...
    @property
    def stop(self) -> Decimal: ...
    @property
    def target(self) -> Decimal: ...
    @property
    def entry(self) -> Decimal | None: ...


MAX_QTY = 1_000_000

# Upper-case letters, digits and one class suffix (BRK.B); Alpaca equity symbols fit this.
_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,9}(\.[A-Z]{1,3})?")


def parse_symbol(text: str) -> str:
    # ASCII first: upper-casing turns "ß" into "SS" and "ﬁ" into "FI", real tickers.
    stripped = text.strip()
    symbol = stripped.upper() if stripped.isascii() else ""
    if not _SYMBOL.fullmatch(symbol):
        raise InputError(f"symbol {text!r} is not a valid ticker (letters, e.g. AAPL or BRK.B)")
    return symbol


def parse_qty(text: str) -> int:
    """Bracket orders take whole shares only."""
    value = text.strip()
    whole = value.isascii() and value.isdigit() and len(value) <= 7
    if not whole or not 0 < int(value) <= MAX_QTY:
        raise InputError(
            f"--qty must be a whole number of shares from 1 to {MAX_QTY}, got {text!r}"
        )
    return int(value)


def parse_side(text: str) -> Side:
    side = text.strip().lower()
    if side == "buy":
        return "buy"
    if side == "sell":
        return "sell"
    raise InputError(f"--side must be buy or sell, got {text!r}")


def check_bracket_shape(spec: BracketSpec) -> None:
    """What can be checked before knowing the market price: stop and target on the right sides."""
    if spec.side == "buy" and not spec.stop < spec.target:
        raise InputError(f"for a buy, --stop ({price_text(spec.stop)}) must be below --target "
                         f"({price_text(spec.target)})")
    if spec.side == "sell" and not spec.stop > spec.target:
        raise InputError(
            f"for a sell, --stop ({price_text(spec.stop)}) must be above --target "
            f"({price_text(spec.target)})"
        )
    if spec.entry is not None:
        check_bracket_against_base(spec, spec.entry, base_name="--entry")


def check_bracket_against_base(spec: BracketSpec, base: Decimal, *, base_name: str) -> None:
    """For a buy stop < base < target, for a sell the reverse, each at least a cent away."""
    check_exit_prices(spec.side, spec.stop, spec.target, base, base_name=base_name)


def check_exit_prices(side: str, stop: Decimal, target: Decimal, base: Decimal, *,
                      base_name: str) -> None:
    """The exits of a position entered on `side` against a base price (the entry, or the last
    trade): a long's stop at least a cent below it and its target at least a cent above, a
    short's the reverse."""
    shown = price_text(base)
    if side == "buy":
        if stop > base - CENT:
            raise InputError(
                f"--stop {price_text(stop)} must be at least 0.01 below {base_name} {shown} "
                "for a buy"
            )
        if target < base + CENT:
            raise InputError(
                f"--target {price_text(target)} must be at least 0.01 above {base_name} {shown} "
                "for a buy"
            )
    else:
        if stop < base + CENT:
            raise InputError(
                f"--stop {price_text(stop)} must be at least 0.01 above {base_name} {shown} "
                "for a sell"
            )
        if target > base - CENT:
            raise InputError(
                f"--target {price_text(target)} must be at least 0.01 below {base_name} {shown} "
                "for a sell"
            )


@dataclass(frozen=True)
class RiskSizing:
    """`open --risk`: the most whole shares whose risk, qty x |price - stop|, fits the budget.
    `price` is the limit entry, or the last trade for a market entry."""

    budget: Money
    price: Price
    stop: Price
    per_share: Price  # |price - stop|
    qty: int
    risk: Money  # qty x per_share: at most the budget


def size_by_risk(budget: Decimal, price: Decimal, stop: Decimal) -> RiskSizing:
    """The quantity for a dollar risk budget; InputError (with the figures) when not even one
    share fits, or when it would be more shares than an order may carry."""
    per_share = abs(price - stop)
    if per_share == 0:
        raise InputError(f"--risk cannot size a trade whose stop {stop} is at the price {price}")
    qty = int(budget // per_share)  # exact: Decimal integer division, both positive
    figures = (f"one share risks ${price_text(per_share)} (|{price_text(price)} - "
               f"{price_text(stop)}|), --risk is {dollars(budget)}")
    if qty == 0:
        raise InputError(f"--risk {dollars(budget)} buys no share: {figures}",
                         hint="raise --risk or move --stop closer")
    if qty > MAX_QTY:
        raise InputError(f"--risk {dollars(budget)} would buy {qty:,} shares, more than "
                         f"{MAX_QTY:,}: {figures}")
    return RiskSizing(budget, price, stop, per_share, qty, qty * per_share)
