"""The emergency stop: write it ahead, flatten the account, latch the cycle, record every position
truthfully, alert someone, report. Safe to run again: it retries what failed and keeps what
succeeded.

The stop is written to a local fsynced file (the spool) before the first broker call; `halt`
sends its close-all before the database layer is even imported and latches while it is on the
wire, then sweeps anything an `open` placed in between. The stop never waits on another process
for long and never depends on the database: if the latch or the record cannot be written, the
account is still flattened at the broker, the alert is sent directly, and the spooled stop is
recorded by the next command that reaches the database. If the process is killed, the next
command completes the stop from Alpaca's orders (services/offline_stop.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tradectl.broker import Broker, Order
from tradectl.db.journal import ORDERS_WINDOW_MARGIN, event_row
from tradectl.db.models import Position, utcnow
from tradectl.db.session import Database
from tradectl.db.spool import STARTED, Claim, OfflineStop, StopSpool, unrecorded
from tradectl.errors import BrokerError, DatabaseError, InputError
from tradectl.notify import Channels
from tradectl.services.alerts import (
    NOT_CONFIGURED,
    deliver_pending,
    delivery_summary,
    direct_summary,
    queue_alert,
    send_directly,
)
from tradectl.services.first_close import FirstClose, StopStart, start_stop
from tradectl.services.flatten import Flattening, flatten_account
from tradectl.services.gate import GATE_WAIT_SECONDS
from tradectl.services.halt_report import HaltReport, alert_body, alert_facts, alert_subject
from tradectl.services.offline_stop import (
    complete_offline_stops,
    completed_note,
    recorded_already,
)
from tradectl.services.orders import apply_entry_order
from tradectl.services.reconcile import OrderBook
from tradectl.services.stop_record import (
    BrokerAnswers,
    SymbolReport,
    cancelled_per_symbol,
    mark_closed_locally,
    record_symbol,
)

__all__ = ["HaltReport", "alert_body", "alert_facts", "alert_subject", "emergency_stop"]

MARKET_CLOSED_NOTE = "market closed: fills when the market opens"
# Entry orders that can still fill: cancelled explicitly if the close-all left them working.
STILL_WORKING = frozenset({"new", "accepted", "pending_new", "partially_filled",
                           "accepted_for_bidding", "held"})


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
    completing: Claim | None = None,
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
        start = start_stop(broker, spool, reason, send=False)
    if start is not None and start.note:
        notes.append(start.note)
    claims = [completing] if completing is not None else []
    if spool is not None and completing is None:
        with suppress(DatabaseError):  # the latch below meets the same fault and says so
            claims += _earlier_stops(db, spool, broker)
    began = min([c.stop.stopped_at for c in claims] + [start.began if start else utcnow()])
    notes += [completed_note(c.stop) for c in claims]
    latch: _Latch | None = None
    database_error: str | None = None
    try:
        latch = _latch(db, claims[0].stop.reason if claims else reason, gate_wait, notes,
                       began, completing is not None)
    except DatabaseError as err:
        database_error = _db_message(err)
    report = HaltReport(
        cycle_id=latch.cycle_id if latch else None, reason=latch.reason if latch else reason,
        stopped_at=latch.stopped_at if latch else began,
        already_stopped=latch.already_stopped if latch else False,
        broker_enabled=broker is not None,
        given_reason=reason if latch and latch.reason != reason else None,
        completed=tuple(completed_note(c.stop) for c in claims))
    own = [start.ahead] if start is not None and start.ahead is not None else []
    if latch is not None and latch.superseded:
        return _superseded(db, spool, claims, replace(report, notes=tuple(notes)))
    if broker is None:
        return _without_broker(db, channel, report, notes, latch, database_error)
    return _flatten_and_record(
        db, broker, channel, report, notes, database_error,
        _StopFiles(spool, own, claims), fallback_deadline,
        start.first if start is not None else None, close=completing is None)


@dataclass(frozen=True)
class _StopFiles:
    """The spool and what this stop holds in it: its own write-ahead record and the earlier
    stops it completes."""

    spool: StopSpool | None
    own: list[Claim]
    claims: list[Claim]

    @property
    def stop_ids(self) -> list[str]:
        return [c.stop.stop_id for c in (*self.own, *self.claims)]

    def recorded(self) -> None:
        for claim in (*self.own, *self.claims):
            StopSpool.done(claim)

    def unrecorded(self, report: HaltReport, closes: dict[str, str], error: str) -> str | None:
        """Keep the stop for the next command that reaches the database; None or why not."""
        if self.spool is None:
            return "no spool directory"
        if not self.own:
            return self.spool.save(OfflineStop(report.stopped_at, report.reason, closes, error))
        saved = self.spool.update(self.own[0], unrecorded(self.own[0].stop, closes, error))
        if saved is None:  # its record covers the earlier stops it completed
            for claim in self.claims:
                StopSpool.done(claim)
        for claim in (*self.own, *self.claims):  # the next command that reaches the database
            claim.release()                      # (a later tick of this `watch`) records it
        return saved


def _without_broker(db: Database, channel: Channels | None, report: HaltReport,
                    notes: list[str], latch: _Latch | None,
                    database_error: str | None) -> HaltReport:
    if latch is not None:
        notes.append("Alpaca is not configured: nothing was sent to a broker; positions "
                     "were closed in the database only")
        report, queued = _close_locally(db, report, channel)
        return _alerted(db, channel, replace(report, notes=tuple(notes)), queued)
    return _alerted(db, channel, replace(report, database_error=database_error,
                                         notes=tuple(notes)), False)


def _flatten_and_record(
    db: Database, broker: Broker, channel: Channels | None, report: HaltReport,
    notes: list[str], database_error: str | None, files: _StopFiles, fallback_deadline: float,
    first: FirstClose | None, *, close: bool,
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
                                 started=stopped_at, close=close)
    cancels = _cancel_still_working(broker, flattening.orders, entries,
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
            report, queued = _record(db, replace(report, notes=tuple(notes)), answers, channel,
                                     files.stop_ids)
        except DatabaseError as err:
            database_error = _db_message(err)
        else:
            files.recorded()
    if database_error is not None:
        report = _unrecorded(replace(report, notes=tuple(notes)), answers, database_error,
                             flattening, files)
    report = replace(report, broker_requests=getattr(broker, "requests_sent", None))
    return _alerted(db, channel, report, queued)


def _earlier_stops(db: Database, spool: StopSpool, broker: Broker | None) -> list[Claim]:
    """Record the stops spooled without the database, and claim those whose process ended
    before their record: this stop completes them (one record, one alert)."""
    complete_offline_stops(db, spool)
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
           completing: bool) -> _Latch:
    """Stop the cycle (as of `at`, when the stop began) and commit: from here on `open`
    refuses. The gate is waited for at most `gate_wait` (an `open` submitting holds it for up
    to ALPACA_TIMEOUT); past that the stop latches without it and says so."""
    try:
        with db.lock("cycle", wait=gate_wait) as held:
            if not held:
                notes.append(f"another process held the trading gate for {gate_wait:.0f}s: "
                             "latched without it; an order it was sending may land after "
                             "this stop: run `tradectl halt` again to close it")
            return _write_latch(db, reason, at, completing)
    except OSError as err:  # the lock file beside a SQLite database cannot be opened
        raise DatabaseError(f"the trading gate cannot be taken: {err}") from None


def _write_latch(db: Database, reason: str, at: datetime, completing: bool) -> _Latch:
    with db.transaction() as journal:
        cycle = journal.latest_cycle() or journal.start_cycle()
        if completing and cycle.status == "active" and cycle.started_at > at:
            return _Latch(cycle.id, at, reason, False, superseded=True)
        already = cycle.status == "stopped"
        if not already:
            cycle.status, cycle.stopped_at, cycle.stop_reason = "stopped", at, reason
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


def _cancel_still_working(broker: Broker, orders: list[Order] | None,
                          entries: Collection[str], swept: Collection[str] = ()
                          ) -> dict[str, str | None]:
    """Entry orders of tracked positions that the close-all left working: cancel each (it can
    still fill). Returns order id -> None (cancel accepted) or the error. `swept`: cancels the
    sweep already sent (accepted)."""
    working = [o for o in orders or () if o.id in entries and o.status in STILL_WORKING
               and o.id not in swept]
    done: dict[str, str | None] = {o.id: None for o in orders or () if o.id in swept}

    def cancel(order: Order) -> tuple[str, str | None]:
        try:
            broker.cancel_order(order.id)
        except BrokerError as err:
            return order.id, err.message
        return order.id, None

    if not working:
        return done
    with ThreadPoolExecutor(max_workers=min(8, len(working))) as pool:
        return done | dict(pool.map(cancel, working))


def _record(db: Database, report: HaltReport, answers: BrokerAnswers,
            channel: Channels | None, stop_ids: list[str]) -> tuple[HaltReport, bool]:
    """Write what the broker said about every live position, then report from those rows and
    queue the alert in the same transaction."""
    book = OrderBook.of(answers.orders or [])
    cancelled = cancelled_per_symbol(answers.orders or [], report.stopped_at)
    events: list[dict[str, Any]] = []  # one insert for all: a large book has an event a position

    def log(position: Position, kind: str, message: str) -> None:
        events.append(event_row(kind, f"{position.symbol}: {message}", cycle_id=report.cycle_id,
                                position_id=position.id,
                                details={"close_order_id": position.exit_order_id}))

    with db.transaction() as journal:
        tracked: dict[str, list[Position]] = defaultdict(list)
        local: list[SymbolReport] = []
        for position in journal.live_positions():
            if position.alpaca_status == "alpaca_disabled":
                mark_closed_locally(position, log)
                local.append(SymbolReport(position.symbol, "closed_locally", (position.id,)))
                continue
            entry = book.entry_of(position)
            if entry is not None:
                apply_entry_order(position, entry)
            tracked[position.symbol].append(position)
        symbols = [*local]
        for symbol in sorted(set(tracked) | set(answers.outcomes)):
            result = record_symbol(symbol, tracked.get(symbol, []), answers, book, log)
            symbols.append(replace(result, cancelled_orders=cancelled.get(symbol, 0)))
            if result.external and result.close_order_id:
                events.append(event_row(
                    "external_closed", f"{symbol}: position not opened by tradectl, closed by "
                    f"the emergency stop (order {result.close_order_id})",
                    cycle_id=report.cycle_id))
        report = _with_symbols(report, symbols)
        events.append(event_row(  # the spool's records of this stop are done with
            "emergency_stop_complete", f"emergency stop recorded: {len(symbols)} symbol(s)",
            cycle_id=report.cycle_id, details={"stop_ids": stop_ids,
                                               "swept": list(report.swept)}))
        journal.record_many(events)
        queued = queue_alert(journal, channel, "emergency_stop", alert_subject(report),
                             alert_body(report), cycle_id=report.cycle_id,
                             facts=alert_facts(report))
        journal.commit()
    return report, queued


def _with_symbols(report: HaltReport, symbols: list[SymbolReport]) -> HaltReport:
    notes = list(report.notes)
    if report.market_open is False and any(s.state == "closing" for s in symbols):
        notes.append(MARKET_CLOSED_NOTE)
    notes += [f"{s.symbol} is still open at Alpaca and its bracket orders were cancelled (no "
              "stop-loss): run `tradectl halt` again or close it by hand"
              for s in symbols if s.state == "failed" and s.cancelled_orders]
    return replace(report, symbols=tuple(symbols), notes=tuple(notes))


def _close_locally(db: Database, report: HaltReport,
                   channel: Channels | None) -> tuple[HaltReport, bool]:
    symbols: list[SymbolReport] = []
    with db.transaction() as journal:
        for position in journal.live_positions():
            mark_closed_locally(position, lambda p, kind, message: journal.record(
                kind, f"{p.symbol}: {message}", cycle_id=p.cycle_id, position_id=p.id))
            symbols.append(SymbolReport(position.symbol, "closed_locally", (position.id,)))
        report = replace(report, symbols=tuple(symbols))
        queued = queue_alert(journal, channel, "emergency_stop", alert_subject(report),
                             alert_body(report), cycle_id=report.cycle_id,
                             facts=alert_facts(report))
        journal.commit()
    return report, queued


def _unrecorded(report: HaltReport, answers: BrokerAnswers, error: str,
                flattening: Flattening, files: _StopFiles) -> HaltReport:
    """The database could not take the record: report what the broker said, and spool the stop
    so that the next tick or halt that reaches the database records it."""
    symbols = []
    for symbol, outcome in sorted(answers.outcomes.items()):
        order = outcome.order
        if order is not None:
            read = {o.id: o for o in flattening.orders or ()}.get(order.id, order)
            state = "closed" if read.status == "filled" else "closing"
        else:
            state = "flat" if outcome.http_status == 404 else "failed"
        symbols.append(SymbolReport(symbol, state, close_order_id=order.id if order else None,
                                    error=outcome.error))
    closes = {s: o.order.id for s, o in answers.outcomes.items() if o.order is not None}
    saved = files.unrecorded(report, closes, error)
    notes = [*report.notes, f"the stop could not be recorded in the database: {error}"]
    notes.append("it is spooled and will be recorded by the next `tradectl watch` tick or halt "
                 "that reaches the database" if saved is None else
                 f"it could not be spooled either ({saved}): the database must be brought in "
                 "line by hand")
    return replace(report, symbols=tuple(symbols), notes=tuple(notes), database_error=error)


def _alerted(db: Database, channel: Channels | None, report: HaltReport,
             queued: bool) -> HaltReport:
    """Deliver the queued alert, or send it directly to every channel when the database could
    not queue it."""
    if not channel:
        return replace(report, alert=NOT_CONFIGURED)
    if queued:
        try:
            return replace(report, alert=delivery_summary(deliver_pending(db, channel)))
        except DatabaseError as err:
            return replace(report, alert=f"queued; not sent yet ({err.message})")
    if report.database_error is None:
        return report
    results = send_directly(channel, alert_subject(report), alert_body(report),
                            kind="emergency_stop", facts=alert_facts(report))
    return replace(report, alert=f"{direct_summary(results)} (the database could not queue it)")
