"""The day's entry rules on what `open` and `status` read: the figures gathered from the journal,
the account and Alpaca's clock, judged by domain/day_rules.py."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradectl.broker import Account, Clock
from tradectl.db.journal import Journal
from tradectl.domain.calendar import trading_day_start
from tradectl.domain.day_rules import (
    FLATTEN_RULE,
    ClosedTrade,
    DayFigures,
    DayLimits,
    RuleVerdict,
    day_verdicts,
)
from tradectl.domain.pre_trade import RuleCheck


def day_rule_verdicts(journal: Journal, limits: DayLimits, *, now: datetime,
                      account: Account | None, clock: Clock | None,
                      day_pnl: Decimal | None) -> list[RuleVerdict]:
    """Each configured rule's verdict. Time is Alpaca's clock when it was read (the trading
    day, the cutoff, the cooldown's end), else `now`; only the reads a rule needs are made."""
    if not limits.any:
        return []
    moment = clock.timestamp if clock is not None else now
    trades = (journal.entries_since(trading_day_start(moment))
              if limits.max_trades_per_day is not None else 0)
    recent = (tuple(ClosedTrade(at, pnl)
                    for at, pnl in journal.latest_closed_trades(limits.cooldown.losses))
              if limits.cooldown is not None else ())
    figures = DayFigures(
        now=moment, market_now=clock.timestamp if clock else None,
        next_close=clock.next_close if clock else None, trades_today=trades,
        recent_trades=recent, day_pnl=day_pnl,
        day_start_equity=account.last_equity if account is not None else None,
        market_open=clock.is_open if clock else None)
    return day_verdicts(limits, figures)


def rule_checks(verdicts: list[RuleVerdict]) -> list[RuleCheck]:
    """The verdicts as `open`'s checks: a tripped rule refuses with its message and figures.
    FLATTEN_BEFORE_CLOSE is `watch`'s, never a refusal of an entry."""
    return [RuleCheck(v.rule, v.passed, v.message, v.figures) for v in verdicts
            if v.rule != FLATTEN_RULE]
