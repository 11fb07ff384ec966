"""Record an emergency stop that ran without the database, once the database is back.

The stop spooled what it knew (when, why, the close order of each symbol). Here the cycle is
latched if it is still the one that was trading then, each position the stop closed gets its
close order (the orders sync then records the fill and exit price), and an event says the stop
ran without the database.
"""

from __future__ import annotations

from tradectl.db.session import Database
from tradectl.db.spool import StopSpool


def complete_offline_stops(db: Database, spool: StopSpool) -> list[str]:
    """Record every spooled stop; returns a line per stop recorded."""
    recorded = []
    for path, stop in spool.pending():
        with db.transaction() as journal:
            cycle = journal.latest_cycle() or journal.start_cycle()
            # A cycle started after the stop was a deliberate `resume`: leave it trading.
            if cycle.status == "active" and cycle.started_at <= stop.stopped_at:
                cycle.status, cycle.stopped_at = "stopped", stop.stopped_at
                cycle.stop_reason = stop.reason
            for position in journal.live_positions():
                close = stop.close_orders.get(position.symbol)
                if close and position.alpaca_status != "alpaca_disabled" \
                        and not position.exit_order_id:
                    # The orders sync applies the entry's fills, then this close.
                    position.exit_order_id, position.close_reason = close, "emergency_stop"
                    if position.status == "open":
                        position.status = "closing"
            line = (f"the emergency stop of {stop.stopped_at:%Y-%m-%d %H:%M:%S} UTC ran without "
                    f"the database ({stop.database_error}); recorded now: {stop.reason}")
            journal.record("emergency_stop_recorded", line, cycle_id=cycle.id,
                           details={"reason": stop.reason, "stopped_at": stop.stopped_at,
                                    "close_orders": stop.close_orders})
            journal.commit()
        spool.done(path)
        recorded.append(line)
    return recorded
