"""The day's peak equity for MAX_DRAWDOWN_FROM_PEAK, kept in the database (`day_peaks`) so that
a restarted `watch`, or a second one, keeps it. Each tick: the recorded peak is read; where
there is none for today (no watch ran since the day began), it is recovered from Alpaca's
portfolio history (1-minute bars since New York's midnight); a higher reading is written in a
short transaction of its own, never around a network call. The rule itself is
domain/drawdown.py; the stop it pulls is run by the watch tick (services/watch/watch.py)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from tradectl.broker import Account, Broker
from tradectl.db.session import Database
from tradectl.domain.calendar import trading_day_start
from tradectl.domain.day_rules import RuleVerdict
from tradectl.domain.drawdown import drawdown_from_peak
from tradectl.domain.limits import Limit
from tradectl.errors import BrokerError, DatabaseError

Seen = tuple[Decimal, datetime, str]  # an equity, when, and where it was seen (account/history)


class DayPeaks:
    """The peak of the day as this process last knew it: used alone while the database is
    down, and never lower than the record once it is back."""

    def __init__(self, db: Database, broker: Broker, limit: Limit) -> None:
        self.db, self.broker, self.limit = db, broker, limit
        self._day: date | None = None
        self._peak: Seen | None = None
        self._history_owed: date | None = None  # the day whose history could not be read yet
        self.error: str | None = None  # the last tick's: the history or the record unreadable

    def judge(self, account: Account, at: datetime, *, database: bool = True) -> RuleVerdict:
        """The rule on this reading, the peak brought up to it (and recorded if it rose).
        `database=False`: the tick found it down; the peak in memory alone until it is back."""
        peak = self.peak(account.equity, at, database=database)
        return drawdown_from_peak(self.limit, peak, account.equity)

    def again(self, account: Account) -> RuleVerdict:
        """The rule on a second reading (the stop's confirmation), against the same peak."""
        peak = self._peak[0] if self._peak is not None else None
        return drawdown_from_peak(self.limit, peak, account.equity)

    def peak(self, equity: Decimal, at: datetime, *, database: bool = True) -> Decimal:
        day_start = trading_day_start(at)
        day = day_start.date()
        if self._day != day:  # a new trading day starts from nothing
            self._day, self._peak, self._history_owed = day, None, None
        self.error = None
        seen: list[Seen] = [(equity, at, "account")]
        if self._peak is not None:
            seen.append(self._peak)
        recorded = None
        if database:
            try:
                recorded = self._recorded(day)
            except DatabaseError as err:
                self.error, database = f"database: {err.message}", False
        if not database:  # kept in memory; written once the database answers again
            self._peak = max(seen)
            return self._peak[0]
        if recorded is not None:
            seen.append(recorded)
        if recorded is None or self._history_owed == day:
            try:
                seen += [(p.equity, p.at, "history") for p in self.broker.equity_history(day_start)
                         if trading_day_start(p.at).date() == day]
                self._history_owed = None
            except BrokerError as err:  # the readings are kept; the history is tried next tick
                self.error = f"portfolio history: {err.message}"
                self._history_owed = day
        best = max(seen)
        if recorded is None or best[0] > recorded[0]:
            self._record(day, best)
        self._peak = best
        return best[0]

    def _recorded(self, day: date) -> Seen | None:
        with self.db.read() as journal:
            row = journal.day_peak(day)
        return None if row is None else (row[0], row[1], "record")

    def _record(self, day: date, best: Seen) -> None:
        try:
            with self.db.transaction() as journal:
                source = "account" if best[2] == "record" else best[2]  # only if it vanished
                journal.raise_day_peak(day, best[0], best[1], source)
                journal.commit()
        except DatabaseError as err:  # kept in memory; written once the database is back
            self.error = f"database: {err.message}"


def drawdown_status(db: Database, limit: Limit, account: Account | None,
                    now: datetime) -> RuleVerdict:
    """`status`'s view of the rule: the recorded peak of the day (or the equity now, if higher
    or none is recorded) against the equity now. Reads only; `watch` keeps the peak."""
    if account is None:
        return drawdown_from_peak(limit, None, None)
    with db.read() as journal:
        row = journal.day_peak(trading_day_start(now).date())
    peak = max(row[0], account.equity) if row is not None else account.equity
    return drawdown_from_peak(limit, peak, account.equity)
