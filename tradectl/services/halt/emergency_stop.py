"""The emergency stop: write it ahead, flatten the account, latch the cycle, record every position
truthfully, alert someone, report. Safe to run again: it retries what failed and keeps what
succeeded.

The stop is written to a local fsynced file (the spool) before the first broker call; `halt`
sends its close-all before the database layer is even imported and latches while it is on the
wire, then sweeps anything an `open` placed in between. The stop never waits on another process
for long and never depends on the database: if the latch or the record cannot be written, the
account is still flattened at the broker, the alert is sent directly, and the spooled stop is
recorded by the next command that reaches the database. If the process is killed, the next
command completes the stop from Alpaca's orders (services/halt/offline_stop.py).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime

from tradectl.broker import Broker
from tradectl.db.journal import ORDERS_WINDOW_MARGIN
from tradectl.db.session import Database
from tradectl.db.spool import STARTED, Claim, StopSpool
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.states import CycleState
from tradectl.errors import DatabaseError, InputError
from tradectl.notify import Channels
from tradectl.services.alerts import (
    NOT_CONFIGURED,
    deliver_pending,
    delivery_summary,
    direct_summary,
    send_directly,
)
from tradectl.services.gate import GATE_WAIT_SECONDS
from tradectl.services.halt.first_close import FirstClose, StopStart, start_stop
from tradectl.services.halt.flatten import flatten_account
from tradectl.services.halt.halt_report import HaltReport, alert_body, alert_facts, alert_subject
from tradectl.services.halt.offline_stop import (
    complete_offline_stops,
    completed_note,
    recorded_already,
)
from tradectl.services.halt.stop_record import (
    BrokerAnswers,
)
from tradectl.services.halt.stop_writes import (
    StopFiles,
    cancel_still_working,
    close_locally,
    record_stop,
    unrecorded_report,
)

__all__ = ["HaltReport", "alert_body", "alert_facts", "alert_subject", "emergency_stop"]

@dataclass(frozen=True)
class _Latch:
    cycle_id: int
    stopped_at: datetime
    reason: str
    already_stopped: bool
    superseded: bool = False  # completing a stop after a `resume` started a new cycle


def emergency_stop(
    db: Database, broker: Broker | None, channel: Channels | None, reason: str, *,
    spool: StopSpool | None = None, gate_wait: float = GATE_WAIT_SECONDS,
    fallback_deadline: float = 60.0, start: StopStart | None = None,
    completing: Claim | None = None, clock: Clock = SYSTEM_CLOCK,
) -> HaltReport:
    """`start`: the stop already written ahead and its close-all already sent (`halt`); without
    it the stop is written ahead here and the close-all follows the latch. `completing`: an
    earlier stop whose process ended before its record (claimed from the spool): it is latched,
    read back from Alpaca's orders (what it left held is closed), recorded and alerted now."""
    reason = (completing.stop.reason if completing is not None else reason).strip()
    if not reason:
        raise InputError("--reason must not be empty: say why trading is stopped")
    notes: list[str] = []
    if start is None and completing is None and broker is not None:
        start = start_stop(broker, spool, reason, send=False, clock=clock)
    if start is not None and start.note:
        notes.append(start.note)
    claims = [completing] if completing is not None else []
    if spool is not None and completing is None:
        with suppress(DatabaseError):  # the latch below meets the same fault and says so
            claims += _earlier_stops(db, spool, broker, clock)
    began = min([c.stop.stopped_at for c in claims] + [start.began if start else clock.now()])
    notes += [completed_note(c.stop) for c in claims]
    latch: _Latch | None = None
    database_error: str | None = None
    try:
        latch = _latch(db, claims[0].stop.reason if claims else reason, gate_wait, notes,
                       began, completing is not None, clock)
    except DatabaseError as err:
        database_error = _db_message(err)
    report = HaltReport(
        cycle_id=latch.cycle_id if latch else None, reason=latch.reason if latch else reason,
        stopped_at=latch.stopped_at if latch else began,
        already_stopped=latch.already_stopped if latch else False,
        broker_enabled=broker is not None,
        given_reason=reason if latch and latch.reason != reason else None,
        completed=tuple(completed_note(c.stop) for c in claims), began=began)
    own = [start.ahead] if start is not None and start.ahead is not None else []
    if latch is not None and latch.superseded:
        return _superseded(db, spool, claims, replace(report, notes=tuple(notes)))
    if broker is None:
        return _without_broker(db, channel, report, notes, latch, database_error, clock)
    return _flatten_and_record(
        db, broker, channel, report, notes, database_error,
        StopFiles(spool, own, claims), fallback_deadline,
        start.first if start is not None else None, close=completing is None, clock=clock)


