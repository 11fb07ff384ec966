"""What the emergency stop writes once the broker has answered: the record of every position
and the alert queued beside it, the local close when no broker is configured, and the report
and spool record when the database cannot take it (emergency_stop.py runs the stop)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from tradectl.broker import Broker, Order
from tradectl.db.journal import event_row
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.db.spool import Claim, OfflineStop, StopSpool, unrecorded
from tradectl.domain.clock import Clock
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.alerts import queue_alert
from tradectl.services.halt.flatten import Flattening
from tradectl.services.halt.halt_report import HaltReport, alert_body, alert_facts, alert_subject
from tradectl.services.halt.stop_record import (
    BrokerAnswers,
    SymbolReport,
    cancelled_per_symbol,
    mark_closed_locally,
    record_symbol,
)
from tradectl.services.orders import apply_entry_order
from tradectl.services.watch.reconcile import OrderBook

MARKET_CLOSED_NOTE = "market closed: fills when the market opens"
# Entry orders that can still fill: cancelled explicitly if the close-all left them working.
STILL_WORKING = frozenset({"new", "accepted", "pending_new", "partially_filled",
                           "accepted_for_bidding", "held"})


@dataclass(frozen=True)
class StopFiles:
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


def cancel_still_working(broker: Broker, orders: list[Order] | None,
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


def record_stop(db: Database, report: HaltReport, answers: BrokerAnswers,
                channel: Channels | None, stop_ids: list[str],
                clock: Clock) -> tuple[HaltReport, bool]:
    """Write what the broker said about every live position, then report from those rows and
    queue the alert in the same transaction."""
    book = OrderBook.of(answers.orders or [])
    cancelled = cancelled_per_symbol(answers.orders or [], report.began or report.stopped_at)
    events: list[dict[str, Any]] = []  # one insert for all: a large book has an event a position

    def log(position: Position, kind: str, message: str) -> None:
        events.append(event_row(kind, f"{position.symbol}: {message}", cycle_id=report.cycle_id,
                                position_id=position.id,
                                details={"close_order_id": position.exit_order_id}))

    with db.transaction() as journal:
        now = clock.now()
        tracked: dict[str, list[Position]] = defaultdict(list)
        local: list[SymbolReport] = []
        for position in journal.live_positions():
            if position.alpaca_status == "alpaca_disabled":
                mark_closed_locally(position, log, now)
                local.append(SymbolReport(position.symbol, "closed_locally", (position.id,)))
                continue
            entry = book.entry_of(position)
            if entry is not None:
                apply_entry_order(position, entry, now)
            tracked[position.symbol].append(position)
        symbols = [*local]
        for symbol in sorted(set(tracked) | set(answers.outcomes)):
            result = record_symbol(symbol, tracked.get(symbol, []), answers, book, log, now)
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


def close_locally(db: Database, report: HaltReport, channel: Channels | None,
                  clock: Clock) -> tuple[HaltReport, bool]:
    symbols: list[SymbolReport] = []
    with db.transaction() as journal:
        now = clock.now()
        for position in journal.live_positions():
            mark_closed_locally(position, lambda p, kind, message: journal.record(
                kind, f"{p.symbol}: {message}", cycle_id=p.cycle_id, position_id=p.id), now)
            symbols.append(SymbolReport(position.symbol, "closed_locally", (position.id,)))
        report = replace(report, symbols=tuple(symbols))
        queued = queue_alert(journal, channel, "emergency_stop", alert_subject(report),
                             alert_body(report), cycle_id=report.cycle_id,
                             facts=alert_facts(report))
        journal.commit()
    return report, queued


def unrecorded_report(report: HaltReport, answers: BrokerAnswers, error: str,
                flattening: Flattening, files: StopFiles) -> HaltReport:
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
