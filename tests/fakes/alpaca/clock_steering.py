"""FakeAlpaca's steering of the market clock and the equity history (a mixin of server.FakeAlpaca).

See market_clock.py for what /v2/clock and /v3/clock answer from the pinned clock, and
history.py for GET /v2/account/portfolio/history.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeAlias

from .broker import Broker
from .market_clock import MarketClock, parse_moment

Moment: TypeAlias = datetime | str
Amount: TypeAlias = Decimal | int | float | str


def _moment(value: Moment) -> datetime:
    return value if isinstance(value, datetime) and value.tzinfo else parse_moment(str(value))


class ClockSteering:
    _lock: threading.RLock
    _broker: Broker

    def set_clock(
        self,
        timestamp: Moment,
        *,
        is_open: bool,
        next_open: Moment,
        next_close: Moment,
        last_close: Moment | None = None,
    ) -> None:
        """Pin the market clock (/v2/clock, /v3/clock, the session phase; see market_clock.py).
        Moments are datetimes or ISO strings (naive = America/New_York). A half day is just a
        next_close at 13:00 ET. is_open is the broker's market_open (as set_market_open)."""
        with self._lock:
            self._broker.clock = MarketClock(
                _moment(timestamp), _moment(next_open), _moment(next_close),
                None if last_close is None else _moment(last_close),
            )
            self._broker.market_open = is_open
            self._broker.run_engine()

    def advance_clock(self, delta: timedelta) -> None:
        """Move a pinned clock's timestamp on (open/close times and is_open stay as set)."""
        with self._lock:
            clock = self._broker.clock
            clock.timestamp = clock.moment() + delta
            self._broker.run_engine()

    def set_equity_history(
        self, points: Sequence[tuple[Moment, Amount]], base_value: Amount | None = None
    ) -> None:
        """The equity points GET /v2/account/portfolio/history answers from (history.py);
        base_value defaults to the account's last_equity."""
        with self._lock:
            self._broker.equity_points = [(_moment(m), Decimal(str(v))) for m, v in points]
            self._broker.history_base = None if base_value is None else Decimal(str(base_value))

