"""`report`: how trading went over a period, from the database alone (what the broker said when
each trade closed). The arithmetic is `tradectl.domain.performance`; this reads the rows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from tradectl.db.plain import ReadsRows
from tradectl.db.report_rows import ClosedRow, closed_positions, stops_pulled
from tradectl.domain.calendar import MARKET_TZ
from tradectl.domain.performance import ClosedTrade, Performance, performance, trading_day
from tradectl.errors import InputError


def trading_report(db: ReadsRows, *, since: date | None, until: date | None,
                   now: datetime) -> Performance:
    """The closed trades and stops of the trading days `since`..`until` (New York dates, both
    included); without `since` from the first one recorded, without `until` to today."""
    if since is not None and until is not None and since > until:
        raise InputError(f"--since {since} is after --until {until}")
    start, end = _day_start(since), _day_start(until + timedelta(days=1)) if until else None
    with db.read_rows() as rows:
        trades = closed_trades(closed_positions(rows, start, end))
        stops = stops_pulled(rows, start, end)
    first = min([trading_day(t.closed_at) for t in trades] + [trading_day(s) for s in stops],
                default=trading_day(now))
    return performance(trades, stops, since=since or first, until=until or trading_day(now))


def closed_trades(rows: list[ClosedRow]) -> list[ClosedTrade]:
    """The journal's closed positions as the report's arithmetic reads them: the shares filled
    (else those asked for), and its close reason or "unknown"."""
    return [ClosedTrade(pid, symbol, side, filled or qty, entry, exit_, stop, pl,
                        reason or "unknown", opened, closed)
            for pid, symbol, side, qty, filled, entry, exit_, stop, pl, reason, opened, closed
            in rows]


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=MARKET_TZ)
