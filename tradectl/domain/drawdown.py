"""The drawdown from the day's peak (MAX_DRAWDOWN_FROM_PEAK): how far the equity has fallen
below the day's highest equity, and whether that reaches the limit (dollars, or a percentage of
the peak). Figures in, a verdict out; no I/O. `watch` pulls the emergency stop on a tripped
verdict confirmed by a second account read (services/watch/drawdown.py)."""

from __future__ import annotations

from decimal import Decimal

from tradectl.domain.day_rules import WARNING_SHARE, RuleState, RuleVerdict
from tradectl.domain.limits import CENT, Limit, limit_dollars, limit_text

RULE = "drawdown_from_peak"


def day_peak(*seen: Decimal | None) -> Decimal | None:
    """The highest equity among what was seen today (the record, the history, this reading)."""
    known = [value for value in seen if value is not None]
    return max(known) if known else None


def drawdown_from_peak(limit: Limit, peak: Decimal | None,
                       equity: Decimal | None) -> RuleVerdict:
    """Tripped when the equity is the limit or more below the day's peak (a percentage is of
    the peak, rounded down to the cent); a warning from 80% of it."""
    shown = limit_text(limit)
    dollars = limit_dollars(limit, peak)
    if peak is None or equity is None or dollars is None:
        return RuleVerdict(RULE, None if dollars is None else f"{dollars:f}", None, "ok",
                           "the day's peak equity is not known: not checked",
                           {"setting": shown})
    peak = max(peak, equity)
    drop = peak - equity
    figures = {"peak": f"{peak:f}", "equity": f"{equity:f}", "drop": f"{drop:f}",
               "limit": f"{dollars:f}", "setting": shown}
    current = f"{drop.quantize(CENT):f}"
    if drop >= dollars:
        return RuleVerdict(RULE, f"{dollars:f}", current, "tripped",
                           drawdown_reason(peak, equity, dollars), figures)
    state: RuleState = "warning" if drop >= dollars * WARNING_SHARE else "ok"
    return RuleVerdict(RULE, f"{dollars:f}", current, state,
                       f"equity {_money(equity)} is {_money(drop)} below the day's peak "
                       f"{_money(peak)} (MAX_DRAWDOWN_FROM_PEAK {_money(dollars)})", figures)


def drawdown_reason(peak: Decimal, equity: Decimal, limit: Decimal) -> str:
    """Why the stop was pulled, in the words the cycle, the log and the alert keep."""
    return (f"{RULE}: equity {_money(equity)} fell {_money(peak - equity)} from the day's peak "
            f"{_money(peak)}, reaching MAX_DRAWDOWN_FROM_PEAK {_money(limit)}")


def _money(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"
