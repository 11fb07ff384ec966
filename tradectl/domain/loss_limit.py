"""The daily loss limit: the P&L it judges (the day's, or since a forced resume), when it is
reached, its early warning, and a position's P&L. Plain values in, verdicts out; no I/O."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradectl.domain.calendar import trading_day_start
from tradectl.domain.money import dollars


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
