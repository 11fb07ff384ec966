"""The two stops a tick pulls by itself: the daily loss limit (DAILY_LOSS_LIMIT, on the P&L since
the cycle's baseline) and the drawdown from the day's peak (MAX_DRAWDOWN_FROM_PEAK,
services/watch/drawdown.py). Each is confirmed by a second account read before the emergency
stop runs: one bad equity reading must not flatten the account. Only the watch that drives stops
pulls them (its seat confirmed at that moment)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from tradectl.broker import Account, Broker
from tradectl.db.session import Database
from tradectl.db.spool import StopSpool
from tradectl.domain.clock import Clock
from tradectl.domain.limits import Limit, limit_dollars
from tradectl.domain.loss_limit import (
    loss_limit_reached,
    loss_limit_reason,
    loss_since_baseline,
    loss_warning_reached,
)
from tradectl.domain.money import dollars
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.halt.emergency_stop import emergency_stop
from tradectl.services.watch.drawdown import DayPeaks
from tradectl.services.watch.tick_report import TickReport
from tradectl.services.watch.watch_driver import DriverSeat

Guard = Callable[[TickReport, Callable[[TickReport], TickReport]], TickReport]


@dataclass
class RiskStops:
    """What the stops need from the watch, and what they keep between ticks: the cycles already
    warned at 80%, and the cycle's status and baseline last read (the database may be down)."""

    db: Database
    broker: Broker
    channel: Channels | None
    seat: DriverSeat
    limit: Limit
    peaks: DayPeaks | None
    spool: StopSpool | None
    gate_wait: float
    clock: Clock
    guard: Guard  # a database step whose fault fails the tick, not the loop
    last_status: str = "unknown"
    last_baseline: Decimal | None = None
    _warned_cycles: set[int | None] = field(default_factory=set)

    def seen(self, report: TickReport) -> None:
        """The cycle as the tick's sync read it."""
        self.last_status, self.last_baseline = report.cycle_status, report.loss_baseline

    def _stopped(self, report: TickReport) -> bool:
        known = report.cycle_status != "unknown"  # else the database is down: the last seen
        return (report.cycle_status if known else self.last_status) == "stopped"

    def _stop(self, report: TickReport, confirmed: Account, reason: str) -> TickReport:
        stop = emergency_stop(self.db, self.broker, self.channel, reason, spool=self.spool,
                              gate_wait=self.gate_wait, clock=self.clock)
        self.last_status = "stopped"
        return replace(report, account=confirmed, stop=stop, cycle_status="stopped",
                       stop_reason=reason, cycle_id=stop.cycle_id or report.cycle_id)

    # -- the loss limit -----------------------------------------------------------------

    def check_loss_limit(self, report: TickReport) -> TickReport:
        if report.day_pnl is None or self._stopped(report):
            return report
        known = report.cycle_status != "unknown"
        baseline = report.loss_baseline if known else self.last_baseline
        # a percentage is of the day's starting equity: Alpaca's last_equity, read each tick
        limit = limit_dollars(self.limit, report.account.last_equity if report.account else None)
        if limit is None:
            return report
        pnl = loss_since_baseline(report.day_pnl, baseline)
        if loss_limit_reached(pnl, limit):
            try:
                confirmed = self.broker.account()
            except BrokerError as err:
                return replace(report, error=f"loss limit reading not confirmed: {err.message}")
            confirmed_pnl = loss_since_baseline(confirmed.day_pnl, baseline)
            if loss_limit_reached(confirmed_pnl, limit) and self.seat.confirm():
                return self._stop(report, confirmed,
                                  loss_limit_reason(confirmed_pnl, limit, baseline))
            first = report.day_pnl
            report = self.guard(report, lambda r: self._pnl_discarded(r, first, confirmed))
            pnl = confirmed_pnl
        if loss_warning_reached(pnl, limit) and report.cycle_id not in self._warned_cycles:
            since = " since the forced resume" if baseline is not None else ""
            warning = (f"the day's loss{since} {dollars(-pnl)} is past 80% of DAILY_LOSS_LIMIT "
                       f"{dollars(limit)}")
            report = replace(report, warning=warning)
            report = self.guard(report, lambda r: self._record_warning(r, warning))
        return report

    def _pnl_discarded(self, report: TickReport, first: Decimal,
                       confirmed: Account) -> TickReport:
        """The first reading reached the limit, the second did not: show and keep the second."""
        return self._discarded(report, confirmed,
                               f"day P&L {dollars(first)} was not confirmed by a second read "
                               f"({dollars(confirmed.day_pnl)})",
                               {"discarded_day_pnl": first,
                                "confirmed_day_pnl": confirmed.day_pnl})

    def _record_warning(self, report: TickReport, warning: str) -> TickReport:
        with self.db.transaction() as journal:
            journal.record("loss_warning", warning, cycle_id=report.cycle_id)
            journal.commit()
        self._warned_cycles.add(report.cycle_id)
        return report

    # -- the drawdown from the day's peak ------------------------------------------------

    def check_drawdown(self, report: TickReport) -> TickReport:
        """Its verdict shown each tick; tripped, confirmed by a second read, then the stop."""
        first = report.account
        if self.peaks is None or first is None:
            return report
        verdict = self.peaks.judge(first, report.at, database=not report.database_failed)
        report = replace(report, rules=(*report.rules, verdict))
        if self.peaks.error is not None:
            report = replace(report, changes=(*report.changes, f"drawdown: {self.peaks.error}"))
        if verdict.passed or self._stopped(report) or not self.seat.drives:
            return report
        try:
            confirmed = self.broker.account()
        except BrokerError as err:
            return replace(report, error=f"drawdown reading not confirmed: {err.message}")
        again = self.peaks.again(confirmed)
        report = replace(report, rules=(*report.rules[:-1], again))
        if again.passed:
            return self.guard(report, lambda r: self._discarded(
                r, confirmed, f"equity {dollars(first.equity)} was not confirmed by a second "
                f"read ({dollars(confirmed.equity)})",
                {"discarded_equity": first.equity, "confirmed_equity": confirmed.equity}))
        if not self.seat.confirm():
            return report
        return self._stop(report, confirmed, again.message)

    def _discarded(self, report: TickReport, confirmed: Account, what: str,
                   details: dict[str, Decimal]) -> TickReport:
        with self.db.transaction() as journal:
            journal.record("account_reading_discarded", f"account reading discarded: {what}",
                           cycle_id=report.cycle_id, details=dict(details))
            journal.commit()
        return replace(report, account=confirmed)
