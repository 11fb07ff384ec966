"""Keep every held share protected: `watch`'s step after the sync. From the orders the tick
already read, each tracked position with shares gets a verdict (services/protection.py), the
row records what Alpaca shows (the working stop and take-profit, a settled lost answer), and a
gap is acted on, at most once per gap:

- no stop working, the cycle active, REARM_PROTECTION on: one OCO exit order restores stop and
  target for the held quantity, written ahead (its client_order_id committed first), sent once,
  a lost answer looked up once and otherwise left for Alpaca's orders to settle (never sent
  again within UNKNOWN_GRACE);
- the last trade at or beyond the stop: the stop's intent is to be out, so the position is
  closed at market (close_reason stop_loss), said in the event, the tick's changes and an alert;
- a restore refused (or not allowed: the cycle stopped, REARM_PROTECTION off): UNPROTECTED, an
  event and one alert per position per gap; tried again after RESTORE_RETRY.

Orders are sent under the trading gate, like `open`: a halt's latch cannot pass between the
cycle check and the order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Broker, BrokerPosition, OcoExitRequest, Order
from tradectl.db.journal import Journal, position_view
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.errors import BrokerError
from tradectl.formats import price_text
from tradectl.notify import Channel
from tradectl.services.alerts import queue_alert
from tradectl.services.close_position import close_at_market, mark_unprotected
from tradectl.services.orders import apply_exit_order
from tradectl.services.protection import (
    PROTECTED,
    STOP_TYPES,
    UNPROTECTED,
    WORKING,
    CancelTarget,
    Verdict,
    cancel_targets,
    gapped_through,
    lost_close,
    protection_verdict,
)
from tradectl.services.reconcile import UNKNOWN_GRACE, OrderBook, write_outcome_unknown
from tradectl.views import PositionView

GATE_WAIT_SECONDS = 5.0  # an `open` holds the gate for one submit at most


@dataclass(frozen=True)
class ProtectionReport:
    positions: tuple[PositionView, ...]  # the tick's views, with their protection
    changes: tuple[str, ...] = ()
    unprotected: tuple[str, ...] = ()  # "AAPL #3" for each position UNPROTECTED now
    error: str | None = None  # a restore or a close Alpaca refused in this tick


@dataclass(frozen=True)
class _Plan:
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


def keep_protected(db: Database, broker: Broker, channel: Channel | None, *,
                   orders: list[Order], held: list[BrokerPosition],
                   views: tuple[PositionView, ...], now: datetime, rearm: bool,
                   act: bool = True, gate_wait: float = GATE_WAIT_SECONDS) -> ProtectionReport:
    """`act` False (a read-only watch): verdicts for the screen, nothing written or sent."""
    book = OrderBook.of(orders)
    market = {p.symbol: p for p in held}
    changes: list[str] = []
    verdicts: dict[int, Verdict] = {}
    plans: list[_Plan] = []
    with db.transaction() if act else db.read() as journal:
        cycle = journal.latest_cycle()
        blocked = None if rearm else "REARM_PROTECTION=false: not restored"
        if cycle is not None and cycle.status != "active":
            blocked = "trading is stopped: nothing is restored until `tradectl resume`"
        taken = journal.tracked_order_ids()
        for row in journal.live_positions():
            if row.alpaca_status == "alpaca_disabled":
                continue
            if act:
                changes += _settle_lost_close(journal, row, orders, taken, now)
            holding = market.get(row.symbol)
            last = holding.current_price if holding else None
            verdict = protection_verdict(row, book, last_trade=last,
                                         broker_holds=holding is not None,
                                         restore_blocked=blocked, now=now)
            verdicts[row.id] = verdict
            if not act:
                continue
            changes += _record_verdict(journal, channel, row, verdict, book)
            if verdict.action is not None:
                plans.append(_Plan(row.id, row.symbol, row.side, row.stop_loss, row.take_profit,
                                   verdict, row.restore_client_order_id,
                                   tuple(cancel_targets(row, book)),
                                   abs(holding.qty) if holding else None, last))
        if act:
            journal.commit()
    errors: list[str] = []
    for plan in plans:
        verdict, change, error = _act(db, broker, channel, plan, now, gate_wait)
        verdicts[plan.position_id] = verdict
        changes += change
        errors += [error] if error else []
    positions = _views(db, views, verdicts, touched={p.position_id for p in plans})
    unprotected = tuple(f"{p.symbol} #{p.id}" for p in positions if p.unprotected)
    return ProtectionReport(positions, tuple(changes), unprotected,
                            "; ".join(errors) if errors else None)


def _settle_lost_close(journal: Journal, row: Position, orders: list[Order], taken: set[str],
                       now: datetime) -> list[str]:
    """A close at market whose answer was lost: found in Alpaca's orders, or, once they have
    not shown it for UNKNOWN_GRACE, never placed (the row is open again)."""
    if row.status != "closing" or row.exit_order_id or row.exit_sent_at is None:
        return []
    found = lost_close(row, orders, taken)
    if found is not None:
        apply_exit_order(row, found)
        taken.add(found.id)
        row.alpaca_error = None
        message = f"{row.symbol}: close order {found.id} found at Alpaca ({found.status})"
    elif now - row.exit_sent_at >= UNKNOWN_GRACE:
        row.status, row.exit_sent_at, row.close_reason = "open", None, None
        row.alpaca_error = "the close at market never reached Alpaca: the position is open"
        message = f"{row.symbol}: {row.alpaca_error}"
    else:
        return []
    journal.record("position_synced", message, cycle_id=row.cycle_id, position_id=row.id)
    return [message]


def _record_verdict(journal: Journal, channel: Channel | None, row: Position, verdict: Verdict,
                    book: OrderBook) -> list[str]:
    """What Alpaca shows goes on the row: the working orders (and their prices, when they were
    moved outside tradectl), a restore its orders settled, the end of a gap or its start."""
    changes: list[str] = []
    # A row that names an order this read does not know was written after the read (an
    # `adjust` meanwhile): the read is older than the row, and the row is left as it is.
    current = all(i is None or i in book.by_id or i in book.successor
                  for i in (row.stop_order_id, row.target_order_id))
    for order, leg in ((verdict.stop, "stop"), (verdict.target, "target")) if current else ():
        if order is None:
            continue
        price = order.stop_price if leg == "stop" else order.limit_price
        was = row.stop_loss if leg == "stop" else row.take_profit
        setattr(row, f"{leg}_order_id", order.id)
        if price is not None and price != was:
            setattr(row, "stop_loss" if leg == "stop" else "take_profit", price)
            message = f"{row.symbol}: {leg} at Alpaca is {price} (was {was})"
            journal.record("exit_moved", message, cycle_id=row.cycle_id, position_id=row.id,
                           details={"order_id": order.id, "old_price": was, "price": price})
            changes.append(message)
    if verdict.restore is not None and row.restore_client_order_id \
            and row.restore_order_id is None:
        row.restore_order_id = verdict.restore.id
        message = (f"{row.symbol}: restore OCO {verdict.restore.id} found at Alpaca "
                   f"({verdict.restore.status})")
        journal.record("protection_restored", message, cycle_id=row.cycle_id,
                       position_id=row.id)
        changes.append(message)
    if verdict.state == PROTECTED and (row.unprotected_since or row.protection_error):
        row.unprotected_since = row.protection_error = None
        stop = verdict.stop
        message = (f"{row.symbol}: protected again: stop {stop.stop_price} (order {stop.id})"
                   if stop else f"{row.symbol}: protected again")
        journal.record("protected", message, cycle_id=row.cycle_id, position_id=row.id)
        changes.append(message)
    elif verdict.state == UNPROTECTED and verdict.action is None and verdict.reason \
            and mark_unprotected(journal, channel, row, verdict.reason):
        changes.append(f"{row.symbol}: UNPROTECTED: {verdict.reason}")
    return changes


def _act(db: Database, broker: Broker, channel: Channel | None, plan: _Plan, now: datetime,
         gate_wait: float) -> tuple[Verdict, list[str], str | None]:
    with db.lock("cycle", wait=gate_wait) as gate:
        if not gate:
            return plan.verdict, [f"{plan.symbol}: the trading gate is busy: its protection is "
                                  "acted on next tick"], None
        try:  # the market-data API's last trade, right before: the positions' price can lag
            last: Decimal | None = broker.latest_trade_price(plan.symbol)
        except BrokerError:
            last = plan.last_trade
        if last is not None and gapped_through(plan.side, plan.stop, last):
            return _close_gapped(db, broker, channel, replace(plan, last_trade=last), now)
        return _restore(db, broker, channel, plan, now)


def _still_open(journal: Journal, plan: _Plan) -> Position | None:
    """The row, locked, if the gap is still there to act on: open, no close sent, the restore
    as the verdict saw it, the cycle active (a halt latched meanwhile stops everything)."""
    row = journal.position_for_update(plan.position_id)
    cycle = journal.latest_cycle()
    if row.status != "open" or row.exit_sent_at is not None \
            or row.restore_client_order_id != plan.restore_seen \
            or (cycle is not None and cycle.status != "active"):
        return None
    return row


def _restore(db: Database, broker: Broker, channel: Channel | None, plan: _Plan,
             now: datetime) -> tuple[Verdict, list[str], str | None]:
    verdict = plan.verdict
    with db.transaction() as journal:
        row = _still_open(journal, plan)
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
            return _record_restore_refused(db, channel, plan, err)
        try:  # never sent again: looked up once, at once, as `open` does
            order = broker.find_order_by_client_id(request.client_order_id)
        except BrokerError:
            order = None
        if order is None:  # Alpaca's orders settle it on a later tick
            return _record_restore_unknown(db, channel, plan, err)
    assert order is not None
    return _record_restored(db, channel, plan, order)


def _record_restored(db: Database, channel: Channel | None, plan: _Plan,
                     order: Order) -> tuple[Verdict, list[str], str | None]:
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
            mark_unprotected(journal, channel, row, message)
        journal.commit()
    state = PROTECTED if working else UNPROTECTED
    return (replace(plan.verdict, state=state, action=None, stop=stop, target=order,
                    restore=order), [message], None if working else message)


def _record_restore_refused(db: Database, channel: Channel | None, plan: _Plan,
                            err: BrokerError) -> tuple[Verdict, list[str], str | None]:
    reason = f"restore refused: {err.message}"
    with db.transaction() as journal:
        row = journal.position(plan.position_id)
        row.restore_client_order_id = None  # no such order exists; restore_sent_at spaces tries
        journal.record("protection_failed", f"{row.symbol}: {reason}", cycle_id=row.cycle_id,
                       position_id=row.id, details={"http_status": err.status,
                                                    "alpaca_code": err.code})
        mark_unprotected(journal, channel, row, reason)
        journal.commit()
    return (replace(plan.verdict, action=None, reason=reason),
            [f"{plan.symbol}: UNPROTECTED: {reason}"], f"{plan.symbol}: {reason}")


def _record_restore_unknown(db: Database, channel: Channel | None, plan: _Plan,
                            err: BrokerError) -> tuple[Verdict, list[str], str | None]:
    reason = (f"restore outcome unknown ({err.message}): settled from Alpaca's orders, not "
              "sent again")
    with db.transaction() as journal:
        row = journal.position(plan.position_id)
        journal.record("protection_unknown", f"{row.symbol}: {reason}", cycle_id=row.cycle_id,
                       position_id=row.id,
                       details={"client_order_id": row.restore_client_order_id})
        mark_unprotected(journal, channel, row, reason)
        journal.commit()
    return (replace(plan.verdict, action=None, reason=reason),
            [f"{plan.symbol}: UNPROTECTED: {reason}"], f"{plan.symbol}: {reason}")


def _close_gapped(db: Database, broker: Broker, channel: Channel | None, plan: _Plan,
                  now: datetime) -> tuple[Verdict, list[str], str | None]:
    held = plan.verdict.held
    with db.transaction() as journal:
        row = _still_open(journal, plan)
        if row is None:
            return replace(plan.verdict, action=None), [], None
        message = (f"{row.symbol}: gapped through the stop {price_text(row.stop_loss)} (last "
                   f"trade {price_text(plan.last_trade) if plan.last_trade else '?'}): closing "
                   f"{held:f} at market")
        row.status, row.close_reason, row.exit_sent_at = "closing", "stop_loss", now
        row.exit_order_id = None
        journal.record("gapped_through_stop", message, cycle_id=row.cycle_id,
                       position_id=row.id, details={"last_trade": plan.last_trade,
                                                    "stop": row.stop_loss, "qty": held})
        queue_alert(journal, channel, "gapped_through_stop",
                    f"GAPPED THROUGH THE STOP - {row.symbol} #{row.id} closed at market",
                    f"{message}.\n\nNo stop was working at Alpaca for these shares and the "
                    "market has already traded through it: a stop placed now would be refused, "
                    "and its intent is to be out.\n", cycle_id=row.cycle_id)
        journal.commit()
        view = position_view(row)
    outcome = close_at_market(db, broker, channel, plan.position_id, cancel=list(plan.cancel),
                              held=held, account_qty=plan.account_qty, view=view)
    state = UNPROTECTED if outcome.state == "failed" else None
    summary = f"{plan.symbol}: close at market {outcome.state}" + (
        f" (order {outcome.close_order_id})" if outcome.close_order_id else "") + (
        f": {outcome.error}" if outcome.error else "")
    return (replace(plan.verdict, state=state, action=None, reason=outcome.error),
            [message, summary], summary if outcome.failed else None)


def _views(db: Database, views: tuple[PositionView, ...], verdicts: dict[int, Verdict],
           touched: set[int]) -> tuple[PositionView, ...]:
    """The tick's views with their protection; rows acted on are read again."""
    fresh: dict[int, PositionView] = {}
    if touched:
        with db.read() as journal:
            for position_id in touched:
                row = journal.position(position_id)
                fresh[position_id] = position_view(row)
    result = []
    for view in views:
        if view.id in fresh:
            view = replace(fresh[view.id], last_price=view.last_price,
                           unrealized_pl=view.unrealized_pl)
        verdict = verdicts.get(view.id)
        result.append(replace(view, **verdict.view_fields()) if verdict else view)
    return tuple(result)
