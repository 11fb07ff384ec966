"""How trading went: per closed trade its R multiple and time held, then per day and for a period
the win rate, average win and loss, expectancy, best and worst trade, realized P&L, the largest
drawdown of the realized P&L curve and the stops pulled. Pure arithmetic on Decimals: no I/O.

Averages and the expectancy are rounded to the cent, R multiples to the hundredth and the win rate
to a tenth of a percent (half to even); sums, bests, worsts and drawdowns are exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from tradectl.domain.calendar import MARKET_TZ
from tradectl.domain.money import CENT, Money, Price, Quantity
from tradectl.errors import InputError

HUNDREDTH = Decimal("0.01")
TENTH = Decimal("0.1")


@dataclass(frozen=True)
class ClosedTrade:
    """A position as the journal recorded its end (what the broker said)."""

    position_id: int
    symbol: str
    side: str  # buy | sell
    qty: Quantity  # shares filled
    entry: Price  # average fill of the entry
    exit: Price
    initial_stop: Price  # the stop when the trade was opened
    realized_pl: Money
    close_reason: str  # take_profit | stop_loss | emergency_stop | ...
    opened_at: datetime
    closed_at: datetime


@dataclass(frozen=True)
class TradeRow:
    trade: ClosedTrade
    day: date  # the trading day (New York) it closed on
    initial_risk: Money  # qty x |entry - initial stop|
    r_multiple: Decimal | None  # P&L / initial risk; None when nothing was at risk
    held_seconds: int  # from the open to the close


@dataclass(frozen=True)
class Totals:
    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None  # percent of trades with a gain; None without trades
    average_win: Money | None
    average_loss: Money | None  # negative
    expectancy: Money | None  # the average P&L of a trade
    average_r: Decimal | None
    best: Money | None
    worst: Money | None
    realized_pl: Money
    max_drawdown: Money  # the largest fall of the cumulative realized P&L from a peak (>= 0)
    stops_pulled: int


@dataclass(frozen=True)
class DayTotals:
    day: date
    totals: Totals


@dataclass(frozen=True)
class Performance:
    since: date
    until: date
    trades: tuple[TradeRow, ...]
    days: tuple[DayTotals, ...]
    period: Totals


def trading_day(moment: datetime) -> date:
    return moment.astimezone(MARKET_TZ).date()


def trade_row(trade: ClosedTrade) -> TradeRow:
    risk = trade.qty * abs(trade.entry - trade.initial_stop)
    r = (trade.realized_pl / risk).quantize(HUNDREDTH, ROUND_HALF_EVEN) if risk else None
    held = int((trade.closed_at - trade.opened_at).total_seconds())
    return TradeRow(trade, trading_day(trade.closed_at), risk, r, max(held, 0))


def performance(trades: Iterable[ClosedTrade], stops_pulled: Iterable[datetime], *,
                since: date, until: date) -> Performance:
    """Trades and stops in the order they happened; `since` and `until` are the period's first
    and last trading days, as asked."""
    rows = sorted((trade_row(t) for t in trades),
                  key=lambda r: (r.trade.closed_at, r.trade.position_id))
    stops = Counter(trading_day(at) for at in stops_pulled)
    by_day: dict[date, list[TradeRow]] = {day: [] for day in sorted({r.day for r in rows}
                                                                    | set(stops))}
    for row in rows:  # one pass: each day's rows, in the order they closed
        by_day[row.day].append(row)
    per_day = tuple(DayTotals(day, totals(day_rows, stops[day]))
                    for day, day_rows in by_day.items())
    return Performance(since, until, tuple(rows), per_day, totals(rows, stops.total()))


def totals(rows: Sequence[TradeRow], stops_pulled: int) -> Totals:
    pnls = [r.trade.realized_pl for r in rows]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    rs = [r.r_multiple for r in rows if r.r_multiple is not None]
    return Totals(
        trades=len(pnls), wins=len(wins), losses=len(losses),
        win_rate=_ratio(len(wins) * 100, len(pnls), TENTH),
        average_win=_mean(wins), average_loss=_mean(losses), expectancy=_mean(pnls),
        average_r=_ratio(sum(rs, Decimal(0)), len(rs), HUNDREDTH),
        best=max(pnls, default=None), worst=min(pnls, default=None),
        realized_pl=sum(pnls, Decimal(0)), max_drawdown=max_drawdown(pnls),
        stops_pulled=stops_pulled)


def max_drawdown(pnls: Iterable[Decimal]) -> Decimal:
    """The largest fall of the running total from its highest point so far, the start (0)
    included: [+100, -30, -50, +200, -120] runs 100, 70, 20, 220, 100 -> 80, then 120: 120."""
    peak = total = worst = Decimal(0)
    for pnl in pnls:
        total += pnl
        peak = max(peak, total)
        worst = max(worst, peak - total)
    return worst


def bar_lengths(values: Sequence[Decimal], width: int) -> list[int]:
    """Each value's bar, in whole characters, on a scale where the largest magnitude fills
    `width`; a value that is not zero shows at least one character."""
    largest = max((abs(v) for v in values), default=Decimal(0))
    if not largest:
        return [0 for _ in values]
    return [max(1, int((abs(v) * width / largest).to_integral_value(ROUND_HALF_EVEN)))
            if v else 0 for v in values]


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    return _ratio(sum(values, Decimal(0)), len(values), CENT)


def _ratio(total: Decimal | int, count: int, places: Decimal) -> Decimal | None:
    if not count:
        return None
    return (Decimal(total) / count).quantize(places, ROUND_HALF_EVEN)


def parse_day(text: str, option: str) -> date:
    """A calendar date, YYYY-MM-DD: a trading day in New York."""
    value = text.strip()
    try:
        if len(value) == 10 and value.isascii():
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise InputError(f"{option} must be a date such as 2026-11-30, got {text!r}")
