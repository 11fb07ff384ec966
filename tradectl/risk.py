"""Pure risk rules: input validation on Alpaca's tick, bracket ordering, pre-trade checks and the
daily loss-limit decision. Plain values in, verdicts out; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Literal, Protocol

from tradectl.domain.calendar import trading_day_start
from tradectl.domain.money import CENT, Money, Price, dollars, price_text
from tradectl.errors import InputError

Side = Literal["buy", "sell"]


class BracketSpec(Protocol):
    """What the rules read of a bracket (broker.BracketRequest has it): risk imports no adapter."""

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

SUB_DOLLAR_TICK = Decimal("0.0001")
MAX_QTY = 1_000_000
MAX_PRICE = Decimal("1000000")

# Upper-case letters, digits and one class suffix (BRK.B); Alpaca equity symbols fit this.
_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,9}(\.[A-Z]{1,3})?")
_PLAIN_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,12})?")
_DOLLARS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")


def tick_for(price: Decimal) -> Decimal:
    """Alpaca's minimum price increment: a cent at or above $1, a hundredth of a cent below."""
    return CENT if price >= 1 else SUB_DOLLAR_TICK


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


def parse_dollars(text: str, option: str) -> Decimal:
    """A positive amount of dollars and cents (`500`, `250.50`): no signs, exponents or
    fractions of a cent."""
    value = text.strip()
    if not _DOLLARS.fullmatch(value) or Decimal(value) <= 0:
        raise InputError(f"{option} must be a positive dollar amount such as 500 or 250.50, "
                         f"got {text!r}")
    return Decimal(value)


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


@dataclass(frozen=True)
class RiskLimits:
    max_open_positions: int
    max_position_notional: Decimal
    max_risk_per_trade: Decimal
    daily_loss_limit: Decimal


@dataclass(frozen=True)
class BookState:
    """What the checks need to know about the account and the database, gathered by the caller.

    `open_symbols` / `open_count`: the live positions that count for this open (broker-backed
    ones for a broker-backed open, local-only ones without a broker). `unknown_symbols`: rows
    whose order outcome Alpaca has not settled yet. `untracked`: positions the broker holds that
    tradectl does not track, by symbol, with their quantity. `day_pnl` and `buying_power` are None
    when no broker is configured.
    """

    open_symbols: frozenset[str]
    open_count: int
    day_pnl: Decimal | None
    buying_power: Decimal | None
    unknown_symbols: frozenset[str] = frozenset()
    untracked: tuple[tuple[str, Decimal], ...] = ()
    loss_baseline: Decimal | None = None  # a forced resume's day P&L, while it applies


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str
    figures: dict[str, str]


@dataclass(frozen=True)
class RuleCheck:
    """One pre-trade rule as it judged the trade: passed or not, why, with its figures."""

    rule: str
    passed: bool
    message: str
    figures: dict[str, str]

    def refusal(self) -> Refusal:
        return Refusal(self.rule, self.message, self.figures)


def trade_exposure(spec: BracketSpec, base: Decimal | None) -> tuple[Decimal, Decimal]:
    """(notional, risk) of the trade. Without a base price (market entry, no broker) assume the
    worst case the bracket allows: the base at the far end from the stop."""
    if base is None:
        far = max(spec.stop, spec.target)
        return spec.qty * far, spec.qty * abs(spec.target - spec.stop)
    return spec.qty * base, spec.qty * abs(base - spec.stop)


def pre_trade_refusal(
    spec: BracketSpec, base: Decimal | None, book: BookState, limits: RiskLimits,
    budget: Decimal | None = None,
) -> Refusal | None:
    """The first rule the trade breaks, or None."""
    failed = next((c for c in pre_trade_checks(spec, base, book, limits, budget)
                   if not c.passed), None)
    return failed.refusal() if failed is not None else None


def pre_trade_checks(
    spec: BracketSpec, base: Decimal | None, book: BookState, limits: RiskLimits,
    budget: Decimal | None = None,
) -> list[RuleCheck]:
    """Every rule's verdict, in the order they are applied: the cheapest facts first.
    `budget`: `open --risk`'s dollars, refused above MAX_RISK_PER_TRADE whatever the whole
    shares it buys happen to risk."""
    notional, risk = trade_exposure(spec, base)
    risk_check = _risk_check(risk, limits)
    if budget is not None and budget > limits.max_risk_per_trade:
        risk_check = RuleCheck(
            "max_risk_per_trade", False, f"risk budget {dollars(budget)} (--risk) is above "
            f"MAX_RISK_PER_TRADE {dollars(limits.max_risk_per_trade)}",
            {"risk_budget": str(budget), "risk": str(risk),
             "limit": str(limits.max_risk_per_trade)})
    return [_symbol_check(spec, book), _count_check(book, limits),
            _notional_check(notional, limits), risk_check,
            _loss_check(book, limits), _buying_power_check(notional, book)]


