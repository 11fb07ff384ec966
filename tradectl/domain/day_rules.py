"""The trader's day at entry: the rules `open` judges before it sends an entry (the cutoff before
the close, trades per day, the cooldown after a loss streak, the profit target). Figures and
`now` in, a typed verdict out; no I/O. Each rule is off unless its setting is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from tradectl.domain.limits import CENT, Threshold, limit_dollars, limit_text

RuleState = Literal["ok", "warning", "tripped"]
WARNING_SHARE = Decimal("0.8")  # a limit 80% used is shown as a warning, as the loss limit's
NEW_YORK = ZoneInfo("America/New_York")
FLATTEN_RULE = "flatten_before_close"  # also the close_reason of the positions it exits


@dataclass(frozen=True)
class Cooldown:
    losses: int  # losing trades in a row that start it
    minutes: int  # how long no entry is allowed after the last of them


@dataclass(frozen=True)
class DayLimits:
    """The day rules as set; None: the rule is off."""

    entry_cutoff_minutes: int | None = None
    max_trades_per_day: int | None = None
    cooldown: Cooldown | None = None
    profit_target: Threshold | None = None
    flatten_minutes: int | None = None  # `watch` exits day trades this long before the close

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.entry_cutoff_minutes, self.max_trades_per_day,
                                           self.cooldown, self.profit_target,
                                           self.flatten_minutes))

    @property
    def needs_market_clock(self) -> bool:
        """Alpaca's clock is read only for the rules judged on it."""
        return self.entry_cutoff_minutes is not None or self.flatten_minutes is not None


@dataclass(frozen=True)
class ClosedTrade:
    closed_at: datetime
    realized_pl: Decimal


@dataclass(frozen=True)
class DayFigures:
    """What the rules read. `market_now`/`next_close`: Alpaca's clock (None when not read);
    `trades_today`: entries sent since the New York day began; `recent_trades`: the latest
    closed trades, newest first; `day_pnl`/`day_start_equity`: the account's (None unknown)."""

    now: datetime
    market_now: datetime | None = None
    next_close: datetime | None = None
    trades_today: int = 0
    recent_trades: Sequence[ClosedTrade] = ()
    day_pnl: Decimal | None = None
    day_start_equity: Decimal | None = None
    market_open: bool | None = None  # Alpaca's clock's is_open


@dataclass(frozen=True)
class RuleVerdict:
    """One rule on the figures: its limit and current figure as shown, its state, and the
    message and figures a refusal carries. `until`: when a tripped cooldown ends."""

    rule: str
    limit: str | None  # the figure as set (dollars, minutes, N:MINUTES); None if unknown
    current: str | None  # the figure the rule compares; None when it is not known
    state: RuleState
    message: str
    figures: dict[str, str] = field(default_factory=dict)
    until: datetime | None = None

    @property
    def passed(self) -> bool:
        return self.state != "tripped"


def day_verdicts(limits: DayLimits, figures: DayFigures) -> list[RuleVerdict]:
    """Every configured rule's verdict, in a fixed order."""
    verdicts = []
    if limits.entry_cutoff_minutes is not None:
        verdicts.append(entry_cutoff(limits.entry_cutoff_minutes, figures.market_now,
                                     figures.next_close))
    if limits.max_trades_per_day is not None:
        verdicts.append(max_trades_per_day(limits.max_trades_per_day, figures.trades_today))
    if limits.cooldown is not None:
        verdicts.append(cooldown(limits.cooldown, figures.recent_trades, figures.now))
    if limits.profit_target is not None:
        verdicts.append(profit_target(limits.profit_target, figures.day_pnl,
                                      figures.day_start_equity))
    if limits.flatten_minutes is not None:
        verdicts.append(flatten_before_close(limits.flatten_minutes, figures.market_now,
                                             figures.next_close, figures.market_open))
    return verdicts


