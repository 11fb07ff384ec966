"""The restore of a gap (services/watch/rearm.py decides it): one OCO exit order for the held
shares, stop and target as the row holds them, written ahead (its client_order_id committed
first), sent once under the trading gate, a lost answer looked up once and otherwise left for
Alpaca's orders to settle (never sent again within UNKNOWN_GRACE). A refusal leaves the position
UNPROTECTED with one alert per gap.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Broker, OcoExitRequest, Order
from tradectl.db.journal import Journal
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import Clock
from tradectl.domain.money import price_text
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.position.market_close import mark_unprotected
from tradectl.services.protection import (
    PROTECTED,
    STOP_TYPES,
    UNPROTECTED,
    WORKING,
    CancelTarget,
    Verdict,
)
from tradectl.services.watch.reconcile import write_outcome_unknown


@dataclass(frozen=True)
class Plan:
    """A gap to act on, as the row stood when the verdict was taken."""

    position_id: int
    symbol: str
    side: str
    stop: Decimal
    target: Decimal
    verdict: Verdict
    restore_seen: str | None  # the row's restore_client_order_id then: changed = acted on
    cancel: tuple[CancelTarget, ...]
    account_qty: Decimal | None
    last_trade: Decimal | None


def still_open(journal: Journal, plan: Plan) -> Position | None:
    """The row, locked, if the gap is still there to act on: open (no close working), the
    restore as the verdict saw it, the cycle active (a halt latched meanwhile stops it all)."""
    row = journal.position_for_update(plan.position_id)
    cycle = journal.latest_cycle()
    if row.status != "open" or row.restore_client_order_id != plan.restore_seen \
            or (cycle is not None and cycle.status != "active"):
        return None
    return row


def restore(db: Database, broker: Broker, channel: Channels | None, plan: Plan,
            now: datetime, clock: Clock) -> tuple[Verdict, list[str], str | None]:
    verdict = plan.verdict
    with db.transaction() as journal:
        row = still_open(journal, plan)
        if row is None:
            return replace(verdict, action=None), [], None
        request = OcoExitRequest(row.symbol, "sell" if row.side == "buy" else "buy",
                                 verdict.held, row.stop_loss, row.take_profit,
                                 client_order_id=f"tradectl-oco-{uuid.uuid4().hex}")
        row.restore_client_order_id, row.restore_order_id = request.client_order_id, None
        row.restore_sent_at = now
        journal.record("protection_restoring",
                       f"{row.symbol}: {verdict.reason}: restoring with one OCO exit: "
                       f"{request.side} {request.qty:f}, stop {price_text(request.stop)}, "
                       f"target {price_text(request.target)} (gtc)", cycle_id=row.cycle_id,
                       position_id=row.id,
                       details={"client_order_id": request.client_order_id, "qty": request.qty,
                                "stop": request.stop, "target": request.target})
        journal.commit()
    try:
        order: Order | None = broker.submit_oco_exit(request)
    except BrokerError as err:
        if not write_outcome_unknown(err):
            return _record_restore_refused(db, channel, plan, err, clock)
        try:  # never sent again: looked up once, at once, as `open` does
            order = broker.find_order_by_client_id(request.client_order_id)
        except BrokerError:
            order = None
        if order is None:  # Alpaca's orders settle it on a later tick
            return _record_restore_unknown(db, channel, plan, err, clock)
    assert order is not None
    return _record_restored(db, channel, plan, order, clock)


def _record_restored(db: Database, channel: Channels | None, plan: Plan,
                     order: Order, clock: Clock) -> tuple[Verdict, list[str], str | None]:
    stop = next((leg for leg in order.legs if leg.type in STOP_TYPES), None)
    working = order.status in WORKING
    with db.transaction() as journal:
        row = journal.position(plan.position_id)
        row.restore_order_id, row.target_order_id = order.id, order.id
        row.stop_order_id = stop.id if stop is not None else row.stop_order_id
        message = (f"{row.symbol}: protection restored: OCO {order.id} ({order.status}), "
                   f"stop {price_text(row.stop_loss)}"
                   + (f" (order {stop.id})" if stop else "")
                   + f", target {price_text(row.take_profit)}")
        if working:
            row.unprotected_since = row.protection_error = None
            journal.record("protection_restored", message, cycle_id=row.cycle_id,
                           position_id=row.id, details={"oco_order_id": order.id})
        else:
            message = f"{row.symbol}: the restore OCO {order.id} is {order.status} at Alpaca"
            mark_unprotected(journal, channel, row, message, clock.now())
        journal.commit()
    state = PROTECTED if working else UNPROTECTED
    return (replace(plan.verdict, state=state, action=None, stop=stop, target=order,
                    restore=order), [message], None if working else message)


def _record_restore_refused(db: Database, channel: Channels | None, plan: Plan,
                            err: BrokerError,
                            clock: Clock) -> tuple[Verdict, list[str], str | None]:
    reason = f"restore refused: {err.message}"
    with db.transaction() as journal:
        row = journal.position(plan.position_id)
        row.restore_client_order_id = None  # no such order exists; restore_sent_at spaces tries
        journal.record("protection_failed", f"{row.symbol}: {reason}", cycle_id=row.cycle_id,
                       position_id=row.id, details={"http_status": err.status,
                                                    "alpaca_code": err.code})
        mark_unprotected(journal, channel, row, reason, clock.now())
        journal.commit()
    return (replace(plan.verdict, action=None, reason=reason),
            [f"{plan.symbol}: UNPROTECTED: {reason}"], f"{plan.symbol}: {reason}")


def _record_restore_unknown(db: Database, channel: Channels | None, plan: Plan,
                            err: BrokerError,
                            clock: Clock) -> tuple[Verdict, list[str], str | None]:
    reason = (f"restore outcome unknown ({err.message}): settled from Alpaca's orders, not "
              "sent again")
    with db.transaction() as journal:
        row = journal.position(plan.position_id)
        journal.record("protection_unknown", f"{row.symbol}: {reason}", cycle_id=row.cycle_id,
                       position_id=row.id,
                       details={"client_order_id": row.restore_client_order_id})
        mark_unprotected(journal, channel, row, reason, clock.now())
        journal.commit()
    return (replace(plan.verdict, action=None, reason=reason),
            [f"{plan.symbol}: UNPROTECTED: {reason}"], f"{plan.symbol}: {reason}")