def _symbol_check(spec: BracketSpec, book: BookState) -> RuleCheck:
    rule, untracked = "open_position_in_symbol", dict(book.untracked)
    if spec.symbol in book.unknown_symbols:
        return RuleCheck(
            rule, False,
            f"{spec.symbol} has an order whose outcome is not known yet: wait until Alpaca "
            "settles it (`tradectl watch --once` or `tradectl status`)",
            {"symbol": spec.symbol, "unknown": "true"})
    if spec.symbol in book.open_symbols:
        return RuleCheck(rule, False, f"{spec.symbol} already has an open or pending position",
                         {"symbol": spec.symbol})
    if spec.symbol in untracked:
        return RuleCheck(
            rule, False,
            f"Alpaca holds {untracked[spec.symbol]:f} {spec.symbol} that tradectl did not open",
            {"symbol": spec.symbol, "untracked_qty": str(untracked[spec.symbol])})
    return RuleCheck(rule, True, f"no open, pending or untracked {spec.symbol} position",
                     {"symbol": spec.symbol})


def _count_check(book: BookState, limits: RiskLimits) -> RuleCheck:
    held = book.open_count + len(book.untracked)
    figures = {"open_positions": str(held), "limit": str(limits.max_open_positions)}
    passed = held < limits.max_open_positions
    return RuleCheck("max_open_positions", passed,
                     f"{held} positions are open; MAX_OPEN_POSITIONS is "
                     f"{limits.max_open_positions}", figures)


def _notional_check(notional: Decimal, limits: RiskLimits) -> RuleCheck:
    return _at_most("max_position_notional", "notional", notional, "",
                    "MAX_POSITION_NOTIONAL", limits.max_position_notional)


def _risk_check(risk: Decimal, limits: RiskLimits) -> RuleCheck:
    return _at_most("max_risk_per_trade", "risk", risk, " (qty x |price - stop|)",
                    "MAX_RISK_PER_TRADE", limits.max_risk_per_trade)


def _at_most(rule: str, what: str, value: Decimal, how: str, setting: str,
             limit: Decimal) -> RuleCheck:
    passed = value <= limit
    return RuleCheck(rule, passed, f"{what} {dollars(value)}{how} is "
                     f"{'within' if passed else 'above'} {setting} {dollars(limit)}",
                     {what: str(value), "limit": str(limit)})


def _loss_check(book: BookState, limits: RiskLimits) -> RuleCheck:
    rule = "daily_loss_limit"
    figures = {"day_pnl": str(book.day_pnl), "loss_baseline": str(book.loss_baseline),
               "limit": str(limits.daily_loss_limit)}
    if book.day_pnl is None:
        return RuleCheck(rule, True, "the day's P&L is not known: not checked", figures)
    loss = loss_since_baseline(book.day_pnl, book.loss_baseline)
    since = " since the forced resume" if book.loss_baseline is not None else ""
    if loss_limit_reached(loss, limits.daily_loss_limit):
        return RuleCheck(rule, False, f"the day's loss{since} {dollars(-loss)} is past "
                         f"DAILY_LOSS_LIMIT {dollars(limits.daily_loss_limit)}", figures)
    return RuleCheck(rule, True, f"the day's P&L{since} {dollars(loss)} is short of "
                     f"-DAILY_LOSS_LIMIT {dollars(-limits.daily_loss_limit)}", figures)


def _buying_power_check(notional: Decimal, book: BookState) -> RuleCheck:
    rule = "buying_power"
    figures = {"notional": str(notional), "buying_power": str(book.buying_power)}
    if book.buying_power is None:
        return RuleCheck(rule, True, "no broker: buying power not checked", figures)
    passed = notional <= book.buying_power
    return RuleCheck(rule, passed, f"notional {dollars(notional)} is "
                     f"{'within' if passed else 'above'} the account's buying power "
                     f"{dollars(book.buying_power)}", figures)


def applicable_baseline(baseline: Decimal | None, baseline_at: datetime | None,
                        now: datetime) -> Decimal | None:
    """A forced resume's baseline counts for the rest of its trading day only: the next day
    Alpaca's day P&L starts again from zero."""
    if baseline is None or baseline_at is None:
        return None
    return baseline if trading_day_start(baseline_at) == trading_day_start(now) else None


def loss_since_baseline(day_pnl: Decimal, baseline: Decimal | None) -> Decimal:
    """The P&L the loss limit judges: the day's, or the day's since a forced resume."""
    return day_pnl if baseline is None else day_pnl - baseline


def loss_limit_reason(pnl: Decimal, limit: Decimal, baseline: Decimal | None) -> str:
    """Why the stop was pulled, in the words the cycle, the log and the alert keep."""
    since = (f" since the forced resume (baseline {dollars(baseline)})"
             if baseline is not None else "")
    return (f"daily loss limit: the day's loss{since} {dollars(-pnl)} reached DAILY_LOSS_LIMIT "
            f"{dollars(limit)}")


def loss_limit_reached(day_pnl: Decimal, limit: Decimal) -> bool:
    """The emergency-stop condition: the day's P&L at or below minus the limit."""
    return day_pnl <= -limit


def loss_warning_reached(day_pnl: Decimal, limit: Decimal) -> bool:
    """The early warning: the day's loss past 80% of the limit."""
    return day_pnl <= -(limit * Decimal("0.8"))


def position_pnl(side: str, entry: Decimal, price: Decimal, qty: Decimal) -> Decimal:
    """P&L of `qty` shares entered at `entry`, exited (or marked) at `price`: a short gains when
    the price falls."""
    per_share = price - entry if side == "buy" else entry - price
    return per_share * qty
