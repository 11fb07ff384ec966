"""Finish the emergency stops the spool still holds (tradectl/db/spool.py), from the next command
that runs: `watch` (each tick), `status`, `halt`, `close`, `open`.

- A stop that ran without the database (state `unrecorded`): the cycle is latched if it is still
  the one that was trading then, each position the stop closed gets its close order (the orders
  sync then records the fill and exit price), and an event says the stop ran without the
  database. Its alert was sent directly by the stop itself.
- A stop whose process ended before its record (state `started`: killed, or the machine went
  down): with the broker, it is completed as the stop would have finished: latched as of when it
  began, read back from Alpaca's orders (its close orders are recognised there, so no position
  it closed is reported missing), anything still held is closed, recorded, and its one alert
  sent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tradectl.db.session import Database
from tradectl.db.spool import STARTED, Claim, OfflineStop, StopSpool
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.states import CycleState, PositionEvent, move

if TYPE_CHECKING:
    from tradectl.broker import Broker
    from tradectl.notify import Channels

# How far before a stop's start its completion event is looked for.
_EVENT_SKEW = timedelta(minutes=5)


def complete_offline_stops(db: Database, spool: StopSpool, broker: Broker | None = None,
                           channel: Channels | None = None, *,
                           clock: Clock = SYSTEM_CLOCK) -> list[str]:
    """Record every spooled stop this process can claim; returns a line per stop finished.
    Stops whose process ended early need the broker: without it they wait."""
    if not spool.has_pending():
        return []
    finished = []
    for claim in spool.claim_pending():
        try:
            if claim.stop.state != STARTED:
                finished.append(_record_offline(db, spool, claim))
            elif recorded_already(db, claim.stop):
                StopSpool.done(claim)
            elif broker is not None:
                finished.append(_complete_interrupted(db, spool, broker, channel, claim,
                                                      clock))
        finally:
            claim.release()
    return finished


def _complete_interrupted(db: Database, spool: StopSpool, broker: Broker,
                          channel: Channels | None, claim: Claim, clock: Clock) -> str:
    from tradectl.services.halt.emergency_stop import emergency_stop

    report = emergency_stop(db, broker, channel, claim.stop.reason, spool=spool,
                            completing=claim, clock=clock)
    outcome = ("recorded" if report.database_error is None else
               f"flattened, not recorded ({report.database_error})")
    return f"{completed_note(claim.stop)}: {outcome}; alert: {report.alert}"


def completed_note(stop: OfflineStop) -> str:
    return (f"completed the emergency stop of {stop.stopped_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({stop.reason}): the process that began it ended before recording it")


def recorded_already(db: Database, stop: OfflineStop) -> bool:
    """Whether the database holds the stop's record (its process died after the commit)."""
    with db.read() as journal:
        found = journal.event_details("emergency_stop_complete",
                                      since=stop.stopped_at - _EVENT_SKEW)
    return any(stop.stop_id in (details or {}).get("stop_ids", ()) for details in found)


def _record_offline(db: Database, spool: StopSpool, claim: Claim) -> str:
    stop = claim.stop
    with db.transaction() as journal:
        cycle = journal.latest_cycle() or journal.start_cycle()
        # A cycle started after the stop was a deliberate `resume`: leave it trading.
        if cycle.status == "active" and cycle.started_at <= stop.stopped_at:
            cycle.status, cycle.stopped_at = CycleState.STOPPED.value, stop.stopped_at
            cycle.stop_reason = stop.reason
        for position in journal.live_positions():
            close = stop.close_orders.get(position.symbol)
            if close and position.alpaca_status != "alpaca_disabled" \
                    and not position.exit_order_id:
                # The orders sync applies the entry's fills, then this close.
                position.exit_order_id, position.close_reason = close, "emergency_stop"
                if position.status == "open":
                    move(position, PositionEvent.CLOSE_SENT)
        line = (f"the emergency stop of {stop.stopped_at:%Y-%m-%d %H:%M:%S} UTC ran without "
                f"the database ({stop.database_error}); recorded now: {stop.reason}")
        journal.record("emergency_stop_recorded", line, cycle_id=cycle.id,
                       details={"reason": stop.reason, "stopped_at": stop.stopped_at,
                                "close_orders": stop.close_orders,
                                "stop_ids": [stop.stop_id]})
        journal.commit()
    spool.done(claim)
    return line
