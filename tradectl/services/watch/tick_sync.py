"""A tick's one write transaction: the cycle read, the faults seen while the database was down
recorded, Alpaca's orders applied to every live position (reconcile.py), fill alerts queued,
and the positions split into tradectl's and the external part (holdings.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from tradectl.db.session import Database
from tradectl.domain.loss_limit import applicable_baseline
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.row_views import position_view, recent_events
from tradectl.services.watch.fill_alerts import queue_fill_alerts, snapshot
from tradectl.services.watch.holdings import split_holdings
from tradectl.services.watch.reconcile import OrderBook, sync_live_positions
from tradectl.services.watch.tick_report import BrokerState, TickReport


def sync_tick(db: Database, report: TickReport, state: BrokerState | None,
              error: BrokerError | None, unrecorded: Sequence[tuple[datetime, str]],
              recent: int, *, fill_channels: Channels | None) -> TickReport:
    """`state` is the tick's broker reads, or None with the `error` that stopped them."""
    with db.transaction() as journal:
        cycle = journal.latest_cycle()
        report = replace(report, cycle_id=cycle.id if cycle else None,
                         cycle_status=cycle.status if cycle else "none",
                         stop_reason=cycle.stop_reason if cycle else None,
                         loss_baseline=applicable_baseline(
                             cycle.loss_baseline, cycle.baseline_at, report.at)
                         if cycle else None)
        live = journal.live_positions()
        changes: list[str] = []
        for at, fault in unrecorded:
            journal.record("watch_fault", f"while the database was unreachable "
                           f"({at:%H:%M:%S} UTC): {fault}", cycle_id=report.cycle_id,
                           details={"at": at})
        if error is not None:
            report = replace(report, error=error.message, rate_limited=error.status == 429)
            journal.record("broker_error", f"watch: {error.message}",
                           cycle_id=report.cycle_id, details={"http_status": error.status})
        elif state is not None:
            report = replace(report, account=state.account)
            before = snapshot(live)
            changes = sync_live_positions(journal, live, OrderBook.of(state.orders),
                                          {p.symbol: p for p in state.positions}, report.at)
            queue_fill_alerts(journal, fill_channels, live, before)
        positions, external = split_holdings([position_view(p) for p in live],
                                             state.positions if state is not None else [])
        report = replace(report, changes=report.changes + tuple(changes),
                         positions=positions, external=external,
                         events=tuple(recent_events(journal, recent)))
        journal.commit()
    return report