def _without_broker(db: Database, channel: Channels | None, report: HaltReport,
                    notes: list[str], latch: _Latch | None,
                    database_error: str | None, clock: Clock) -> HaltReport:
    if latch is not None:
        notes.append("Alpaca is not configured: nothing was sent to a broker; positions "
                     "were closed in the database only")
        report, queued = close_locally(db, report, channel, clock)
        return _alerted(db, channel, replace(report, notes=tuple(notes)), queued, clock)
    return _alerted(db, channel, replace(report, database_error=database_error,
                                         notes=tuple(notes)), False, clock)


def _flatten_and_record(
    db: Database, broker: Broker, channel: Channels | None, report: HaltReport,
    notes: list[str], database_error: str | None, files: StopFiles, fallback_deadline: float,
    first: FirstClose | None, *, close: bool, clock: Clock,
) -> HaltReport:
    stopped_at = report.stopped_at
    since, entries, tracked = stopped_at - ORDERS_WINDOW_MARGIN, set[str](), set[str]()
    if database_error is None:
        try:
            since, entries, tracked = _window(db, stopped_at, report.already_stopped, notes)
        except DatabaseError as err:
            database_error = _db_message(err)
    flattening = flatten_account(broker, orders_since=since, tracked_orders=tracked,
                                 deadline_seconds=fallback_deadline, first=first,
                                 started=report.began or stopped_at, close=close,
                                 clock=clock)
    cancels = cancel_still_working(broker, flattening.orders, entries,
                                    flattening.sweep_cancelled)
    answers = BrokerAnswers(flattening.outcomes, flattening.orders, flattening.broker_error,
                            cancels)
    notes.extend(flattening.notes)
    report = replace(
        report, path=flattening.path, broker_error=flattening.broker_error,
        unread=tuple(flattening.unread), swept=tuple(flattening.swept),
        market_open=flattening.clock.is_open if flattening.clock else None,
        equity=flattening.account.equity if flattening.account else None,
        day_pnl=flattening.account.day_pnl if flattening.account else None)
    queued = False
    if database_error is None:
        try:
            report, queued = record_stop(db, replace(report, notes=tuple(notes)), answers,
                                         channel, files.stop_ids, clock)
        except DatabaseError as err:
            database_error = _db_message(err)
        else:
            files.recorded()
    if database_error is not None:
        report = unrecorded_report(replace(report, notes=tuple(notes)), answers,
                                   database_error, flattening, files)
    report = replace(report, broker_requests=getattr(broker, "requests_sent", None))
    return _alerted(db, channel, report, queued, clock)


def _earlier_stops(db: Database, spool: StopSpool, broker: Broker | None,
                   clock: Clock) -> list[Claim]:
    """Record the stops spooled without the database, and claim those whose process ended
    before their record: this stop completes them (one record, one alert)."""
    complete_offline_stops(db, spool, clock=clock)
    if broker is None or not spool.has_pending():
        return []
    claims = []
    for claim in spool.claim_pending():
        if claim.stop.state != STARTED:
            claim.release()
        elif recorded_already(db, claim.stop):
            StopSpool.done(claim)
        else:
            claims.append(claim)
    return claims