def flatten_before_close(minutes: int, market_now: datetime | None, next_close: datetime | None,
                         market_open: bool | None) -> RuleVerdict:
    """`watch` exits the day trades `minutes` or fewer before Alpaca's next close, while the
    market is open (its clock, so a half day's 13:00 close counts); a warning in the
    `minutes` before that window."""
    rule, limit = FLATTEN_RULE, str(minutes)
    if market_now is None or next_close is None:
        return RuleVerdict(rule, limit, None, "ok",
                           "Alpaca's clock is not known: not checked", {"minutes": limit})
    left = next_close - market_now
    left_minutes = int(left.total_seconds() // 60)
    figures = {"minutes": limit, "minutes_to_close": str(left_minutes),
               "market_time": _iso(market_now), "next_close": _iso(next_close)}
    close = f"{_hhmm(next_close, NEW_YORK)} ET"
    if market_open and left <= timedelta(minutes=minutes):
        return RuleVerdict(rule, limit, str(left_minutes), "tripped",
                           f"{left_minutes} min to the close at {close}: day trades are "
                           f"flattened (FLATTEN_BEFORE_CLOSE {minutes} min)", figures)
    state: RuleState = ("warning" if market_open and left <= timedelta(minutes=2 * minutes)
                        else "ok")
    return RuleVerdict(rule, limit, str(left_minutes), state,
                       f"{left_minutes} min to the close at {close}: day trades are "
                       f"flattened {minutes} min before it", figures)


def entry_cutoff(minutes: int, market_now: datetime | None,
                 next_close: datetime | None) -> RuleVerdict:
    """No entry `minutes` or fewer before Alpaca's next close (its clock, never ours)."""
    rule, limit = "entry_cutoff", str(minutes)
    if market_now is None or next_close is None:
        return RuleVerdict(rule, limit, None, "ok",
                           "Alpaca's clock is not known: not checked", {"minutes": str(minutes)})
    left = next_close - market_now
    left_minutes = int(left.total_seconds() // 60)
    figures = {"minutes": str(minutes), "minutes_to_close": str(left_minutes),
               "market_time": _iso(market_now), "next_close": _iso(next_close)}
    current = str(left_minutes)
    if left <= timedelta(minutes=minutes):
        return RuleVerdict(rule, limit, current, "tripped",
                           f"{left_minutes} min to the close at "
                           f"{_hhmm(next_close, NEW_YORK)} ET: no new entries in the last "
                           f"{minutes} min (NO_NEW_ENTRIES_BEFORE_CLOSE)",
                           figures)
    state: RuleState = "warning" if left <= timedelta(minutes=2 * minutes) else "ok"
    return RuleVerdict(rule, limit, current, state,
                       f"{left_minutes} min to the close: entries allowed until "
                       f"{minutes} min before it", figures)


def max_trades_per_day(limit: int, trades_today: int) -> RuleVerdict:
    """The Nth entry of the day is allowed, the N+1th refused."""
    rule = "max_trades_per_day"
    figures = {"trades_today": str(trades_today), "limit": str(limit)}
    if trades_today >= limit:
        return RuleVerdict(rule, str(limit), str(trades_today), "tripped",
                           f"{trades_today} entries sent today; MAX_TRADES_PER_DAY is {limit}",
                           figures)
    state: RuleState = "warning" if trades_today >= limit * WARNING_SHARE else "ok"
    return RuleVerdict(rule, str(limit), str(trades_today), state,
                       f"{trades_today} of {limit} entries sent today", figures)


def loss_streak(recent_trades: Sequence[ClosedTrade]) -> int:
    """Losing trades in a row, newest first: a trade that did not lose ends the streak."""
    streak = 0
    for trade in recent_trades:
        if trade.realized_pl >= 0:
            break
        streak += 1
    return streak


def cooldown(setting: Cooldown, recent_trades: Sequence[ClosedTrade],
             now: datetime) -> RuleVerdict:
    """After `losses` losing trades in a row, no entry for `minutes` after the last of them;
    it ends exactly at that time."""
    rule, limit = "cooldown", f"{setting.losses}:{setting.minutes}"
    streak = loss_streak(recent_trades)
    figures = {"loss_streak": str(streak), "losses": str(setting.losses),
               "minutes": str(setting.minutes)}
    if streak >= setting.losses:
        ends = recent_trades[0].closed_at + timedelta(minutes=setting.minutes)
        if now < ends:
            return RuleVerdict(rule, limit, str(streak), "tripped",
                               f"{streak} losing trades in a row: no new entries until "
                               f"{_hhmm(ends)} UTC (COOLDOWN_AFTER_LOSSES)",
                               {**figures, "until": _iso(ends)}, until=ends)
        return RuleVerdict(rule, limit, str(streak), "ok",
                           f"{streak} losing trades in a row; the cooldown ended at "
                           f"{_hhmm(ends)} UTC", figures)
    state: RuleState = "warning" if setting.losses > 1 and streak == setting.losses - 1 else "ok"
    return RuleVerdict(rule, limit, str(streak), state,
                       f"{streak} losing trades in a row (a cooldown after {setting.losses})",
                       figures)


def profit_target(target: Threshold, day_pnl: Decimal | None,
                  day_start_equity: Decimal | None) -> RuleVerdict:
    """At or above the day's profit target, no new entries (open positions keep their exits)."""
    rule, shown = "profit_target", limit_text(target)
    dollars = limit_dollars(target, day_start_equity)
    figures = {"day_pnl": str(day_pnl), "limit": str(dollars), "setting": shown}
    if day_pnl is None or dollars is None:
        return RuleVerdict(rule, None if dollars is None else f"{dollars:f}", None, "ok",
                           "the day's P&L or starting equity is not known: not checked", figures)
    current, limit = f"{day_pnl.quantize(CENT):f}", f"{dollars:f}"
    if day_pnl >= dollars:
        return RuleVerdict(rule, limit, current, "tripped",
                           f"the day's P&L {_money(day_pnl)} reached DAILY_PROFIT_TARGET "
                           f"{_money(dollars)}: no new entries today", figures)
    state: RuleState = "warning" if day_pnl >= dollars * WARNING_SHARE else "ok"
    return RuleVerdict(rule, limit, current, state,
                       f"the day's P&L {_money(day_pnl)} is short of DAILY_PROFIT_TARGET "
                       f"{_money(dollars)}", figures)


def _hhmm(moment: datetime, zone: tzinfo = UTC) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def _iso(moment: datetime) -> str:
    """UTC, `Z` for the zone, as every time in tradectl's JSON."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"
