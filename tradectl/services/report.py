"""`report`: how trading went over a period, from the database alone (what the broker said when
each trade closed). The arithmetic is `tradectl.performance`; this reads the rows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from tradectl.db.session import Database
from tradectl.domain.calendar import MARKET_TZ
from tradectl.errors import InputError
from tradectl.performance import Performance, performance, trading_day
from tradectl.services.row_views import closed_trade


def trading_report(db: Database, *, since: date | None, until: date | None,
                   now: datetime) -> Performance:
    """The closed trades and stops of the trading days `since`..`until` (New York dates, both
    included); without `since` from the first one recorded, without `until` to today."""
    if since is not None and until is not None and since > until:
        raise InputError(f"--since {since} is after --until {until}")
    with db.read() as journal:
        start, end = _day_start(since), _day_start(until + timedelta(days=1)) if until else None
        trades = [closed_trade(p, stop) for p, stop in journal.closed_positions(start, end)]
        stops = journal.stops_pulled(start, end)
    first = min([trading_day(t.closed_at) for t in trades] + [trading_day(s) for s in stops],
                default=trading_day(now))
    return performance(trades, stops, since=since or first, until=until or trading_day(now))


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=MARKET_TZ)
