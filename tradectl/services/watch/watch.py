"""The risk loop: each tick brings the database in line with the broker, computes the day's P&L,
and pulls the emergency stop when the loss limit is reached, or the equity has fallen
MAX_DRAWDOWN_FROM_PEAK below the day's peak (services/watch/risk_stops.py; each confirmed by a
second read). The loop's policy lives here too: the tick's exit code, the back-off; who drives
is watch_driver.py.

A tick never waits on the network inside a transaction: the broker is read first, then the
database is written in one short transaction. A database fault fails the tick like a broker
fault does; the broker side (the loss limit, the stop) still runs without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime

from tradectl.broker import Broker, Order, StreamStatus, TradeUpdates
from tradectl.db.locks import NamedLock
from tradectl.db.session import Database
from tradectl.db.spool import StopSpool
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.day_rules import DayLimits
from tradectl.domain.limits import Limit
from tradectl.errors import BrokerError, DatabaseError
from tradectl.notify import Channels
from tradectl.services.alerts import deliver_pending, drain, loop_wait, waiting_at_most
from tradectl.services.gate import GATE_WAIT_SECONDS
from tradectl.services.halt.offline_stop import complete_offline_stops
from tradectl.services.row_views import cycle_view, position_view, recent_events
from tradectl.services.watch.day_close import day_rules_step, market_clock
from tradectl.services.watch.drawdown import DayPeaks
from tradectl.services.watch.rearm import keep_protected
from tradectl.services.watch.risk_stops import RiskStops
from tradectl.services.watch.tick_report import BrokerState, TickReport
from tradectl.services.watch.tick_sync import sync_tick
from tradectl.services.watch.trade_updates import (
    KnownOrders,
    StreamReport,
    apply_trade_updates,
    arrivals,
    note_refused_keys,
    protect_touched,
)
from tradectl.services.watch.watch_driver import DriverSeat
from tradectl.views import ExternalPositionView

RECENT_EVENTS = 8
STREAM_DOWN_SECONDS = 5.0  # WATCH_STREAM_DOWN_INTERVAL's default
MAX_BACKOFF_SECONDS = 300.0
UNRECORDED = 50  # faults kept, while the database is down, to be recorded once it is back
# A failing database is tried again after 1, 2, 4... ticks, at most this far apart: a restart or
# a failover takes seconds to tens of seconds, and a refused connection costs nothing.
DATABASE_RETRY_CAP_SECONDS = 30.0


class Watcher:
    """Keeps what must survive between ticks: the driver lock, whether the 80% warning was given
    this cycle, the last orders window, and the database's health (faults to record once it is
    back, and when to try it again)."""

    def __init__(self, db: Database, broker: Broker | None, channel: Channels | None, *,
                 daily_loss_limit: Limit, drives_stops: bool, interval: float = 60.0,
                 spool: StopSpool | None = None, gate_wait: float = GATE_WAIT_SECONDS,
                 driver_lock: NamedLock | None = None, rearm_protection: bool = True,
                 stream_down_interval: float = STREAM_DOWN_SECONDS,
                 clock: Clock = SYSTEM_CLOCK, drawdown: Limit | None = None,
                 day: DayLimits | None = None, alert_fills: bool = False) -> None:
        self.db, self.broker, self.channel, self.spool = db, broker, channel, spool
        # ALERT_FILLS: the channels fills are alerted on (watch/fill_alerts.py), or None
        self.fill_channels = channel if alert_fills else None
        # MAX_DRAWDOWN_FROM_PEAK: the day's peak kept in the database (None: the rule is off)
        peaks = (DayPeaks(db, broker, drawdown)
                 if drawdown is not None and broker is not None else None)
        self.clock, self.day = clock, day or DayLimits()
        self.rearm_protection = rearm_protection
        self.gate_wait, self.driver_lock = gate_wait, driver_lock
        self.interval = interval
        self.stream_down_interval = stream_down_interval
        self.seat = DriverSeat(driver_lock, drives=drives_stops)
        # the loss limit and the drawdown: the two stops a tick pulls by itself
        self.stops = (RiskStops(db, broker, channel, self.seat, daily_loss_limit, peaks, spool,
                                gate_wait, clock, self._guarded) if broker is not None else None)
        self._driver_notes: list[str] = []  # role changes to record once the database answers
        self._delay = interval
        self._since: datetime | None = None
        self._database_failures = 0
        self._database_retry_at = 0.0  # the clock's monotonic() when the database is tried again
        self._unrecorded: list[tuple[datetime, str]] = []  # faults seen while it was down
        self.known_orders = KnownOrders()  # the last orders read, the stream's updates over them
        self._stream_refused = False  # "refused keys" recorded since the stream last connected

    @property
    def drives_stops(self) -> bool:
        return self.seat.drives

    # -- the loop's policy ----------------------------------------------------------------

    def next_delay(self, report: TickReport, stream: StreamStatus | None = None) -> float:
        """Back off while Alpaca rate-limits; back to normal once it answers; every few seconds
        while the stream is not connected (only ticks see fills then). A failing database does
        not slow the loop: it is tried again with its own back-off."""
        if report.rate_limited:
            self._delay = min(self._delay * 2, MAX_BACKOFF_SECONDS)
        elif stream is not None and stream.state != "connected":
            self._delay = min(self.interval, self.stream_down_interval)
        else:
            self._delay = self.interval
        return self._delay

    # -- one tick ---------------------------------------------------------------------------

    def tick(self) -> TickReport:
        with waiting_at_most(loop_wait(self.interval)):  # alerts never hold up a tick
            return self._tick()

    def _tick(self) -> TickReport:
        report = TickReport(self.clock.now(), None, "unknown", None, drives_stops=self.drives_stops)
        if self.clock.monotonic() < self._database_retry_at:
            report = replace(report, database_failed=True,
                             error="database: unavailable; tried again after its back-off")
        report = self._check_driver(report)  # also during the back-off: a stand-by must take over
        if self.spool is not None:
            report = self._guarded(report, self._complete_offline_stops)
        report = self._guarded(report, self._read_window)
        state, error = self._read_broker(report)
        report = self._guarded(report, lambda r: self._sync(r, state, error))
        report = self._guarded(report, lambda r: self._protect(r, state))
        report = self._guarded(report, lambda r: self._day_rules(r, state))
        if report.database_failed and state is not None:
            report = replace(report, account=state.account,
                             external=tuple(ExternalPositionView.of(p) for p in state.positions))
        if state is not None and self.stops is not None:
            if self.drives_stops:
                report = self.stops.check_loss_limit(report)
            report = self.stops.check_drawdown(report)
        report = self._guarded(report, self._deliver_alerts)
        if report.stop is not None:  # show the positions as the stop left them
            report = self._guarded(report, self._views)
        self._note_database(report, error)
        return replace(report, drives_stops=self.drives_stops,
                       standing_by=self.seat.role == "standby", driver=self.seat.driver)

    def _guarded(self, report: TickReport,
                 step: Callable[[TickReport], TickReport]) -> TickReport:
        """Run a database step; a fault fails the tick instead of the loop, and the tick's later
        database steps are skipped (they would wait on the same fault)."""
        if report.database_failed:
            return report
        try:
            return step(report)
        except DatabaseError as err:
            return replace(report, error=f"database: {err.message}", database_failed=True)

    def _note_database(self, report: TickReport, broker_error: BrokerError | None) -> None:
        if not report.database_failed:
            self._database_failures, self._database_retry_at = 0, 0.0
            return
        if self.clock.monotonic() >= self._database_retry_at:  # it was tried in this tick
            self._database_failures += 1
            wait = min(self.interval * 2 ** (self._database_failures - 1),
                       max(self.interval, DATABASE_RETRY_CAP_SECONDS))
            self._database_retry_at = self.clock.monotonic() + wait
        faults = [report.error or "database unavailable"]
        if broker_error is not None:
            faults.append(f"watch: {broker_error.message}")
        self._unrecorded = (self._unrecorded + [(report.at, f) for f in faults])[-UNRECORDED:]

    def _check_driver(self, report: TickReport) -> TickReport:
        """The driver verifies its lock every tick (a database restart frees a session lock), a
        stand-by tries for it (services/watch/watch_driver.py); a change is shown, and recorded as a
        `watch_driver` event once the database answers."""
        notes = self.seat.check()
        self._driver_notes += notes
        report = replace(report, changes=(*report.changes, *notes),
                         drives_stops=self.drives_stops)
        return self._guarded(report, self._record_driver_notes)

    def _record_driver_notes(self, report: TickReport) -> TickReport:
        if self._driver_notes:
            with self.db.transaction() as journal:
                for note in self._driver_notes:
                    journal.record("watch_driver", note, cycle_id=report.cycle_id)
                journal.commit()
            self._driver_notes = []
        return report

    def _complete_offline_stops(self, report: TickReport) -> TickReport:
        assert self.spool is not None
        recorded = complete_offline_stops(self.db, self.spool, self.broker, self.channel,
                                          clock=self.clock)
        return replace(report, changes=report.changes + tuple(recorded))

    def _deliver_alerts(self, report: TickReport) -> TickReport:
        return replace(report, alerts_sent=deliver_pending(self.db, self.channel,
                                                           clock=self.clock).sent)

    def _read_window(self, report: TickReport) -> TickReport:
        with self.db.read() as journal:
            self._since = journal.orders_window_start()
        return report

    def _read_broker(self, report: TickReport) -> tuple[BrokerState | None, BrokerError | None]:
        """Three reads side by side, whatever the size of the book. Without the database the
        last window read still covers the book tradectl knew about."""
        if self.broker is None:
            return None, None
        since = self._since or report.at
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                account = pool.submit(self.broker.account)
                positions = pool.submit(self.broker.list_positions)
                orders = pool.submit(self.broker.list_orders, status="all", after=since)
                market = pool.submit(self.broker.clock) if self.day.needs_market_clock else None
                state = BrokerState(account.result(), positions.result(), orders.result(),
                                    market_clock(market))
        except BrokerError as err:
            return None, err
        self.known_orders.reset(state.orders)
        return state, None

    # -- between ticks: Alpaca's trade updates ------------------------------------------

    def between_ticks(self, delay: float, updates: TradeUpdates | None,
                      seen: StreamStatus | None = None) -> Iterator[StreamReport]:
        """The wait before the next tick: without the stream a sleep; with it, each batch of
        trade updates applied as it arrives, and each change of the stream's state reported;
        cut short when the stream connects after `seen` or is down (trade_updates.arrivals)."""
        if updates is None:
            time.sleep(delay)
            return
        # Keys refused while the tick ran: the wait below sees no change of state to report.
        # A database fault leaves it for a later wait.
        with suppress(DatabaseError):
            self._stream_refused = note_refused_keys(self.db, updates.status(),
                                                     self._stream_refused)
        while_down = None if delay > self.interval else self.stream_down_interval
        for orders, status in arrivals(updates, delay, while_down=while_down, seen=seen,
                                       clock=self.clock):
            yield self.apply_updates(orders, status)

    def apply_updates(self, orders: Sequence[Order], stream: StreamStatus) -> StreamReport:
        """Trade updates, applied on the loop's thread (the one writer) in one transaction.
        A failing database skips them: the next tick reads the orders again."""
        report = StreamReport(self.clock.now(), stream)
        if self.clock.monotonic() < self._database_retry_at:
            return replace(report, error="database: unavailable; the next tick reconciles")
        try:
            self._stream_refused = note_refused_keys(self.db, stream, self._stream_refused)
            if not orders:
                return report
            applied = apply_trade_updates(self.db, self.known_orders, orders, report.at,
                                          RECENT_EVENTS, fill_channels=self.fill_channels)
            report = replace(report, changes=applied.changes, positions=applied.positions,
                             events=applied.events)
            if applied.touched and self.broker is not None and self.seat.confirm():
                report = protect_touched(self.db, self.broker, self.channel, self.known_orders,
                                         applied, report, rearm=self.rearm_protection,
                                         gate_wait=self.gate_wait, recent_events=RECENT_EVENTS,
                                         clock=self.clock)
        except DatabaseError as err:
            return replace(report, error=f"database: {err.message}")
        return report

    # -- bringing the database in line ---------------------------------------------------

    def _sync(self, report: TickReport, state: BrokerState | None,
              error: BrokerError | None) -> TickReport:
        report = sync_tick(self.db, report, state, error, self._unrecorded, RECENT_EVENTS,
                           fill_channels=self.fill_channels)
        self._unrecorded = []
        if self.stops is not None:
            self.stops.seen(report)
        return report

    def _protect(self, report: TickReport, state: BrokerState | None) -> TickReport:
        """Every held share has a working stop (services/watch/rearm.py), from the same reads. Only
        the watch that drives stops acts on a gap; a read-only one shows it."""
        if state is None or self.broker is None or report.error:
            return report
        found = keep_protected(self.db, self.broker, self.channel, orders=state.orders,
                               held=state.positions, views=report.positions, now=report.at,
                               clock=self.clock,
                               rearm=self.rearm_protection,
                               stopped=report.cycle_status == "stopped", act=self.drives_stops)
        return replace(report, positions=found.positions, changes=report.changes + found.changes,
                       unprotected=found.unprotected, protection_error=found.error)

    # -- the day's rules ------------------------------------------------------------------

    def _day_rules(self, report: TickReport, state: BrokerState | None) -> TickReport:
        """Shown as `status` shows them; FLATTEN_BEFORE_CLOSE acted on by the driver."""
        if not self.day.any:
            return report
        return day_rules_step(self.db, self.broker, self.channel, self.day, report, state,
                              act=self.drives_stops, clock=self.clock)

    def _views(self, report: TickReport) -> TickReport:
        with self.db.read() as journal:
            cycle = journal.latest_cycle()
            view = cycle_view(cycle) if cycle is not None else None
            return replace(report,
                           positions=tuple(position_view(p) for p in journal.live_positions()),
                           events=tuple(recent_events(journal, RECENT_EVENTS)),
                           cycle_id=view.id if view else report.cycle_id)


@contextmanager
def watching(db: Database, broker: Broker | None, channel: Channels | None, *,
             daily_loss_limit: Limit, interval: float, read_only: bool,
             spool: StopSpool | None = None, gate_wait: float = GATE_WAIT_SECONDS,
             rearm_protection: bool = True,
             stream_down_interval: float = STREAM_DOWN_SECONDS,
             clock: Clock = SYSTEM_CLOCK, drawdown: Limit | None = None,
             day: DayLimits | None = None, alert_fills: bool = False) -> Iterator[Watcher]:
    """One `watch` per database drives automatic stops: the one holding the driver lock. Another
    stands by and takes over when it is gone (services/watch/watch_driver.py). `read_only` never
    takes the lock and never pulls the stop."""
    def watcher(lock: NamedLock | None) -> Watcher:
        return Watcher(db, broker, channel, daily_loss_limit=daily_loss_limit,
                       drives_stops=lock is not None, interval=interval, spool=spool,
                       gate_wait=gate_wait, driver_lock=lock,
                       rearm_protection=rearm_protection,
                       stream_down_interval=stream_down_interval, clock=clock,
                       drawdown=drawdown, day=day, alert_fills=alert_fills)

    try:
        if read_only:
            yield watcher(None)
            return
        with db.lock("watch-driver", wait=0) as driver:  # held, or not yet: standing by
            yield watcher(driver)
    finally:
        drain()  # alerts a tick left going out, each bounded by its channel