def _superseded(db: Database, spool: StopSpool | None, claims: list[Claim],
                report: HaltReport) -> HaltReport:
    """An interrupted stop found after a `resume` started a new cycle: the trader has moved on;
    it is logged, not re-run."""
    with db.transaction() as journal:
        for claim in claims:
            journal.record("emergency_stop_complete",
                           f"{completed_note(claim.stop)}; a later `resume` started a new cycle: "
                           "not re-run", details={"stop_ids": [claim.stop.stop_id]})
        journal.commit()
    if spool is not None:
        for claim in claims:
            StopSpool.done(claim)
    return replace(report, path="none")


def _db_message(err: DatabaseError) -> str:
    return err.message + (f" ({err.hint})" if err.hint else "")


def _latch(db: Database, reason: str, gate_wait: float, notes: list[str], at: datetime,
           completing: bool, clock: Clock) -> _Latch:
    """Stop the cycle and commit: from here on `open` refuses. `at`: when the stop began (a
    stop completed after a `resume` started a newer cycle is not latched). The gate is waited
    for at most `gate_wait` (an `open` submitting holds it for up to ALPACA_TIMEOUT); past that
    the stop latches without it and says so."""
    try:
        with db.lock("cycle", wait=gate_wait) as held:
            if not held:
                notes.append(f"another process held the trading gate for {gate_wait:.0f}s: "
                             "latched without it; an order it was sending may land after "
                             "this stop: run `tradectl halt` again to close it")
            return _write_latch(db, reason, at, completing, clock)
    except OSError as err:  # the lock file beside a SQLite database cannot be opened
        raise DatabaseError(f"the trading gate cannot be taken: {err}") from None


def _write_latch(db: Database, reason: str, at: datetime, completing: bool,
                 clock: Clock) -> _Latch:
    with db.transaction() as journal:
        cycle = journal.latest_cycle() or journal.start_cycle()
        if completing and cycle.status == "active" and cycle.started_at > at:
            return _Latch(cycle.id, at, reason, False, superseded=True)
        already = cycle.status == "stopped"
        if not already:  # as of the commit: no order is sent after this moment
            cycle.status, cycle.stopped_at = CycleState.STOPPED.value, clock.now()
            cycle.stop_reason = reason
        journal.record("emergency_stop", f"emergency stop{' (again)' if already else ''}: "
                       f"{reason}", cycle_id=cycle.id, details={"reason": reason})
        journal.commit()
        assert cycle.stopped_at is not None
        return _Latch(cycle.id, cycle.stopped_at, cycle.stop_reason or reason, already)


def _window(db: Database, stopped_at: datetime, already: bool,
            notes: list[str]) -> tuple[datetime, set[str], set[str]]:
    """The orders read's start, the entry orders of live positions and every tracked order."""
    with db.read() as journal:
        live = journal.live_positions()
        since = journal.orders_window_start(stopped_at)
    if already and any(p.alpaca_status == "closed_by_emergency_stop" for p in live):
        notes.append("re-tried what the earlier stop left")
    entries = {p.alpaca_order_id for p in live if p.alpaca_order_id}
    tracked = entries | {p.exit_order_id for p in live if p.exit_order_id}
    return since, entries, tracked


def _alerted(db: Database, channel: Channels | None, report: HaltReport,
             queued: bool, clock: Clock) -> HaltReport:
    """Deliver the queued alert, or send it directly to every channel when the database could
    not queue it."""
    if not channel:
        return replace(report, alert=NOT_CONFIGURED)
    if queued:
        try:
            return replace(report, alert=delivery_summary(deliver_pending(db, channel,
                                                                          clock=clock)))
        except DatabaseError as err:
            return replace(report, alert=f"queued; not sent yet ({err.message})")
    if report.database_error is None:
        return report
    results = send_directly(channel, alert_subject(report), alert_body(report),
                            kind="emergency_stop", facts=alert_facts(report), clock=clock)
    return replace(report, alert=f"{direct_summary(results)} (the database could not queue it)")
