"""The emergency stop: latch the cycle, flatten the account, record every position truthfully,
alert someone, report. Safe to run again: it retries what failed and keeps what succeeded.

The stop never waits on another process for long and never depends on the database: if the
latch or the record cannot be written, the account is still flattened at the broker, the alert
is sent directly, and the stop is spooled to a local file for the next tick or halt to record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradectl.broker import Broker, Order
from tradectl.db.journal import ORDERS_WINDOW_MARGIN, event_row
from tradectl.db.models import Position, utcnow
from tradectl.db.session import Database
from tradectl.db.spool import OfflineStop, StopSpool
from tradectl.errors import BrokerError, DatabaseError, ExitCode, InputError
from tradectl.formats import cents, dollars
from tradectl.notify import Channels
from tradectl.services.alerts import (
    NOT_CONFIGURED,
    deliver_pending,
    delivery_summary,
    direct_summary,
    queue_alert,
    send_directly,
)
from tradectl.services.flatten import Flattening, flatten_account
from tradectl.services.gate import GATE_WAIT_SECONDS
from tradectl.services.offline_stop import complete_offline_stops
from tradectl.services.orders import apply_entry_order
from tradectl.services.reconcile import OrderBook
from tradectl.services.stop_record import (
    BrokerAnswers,
    SymbolReport,
    cancelled_per_symbol,
    mark_closed_locally,
    record_symbol,
)

MARKET_CLOSED_NOTE = "market closed: fills when the market opens"
# Entry orders that can still fill: cancelled explicitly if the close-all left them working.
STILL_WORKING = frozenset({"new", "accepted", "pending_new", "partially_filled",
                           "accepted_for_bidding", "held"})


@dataclass(frozen=True)
class HaltReport:
    cycle_id: int | None  # None: the latch could not be written
    reason: str  # the latched reason (the first stop's, when the cycle was already stopped)
    stopped_at: datetime
    already_stopped: bool
    broker_enabled: bool
    path: str = "none"
    symbols: tuple[SymbolReport, ...] = ()
    market_open: bool | None = None
    equity: Decimal | None = None
    day_pnl: Decimal | None = None
    broker_error: str | None = None
    notes: tuple[str, ...] = ()
    alert: str = NOT_CONFIGURED
    broker_requests: int | None = None
    database_error: str | None = None  # the stop could not be (fully) recorded: why
    given_reason: str | None = None  # this halt's own reason, when it differs from the latched
    unread: tuple[str, ...] = ()  # reads after the stop that failed: the record is partial

    @property
    def exit_code(self) -> ExitCode:
        if self.database_error is not None:
            return ExitCode.DATABASE
        if self.broker_error is not None or self.unread or any(s.failed for s in self.symbols):
            return ExitCode.BROKER
        return ExitCode.OK


@dataclass(frozen=True)
class _Latch:
    cycle_id: int
    stopped_at: datetime
    reason: str
    already_stopped: bool


def emergency_stop(
    db: Database, broker: Broker | None, channel: Channels | None, reason: str, *,
    spool: StopSpool | None = None, gate_wait: float = GATE_WAIT_SECONDS,
    fallback_deadline: float = 60.0,
) -> HaltReport:
    reason = reason.strip()
    if not reason:
        raise InputError("--reason must not be empty: say why trading is stopped")
    notes: list[str] = []
    if spool is not None:
        with suppress(DatabaseError):  # the latch below meets the same fault and says so
            complete_offline_stops(db, spool)
    latch: _Latch | None = None
    database_error: str | None = None
    try:
        latch = _latch(db, reason, gate_wait, notes)
    except DatabaseError as err:
        database_error = _db_message(err)
    stopped_at = latch.stopped_at if latch else utcnow()
    report = HaltReport(
        cycle_id=latch.cycle_id if latch else None, reason=latch.reason if latch else reason,
        stopped_at=stopped_at, already_stopped=latch.already_stopped if latch else False,
        broker_enabled=broker is not None,
        given_reason=reason if latch and latch.reason != reason else None)
    if broker is None:
        if latch is not None:
            notes.append("Alpaca is not configured: nothing was sent to a broker; positions "
                         "were closed in the database only")
            report, queued = _close_locally(db, report, channel)
            return _alerted(db, channel, replace(report, notes=tuple(notes)), queued)
        return _alerted(db, channel, replace(report, database_error=database_error,
                                             notes=tuple(notes)), False)

    since, entries, tracked = stopped_at - ORDERS_WINDOW_MARGIN, set[str](), set[str]()
    if database_error is None:
        try:
            since, entries, tracked = _window(db, stopped_at, report.already_stopped, notes)
        except DatabaseError as err:
            database_error = _db_message(err)
    flattening = flatten_account(broker, orders_since=since, tracked_orders=tracked,
                                 deadline_seconds=fallback_deadline)
    answers = BrokerAnswers(flattening.outcomes, flattening.orders, flattening.broker_error,
                            _cancel_still_working(broker, flattening.orders, entries))
    notes.extend(flattening.notes)
    report = replace(
        report, path=flattening.path, broker_error=flattening.broker_error,
        unread=tuple(flattening.unread),
        market_open=flattening.clock.is_open if flattening.clock else None,
        equity=flattening.account.equity if flattening.account else None,
        day_pnl=flattening.account.day_pnl if flattening.account else None)
    queued = False
    if database_error is None:
        assert latch is not None
        try:
            report, queued = _record(db, replace(report, notes=tuple(notes)), answers, channel)
        except DatabaseError as err:
            database_error = _db_message(err)
    if database_error is not None:
        report = _unrecorded(replace(report, notes=tuple(notes)), answers, database_error,
                             flattening, spool)
    report = replace(report, broker_requests=getattr(broker, "requests_sent", None))
    return _alerted(db, channel, report, queued)


def _db_message(err: DatabaseError) -> str:
    return err.message + (f" ({err.hint})" if err.hint else "")


def _latch(db: Database, reason: str, gate_wait: float, notes: list[str]) -> _Latch:
    """Stop the cycle and commit before any broker call: from here on `open` refuses. The gate
    is waited for at most `gate_wait` (an `open` submitting holds it for up to ALPACA_TIMEOUT);
    past that the stop latches without it and says so."""
    try:
        with db.lock("cycle", wait=gate_wait) as held:
            if not held:
                notes.append(f"another process held the trading gate for {gate_wait:.0f}s: "
                             "latched without it; an order it was sending may land after "
                             "this stop: run `tradectl halt` again to close it")
            return _write_latch(db, reason)
    except OSError as err:  # the lock file beside a SQLite database cannot be opened
        raise DatabaseError(f"the trading gate cannot be taken: {err}") from None


def _write_latch(db: Database, reason: str) -> _Latch:
    with db.transaction() as journal:
        cycle = journal.latest_cycle() or journal.start_cycle()
        already = cycle.status == "stopped"
        if not already:
            cycle.status, cycle.stopped_at, cycle.stop_reason = "stopped", utcnow(), reason
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
                          entries: Collection[str]) -> dict[str, str | None]:
    """Entry orders of tracked positions that the close-all left working: cancel each (it can
    still fill). Returns order id -> None (cancel accepted) or the error."""
    working = [o for o in orders or () if o.id in entries and o.status in STILL_WORKING]

    def cancel(order: Order) -> tuple[str, str | None]:
        try:
            broker.cancel_order(order.id)
        except BrokerError as err:
            return order.id, err.message
        return order.id, None

    if not working:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(working))) as pool:
        return dict(pool.map(cancel, working))


def _record(db: Database, report: HaltReport, answers: BrokerAnswers,
            channel: Channels | None) -> tuple[HaltReport, bool]:
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
        journal.record_many(events)
        report = _with_symbols(report, symbols)
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
                flattening: Flattening, spool: StopSpool | None) -> HaltReport:
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
    saved = spool.save(OfflineStop(report.stopped_at, report.reason, closes, error)) \
        if spool is not None else "no spool directory"
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


def alert_subject(report: HaltReport) -> str:
    failed = sum(1 for s in report.symbols if s.failed)
    outcome = f"{failed} FAILED" if failed or report.broker_error else "all closed or closing"
    unrecorded = " - NOT RECORDED" if report.database_error else ""
    return f"EMERGENCY STOP - trading halted: {outcome}{unrecorded}"


def alert_facts(report: HaltReport) -> dict[str, Any]:
    """The stop's figures as a webhook carries them beside the text."""
    return {
        "reason": report.reason, "cycle_id": report.cycle_id,
        "stopped_at": report.stopped_at.isoformat(), "already_stopped": report.already_stopped,
        "symbols": [{"symbol": s.symbol, "state": s.state, "external": s.external,
                     "close_order_id": s.close_order_id, "error": s.error}
                    for s in report.symbols],
        "equity": _text(report.equity), "day_pnl": _text(report.day_pnl),
        "broker_error": report.broker_error, "database_error": report.database_error,
        "notes": list(report.notes),
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else cents(value)


def alert_body(report: HaltReport) -> str:
    cycle = (f"Cycle: {report.cycle_id} (new entries refused until `tradectl resume`)"
             if report.cycle_id is not None else
             "Cycle: not recorded (the database was unreachable; `open` cannot trade without it)")
    lines = [f"tradectl emergency stop at {report.stopped_at:%Y-%m-%d %H:%M:%S} UTC",
             f"Reason: {report.reason}", cycle, ""]
    if report.database_error:
        lines += [f"DATABASE: the stop could not be recorded: {report.database_error}", ""]
    if report.broker_error:
        lines.append(f"BROKER UNREACHABLE: {report.broker_error}")
    for s in report.symbols:
        detail = s.error or (f"close order {s.close_order_id}" if s.close_order_id else "")
        who = " (not opened by tradectl)" if s.external else ""
        lines.append(f"  {s.symbol:<8} {s.state:<14} {detail}{who}".rstrip())
    if not report.symbols:
        lines.append("  no open positions")
    lines.append("")
    if report.equity is not None and report.day_pnl is not None:
        lines.append(f"Equity: {dollars(report.equity)}   Day P&L: {dollars(report.day_pnl)}")
    lines.extend(report.notes)
    return "\n".join(lines) + "\n"

