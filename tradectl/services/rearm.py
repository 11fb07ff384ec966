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
from typing import Any

from tradectl.broker import Broker, BrokerPosition, OcoExitRequest, Order
from tradectl.db.journal import Journal
from tradectl.db.models import LIVE_POSITION_STATUSES, Position
from tradectl.db.session import Database
from tradectl.errors import BrokerError
from tradectl.formats import price_text
from tradectl.notify import Channels
from tradectl.services.alerts import queue_alert
from tradectl.services.close_position import close_at_market, mark_unprotected
from tradectl.services.orders import apply_exit_order
from tradectl.services.protection import (
    CLOSING,
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
from tradectl.services.reconcile import (
    UNKNOWN_GRACE,
    Holding,
    OrderBook,
    write_outcome_unknown,
)
from tradectl.services.row_views import position_view
from tradectl.views import PositionView, overlaid

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


def keep_protected(db: Database, broker: Broker, channel: Channels | None, *,
                   orders: list[Order], held: list[BrokerPosition],
                   views: tuple[PositionView, ...], now: datetime, rearm: bool,
                   stopped: bool, act: bool = True,
                   gate_wait: float = GATE_WAIT_SECONDS) -> ProtectionReport:
    """`views`: the live positions as the tick's sync left them. `stopped`: the cycle is
    stopped. `act` False (a read-only watch): verdicts for the screen, nothing written or sent.

    Every position is judged from its view; only those with something to record or do are
    loaded and written, in one transaction (a quiet tick writes nothing)."""
    book = OrderBook.of(orders)
    market = {p.symbol: p for p in held}
    blocked = _blocked(stopped, rearm)
    facts = [v for v in views if v.is_live and not v.local_only]
    verdicts = {f.id: _judge(f, book, market, blocked, now) for f in facts}
    todo = {f.id for f in facts if act and (verdicts[f.id].action or _lost_close_pending(f)
                                            or _row_changes(f, verdicts[f.id], book))}
    changes: list[str] = []
    plans: list[_Plan] = []
    if todo:
        with db.transaction() as journal:
            cycle = journal.latest_cycle()
            blocked = _blocked(cycle is not None and cycle.status != "active", rearm)
            taken = journal.tracked_order_ids()
            for row in journal.positions_by_id(todo, for_update=True):
                if row.status not in LIVE_POSITION_STATUSES:
                    continue
                changes += _settle_lost_close(journal, row, orders, taken, now)
                verdict = verdicts[row.id] = _judge(row, book, market, blocked, now)
                changes += _record_verdict(journal, channel, row, verdict, book)
                if verdict.action is not None:
                    holding = market.get(row.symbol)
                    plans.append(_Plan(row.id, row.symbol, row.side, row.stop_loss,
                                       row.take_profit, verdict, row.restore_client_order_id,
                                       tuple(cancel_targets(row, book)),
                                       abs(holding.qty) if holding else None,
                                       holding.current_price if holding else None))
            journal.commit()
    errors: list[str] = []
    for plan in plans:
        verdict, change, error = _act(db, broker, channel, plan, now, gate_wait)
        verdicts[plan.position_id] = verdict
        changes += change
        errors += [error] if error else []
    positions = _views(db, views, verdicts, touched=todo)
    unprotected = tuple(f"{p.symbol} #{p.id}" for p in positions if p.unprotected)
    return ProtectionReport(positions, tuple(changes), unprotected,
                            "; ".join(errors) if errors else None)


def _blocked(stopped: bool, rearm: bool) -> str | None:
    """Why nothing may be restored now, or None."""
    if stopped:
        return "trading is stopped: nothing is restored until `tradectl resume`"
    return None if rearm else "REARM_PROTECTION=false: not restored"


def _judge(position: Holding, book: OrderBook, market: dict[str, BrokerPosition],
           blocked: str | None, now: datetime) -> Verdict:
    holding = market.get(position.symbol)
    return protection_verdict(position, book,
                              last_trade=holding.current_price if holding else None,
                              broker_holds=holding is not None, restore_blocked=blocked, now=now)


def _lost_close_pending(position: Holding) -> bool:
    return position.status == "closing" and not position.exit_order_id \
        and position.exit_sent_at is not None


def _settle_lost_close(journal: Journal, row: Position, orders: list[Order], taken: set[str],
                       now: datetime) -> list[str]:
    """A close at market whose answer was lost: found in Alpaca's orders, or, once they have
    not shown it for UNKNOWN_GRACE, never placed (the row is open again)."""
    if not _lost_close_pending(row):
        return []
    assert row.exit_sent_at is not None
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


@dataclass(frozen=True)
class _Change:
    """One thing to record on a row: column values, maybe an event, maybe the start of a gap
    (`unprotected`: its reason)."""

    values: dict[str, Any]
    kind: str | None = None
    message: str | None = None
    details: dict[str, Any] | None = None
    unprotected: str | None = None


def _row_changes(row: Holding, verdict: Verdict, book: OrderBook) -> list[_Change]:
    """What Alpaca shows that the row does not say yet: the working orders (and their prices,
    when they were moved outside tradectl), a restore its orders settled, the end of a gap or
    its start. Empty on a quiet tick."""
    found: list[_Change] = []
    # A row naming an order this read does not know was written after the read (an `adjust`
    # meanwhile): the read is older than the row, which is left as it is.
    current = all(i is None or i in book.by_id or i in book.successor
                  for i in (row.stop_order_id, row.target_order_id))
    for order, leg, price_field in ((verdict.stop, "stop", "stop_loss"),
                                    (verdict.target, "target", "take_profit")):
        if order is None or not current:
            continue
        if getattr(row, f"{leg}_order_id") != order.id:
            found.append(_Change({f"{leg}_order_id": order.id}))
        price, was = (order.stop_price if leg == "stop" else order.limit_price,
                      getattr(row, price_field))
        if price is not None and price != was:
            found.append(_Change({price_field: price}, "exit_moved",
                                 f"{row.symbol}: {leg} at Alpaca is {price} (was {was})",
                                 {"order_id": order.id, "old_price": was, "price": price}))
    restore = verdict.restore
    if restore is not None and row.restore_client_order_id and row.restore_order_id is None:
        found.append(_Change({"restore_order_id": restore.id}, "protection_restored",
                             f"{row.symbol}: restore OCO {restore.id} found at Alpaca "
                             f"({restore.status})"))
    if verdict.state == PROTECTED and (row.unprotected_since or row.protection_error):
        stop = verdict.stop
        found.append(_Change({"unprotected_since": None, "protection_error": None}, "protected",
                             f"{row.symbol}: protected again" + (
                                 f": stop {stop.stop_price} (order {stop.id})" if stop else "")))
    elif verdict.state == UNPROTECTED and verdict.action is None and verdict.reason and (
            row.unprotected_since is None or row.protection_error != verdict.reason):
        found.append(_Change({}, unprotected=verdict.reason))
    return found


def _record_verdict(journal: Journal, channel: Channels | None, row: Position, verdict: Verdict,
                    book: OrderBook) -> list[str]:
    changes: list[str] = []
    for change in _row_changes(row, verdict, book):
        for name, value in change.values.items():
            setattr(row, name, value)
        if change.kind is not None and change.message is not None:
            journal.record(change.kind, change.message, cycle_id=row.cycle_id,
                           position_id=row.id, details=change.details)
            changes.append(change.message)
        if change.unprotected is not None \
                and mark_unprotected(journal, channel, row, change.unprotected):
            changes.append(f"{row.symbol}: UNPROTECTED: {change.unprotected}")
    return changes


def _act(db: Database, broker: Broker, channel: Channels | None, plan: _Plan, now: datetime,
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
    """The row, locked, if the gap is still there to act on: open (no close working), the
    restore as the verdict saw it, the cycle active (a halt latched meanwhile stops it all)."""
    row = journal.position_for_update(plan.position_id)
    cycle = journal.latest_cycle()
    if row.status != "open" or row.restore_client_order_id != plan.restore_seen \
            or (cycle is not None and cycle.status != "active"):
        return None
    return row


def _restore(db: Database, broker: Broker, channel: Channels | None, plan: _Plan,
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


def _record_restored(db: Database, channel: Channels | None, plan: _Plan,
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


def _record_restore_refused(db: Database, channel: Channels | None, plan: _Plan,
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


def _record_restore_unknown(db: Database, channel: Channels | None, plan: _Plan,
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


def _close_gapped(db: Database, broker: Broker, channel: Channels | None, plan: _Plan,
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
        if row.unprotected_since is None:  # one alert per gap, whatever follows
            row.unprotected_since = now
            queue_alert(journal, channel, "gapped_through_stop",
                        f"GAPPED THROUGH THE STOP - {row.symbol} #{row.id} closing at market",
                        f"{message}.\n\nNo stop was working at Alpaca for these shares and the "
                        "market has already traded through it: a stop placed now would be "
                        "refused, and its intent is to be out.\n", cycle_id=row.cycle_id)
        journal.commit()
        view = position_view(row)
    outcome = close_at_market(db, broker, channel, plan.position_id, cancel=list(plan.cancel),
                              held=held, account_qty=plan.account_qty, view=view, gap=True)
    state = {"failed": UNPROTECTED, "closing": CLOSING, "unknown": CLOSING}.get(outcome.state)
    summary = f"{plan.symbol}: " + {
        "closed": f"closed at market (order {outcome.close_order_id})",
        "closing": f"close order {outcome.close_order_id} working",
        "unknown": f"close at market sent, outcome unknown: {outcome.error}",
    }.get(outcome.state, f"close at market {outcome.state}: {outcome.error}")
    return (replace(plan.verdict, state=state, action=None,
                    reason=outcome.position.protection_error or outcome.error),
            [message, summary], summary if outcome.failed else None)


def _views(db: Database, views: tuple[PositionView, ...], verdicts: dict[int, Verdict],
           touched: set[int]) -> tuple[PositionView, ...]:
    """The tick's views with their protection; rows acted on are read again."""
    fresh: dict[int, PositionView] = {}
    if touched:
        with db.read() as journal:
            fresh = {row.id: position_view(row) for row in journal.positions_by_id(touched)}
    result = []
    for view in views:
        if view.id in fresh:
            view = replace(fresh[view.id], last_price=view.last_price,
                           unrealized_pl=view.unrealized_pl)
        verdict = verdicts.get(view.id)
        result.append(overlaid(view, verdict.view_fields()) if verdict else view)
    return tuple(result)
