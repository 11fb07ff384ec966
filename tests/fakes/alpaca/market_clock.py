"""The fake's market clock: what /v2/clock and /v3/clock answer, from a clock the test sets.

Unset, the clock follows the real time and the broker's market_open flag (the fake's old
behaviour). Once set (FakeAlpaca.set_clock, or --clock on the command line), it answers the
test's timestamp, is_open, next_open and next_close; the /v3/clock phase is derived from them
in America/New_York time:
- is_open: "core" until next_close;
- from 04:00 ET of next_open's day until next_open: "pre";
- from last_close (set, or 16:00 ET of a weekday that is not next_open's day) for 4 hours
  (20:00 ET; 17:00 ET after a 13:00 half-day close): "post";
- otherwise "closed" until the next pre-market start (or next_open).
"lunch" (a phase of some non-US markets in the spec's enum) never occurs here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .model import ApiError, JsonObject, now, rfc3339

ET = ZoneInfo("America/New_York")
PRE_START = time(4, 0)
POST_HOURS = timedelta(hours=4)
_NYSE = {"mic": "XNYS", "acronym": "NYSE", "name": "New York Stock Exchange"}
_NASDAQ = {"mic": "XNAS", "acronym": "NASDAQ", "name": "Nasdaq"}
_IEX = {"mic": "IEXG", "acronym": "IEX", "name": "Investors Exchange"}
# The US equity markets the fake knows (one US equity calendar); any other code answers 400.
US_MARKETS = {
    "NYSE": _NYSE, "XNYS": _NYSE, "NASDAQ": _NASDAQ, "XNAS": _NASDAQ, "IEX": _IEX, "IEXG": _IEX
}


@dataclass
class MarketClock:
    timestamp: datetime | None = None  # None: the real time, and the unset defaults below
    next_open: datetime | None = None
    next_close: datetime | None = None
    last_close: datetime | None = None  # the session that closed last (for "post")

    def moment(self) -> datetime:
        return self.timestamp or now()

    def opens_closes(self, is_open: bool) -> tuple[datetime, datetime]:
        if self.next_open is not None and self.next_close is not None:
            return self.next_open, self.next_close
        stamp = self.moment()  # unset: the fake's historic answer, relative to now
        opens, closes = (17.5, 1.0) if is_open else (1.0, 7.5)
        return stamp + timedelta(hours=opens), stamp + timedelta(hours=closes)

    def v2(self, is_open: bool) -> JsonObject:
        next_open, next_close = self.opens_closes(is_open)
        return {
            "timestamp": rfc3339(self.moment()),
            "is_open": is_open,
            "next_open": rfc3339(next_open),
            "next_close": rfc3339(next_close),
        }

    def _last_close(self, stamp: datetime, next_open: datetime) -> datetime | None:
        if self.last_close is not None:
            return self.last_close
        local = stamp.astimezone(ET)
        if local.weekday() >= 5 or local.date() == next_open.astimezone(ET).date():
            return None
        return datetime.combine(local.date(), time(16, 0), ET)

    def phase(self, is_open: bool, at: datetime | None = None) -> tuple[str, datetime]:
        """(phase, phase_until) at `at` (default: the clock's timestamp)."""
        stamp = at or self.moment()
        next_open, next_close = self.opens_closes(is_open)
        if is_open and at is None:
            return "core", next_close
        if at is not None and next_open <= stamp < next_close:
            return "core", next_close
        if self.next_open is None:  # unset: closed whenever the market is (the old behaviour)
            return "closed", next_open
        pre_start = datetime.combine(next_open.astimezone(ET).date(), PRE_START, ET)
        if pre_start <= stamp < next_open:
            return "pre", next_open
        last_close = self._last_close(stamp, next_open)
        if last_close is not None and last_close <= stamp < last_close + POST_HOURS:
            return "post", last_close + POST_HOURS
        return "closed", pre_start if stamp < pre_start else next_open

    def v3(self, is_open: bool, markets: list[str], at: datetime | None) -> JsonObject:
        unknown = [m for m in markets if m not in US_MARKETS]
        if unknown:
            raise ApiError(400, f"market not supported by the fake: {unknown[0]}")
        stamp = at or self.moment()
        next_open, next_close = self.opens_closes(is_open)
        phase, until = self.phase(is_open, at)
        day = stamp.astimezone(ET).date()
        last_close = self._last_close(stamp, next_open)
        market_day = phase in ("pre", "core", "post") or day in (
            next_open.astimezone(ET).date(),
            None if last_close is None else last_close.astimezone(ET).date(),
        )
        clock = {
            "timestamp": rfc3339(stamp),
            "is_market_day": market_day,
            "next_market_open": rfc3339(next_open),
            "next_market_close": rfc3339(next_close),
            "phase": phase,
            "phase_until": rfc3339(until),
        }
        markets = markets or ["NYSE"]
        return {
            "clocks": [
                {"market": {**US_MARKETS[m], "timezone": "America/New_York"}, **clock}
                for m in markets
            ]
        }


def parse_moment(text: str) -> datetime:
    """An RFC 3339 / ISO timestamp; a naive one is taken as America/New_York."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=ET)
