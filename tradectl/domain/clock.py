"""The one source of time. Services take a `Clock`; tests hand in a `FixedClock` they move."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC wall time: what rows and Alpaca's timestamps are compared with."""
        ...

    def monotonic(self) -> float:
        """Seconds that only move forward: for deadlines and intervals, never for records."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()


@dataclass
class FixedClock:
    """A clock that moves only when told to (tests, and replaying a recorded day)."""

    at: datetime
    elapsed: float = field(default=0.0)

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.elapsed += seconds
