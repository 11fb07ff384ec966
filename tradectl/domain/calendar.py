"""The US equity market's calendar as tradectl needs it: its time zone and where its day begins."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

MARKET_TZ = ZoneInfo("America/New_York")


def trading_day_start(now: datetime) -> datetime:
    """Midnight in New York, the US market's day, for `now`."""
    local = now.astimezone(MARKET_TZ)
    return datetime.combine(local.date(), time(0), tzinfo=MARKET_TZ)
