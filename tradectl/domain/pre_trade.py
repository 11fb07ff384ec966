"""The pre-trade rules: the limits, the book they judge against, and each rule's verdict on a
trade, cheapest facts first. Plain values in, verdicts out; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tradectl.domain.bracket import BracketSpec
from tradectl.domain.day_rules import DayLimits
from tradectl.domain.limits import Limit, is_percent, limit_dollars, limit_text
from tradectl.domain.loss_limit import loss_limit_reached, loss_since_baseline
from tradectl.domain.money import dollars


@dataclass(frozen=True)
class RiskLimits:
    max_open_positions: int
    max_position_notional: Decimal
    max_risk_per_trade: Limit  # dollars, or a percentage of the day's starting equity
    daily_loss_limit: Limit  # the same
    day: DayLimits = field(default_factory=DayLimits)  # the day's entry rules


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
    day_start_equity: Decimal | None = None  # Alpaca's last_equity: a percentage limit's base


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
    risk_limit = limit_dollars(limits.max_risk_per_trade, book.day_start_equity)
    risk_check = _risk_check(risk, risk_limit, limits.max_risk_per_trade)
    if budget is not None and risk_limit is not None and budget > risk_limit:
        risk_check = RuleCheck(
            "max_risk_per_trade", False, f"risk budget {dollars(budget)} (--risk) is above "
            f"MAX_RISK_PER_TRADE {_limit_shown(risk_limit, limits.max_risk_per_trade)}",
            {"risk_budget": str(budget), "risk": str(risk), "limit": str(risk_limit)})
    loss_limit = limit_dollars(limits.daily_loss_limit, book.day_start_equity)
    return [_symbol_check(spec, book), _count_check(book, limits),
            _notional_check(notional, limits), risk_check,
            _loss_check(book, loss_limit, limits.daily_loss_limit),
            _buying_power_check(notional, book)]


def _limit_shown(dollars_limit: Decimal, setting: Limit) -> str:
    """`$500.00`, or `$500.00 (1% of the day's starting equity)`."""
    shown = dollars(dollars_limit)
    return f"{shown} ({limit_text(setting)} of the day's starting equity)" \
        if is_percent(setting) else shown


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


def _risk_check(risk: Decimal, limit: Decimal | None, setting: Limit) -> RuleCheck:
    if limit is None:
        return RuleCheck("max_risk_per_trade", True, f"MAX_RISK_PER_TRADE {limit_text(setting)}"
                         " needs the day's starting equity: not checked without a broker",
                         {"risk": str(risk), "limit": "None"})
    return _at_most("max_risk_per_trade", "risk", risk, " (qty x |price - stop|)",
                    "MAX_RISK_PER_TRADE", limit, _limit_shown(limit, setting))


def _at_most(rule: str, what: str, value: Decimal, how: str, setting: str,
             limit: Decimal, shown: str | None = None) -> RuleCheck:
    passed = value <= limit
    return RuleCheck(rule, passed, f"{what} {dollars(value)}{how} is "
                     f"{'within' if passed else 'above'} {setting} {shown or dollars(limit)}",
                     {what: str(value), "limit": str(limit)})


def _loss_check(book: BookState, limit: Decimal | None, setting: Limit) -> RuleCheck:
    rule = "daily_loss_limit"
    figures = {"day_pnl": str(book.day_pnl), "loss_baseline": str(book.loss_baseline),
               "limit": str(limit)}
    if book.day_pnl is None or limit is None:
        return RuleCheck(rule, True, "the day's P&L is not known: not checked", figures)
    loss = loss_since_baseline(book.day_pnl, book.loss_baseline)
    since = " since the forced resume" if book.loss_baseline is not None else ""
    if loss_limit_reached(loss, limit):
        return RuleCheck(rule, False, f"the day's loss{since} {dollars(-loss)} is past "
                         f"DAILY_LOSS_LIMIT {_limit_shown(limit, setting)}", figures)
    return RuleCheck(rule, True, f"the day's P&L{since} {dollars(loss)} is short of "
                     f"-DAILY_LOSS_LIMIT -{_limit_shown(limit, setting)}", figures)


def _buying_power_check(notional: Decimal, book: BookState) -> RuleCheck:
    rule = "buying_power"
    figures = {"notional": str(notional), "buying_power": str(book.buying_power)}
    if book.buying_power is None:
        return RuleCheck(rule, True, "no broker: buying power not checked", figures)
    passed = notional <= book.buying_power
    return RuleCheck(rule, passed, f"notional {dollars(notional)} is "
                     f"{'within' if passed else 'above'} the account's buying power "
                     f"{dollars(book.buying_power)}", figures)
