"""Keep every held share protected: `watch`'s step after the sync. From the orders the tick
already read, each tracked position with shares gets a verdict (services/protection.py), the
row records what Alpaca shows (the working stop and take-profit, a settled lost answer), and a
gap is acted on, at most once per gap:

- no stop working, the cycle active, REARM_PROTECTION on: one OCO exit order restores stop and
  target for the shares Alpaca holds for the position (services/watch/restore.py);
- the last trade at or beyond the stop: the stop's intent is to be out, so the position is
  closed at market (close_reason stop_loss), said in the event, the tick's changes and an alert;
- a restore refused (or not allowed: the cycle stopped, REARM_PROTECTION off): UNPROTECTED, an
  event and one alert per position per gap; tried again after RESTORE_RETRY.

- a close in doubt (written ahead, no close order recorded) whose close is not running:
  completed from Alpaca's orders, or the row open again and re-protected
  (services/position/interrupted_close.py).

Orders are sent under the trading gate, like `open`: a halt's latch cannot pass between the
cycle check and the order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradectl.broker import Broker, BrokerPosition, Order
from tradectl.db.journal import Journal
from tradectl.db.models import LIVE_POSITION_STATUSES, Position
from tradectl.db.session import Database
from tradectl.domain.clock import Clock
from tradectl.domain.money import price_text
from tradectl.domain.states import PositionEvent, move
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.alerts import queue_alert
from tradectl.services.position.interrupted_close import (
    exit_lock,
    in_doubt,
    not_running,
    orders_since_sent,
    settle_and_flag,
)
from tradectl.services.position.market_close import close_at_market, mark_unprotected
from tradectl.services.protection import (
    CLOSING,
    PROTECTED,
    UNPROTECTED,
    Verdict,
    account_shares,
    cancel_targets,
    gapped_through,
    protection_verdict,
)
from tradectl.services.row_views import position_view
from tradectl.services.watch.reconcile import (
    Holding,
    OrderBook,
)
from tradectl.services.watch.restore import Plan, restore, still_open
from tradectl.views import PositionView, overlaid

GATE_WAIT_SECONDS = 5.0  # an `open` holds the gate for one submit at most


@dataclass(frozen=True)
class ProtectionReport:
    positions: tuple[PositionView, ...]  # the tick's views, with their protection
    changes: tuple[str, ...] = ()
    unprotected: tuple[str, ...] = ()  # "AAPL #3" for each position UNPROTECTED now
    error: str | None = None  # a restore or a close Alpaca refused in this tick


def keep_protected(db: Database, broker: Broker, channel: Channels | None, *,
                   orders: list[Order], held: list[BrokerPosition],
                   views: tuple[PositionView, ...], now: datetime, clock: Clock, rearm: bool,
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
    todo = {f.id for f in facts if act and (verdicts[f.id].action or in_doubt(f)
                                            or _row_changes(f, verdicts[f.id], book))}
    changes: list[str] = []
    plans: list[Plan] = []
    if todo:
        # A close in doubt whose lock is free is not running: settled from orders read now.
        with not_running(db, [f for f in facts if f.id in todo]) as free:
            fresh = orders_since_sent(broker, facts, free)
            if fresh is not None:  # the read made now wins over the tick's
                orders = list({o.id: o for o in [*orders, *fresh]}.values())
                book = OrderBook.of(orders)
            with db.transaction() as journal:
                cycle = journal.latest_cycle()
                blocked = _blocked(cycle is not None and cycle.status != "active", rearm)
                taken = journal.tracked_order_ids()
                for row in journal.positions_by_id(todo, for_update=True):
                    if row.status not in LIVE_POSITION_STATUSES:
                        continue
                    settled = settle_and_flag(journal, channel, row, orders, book, taken, now,
                                              interrupted=row.id in free and fresh is not None)
                    changes += [settled] if settled else []
                    verdict = verdicts[row.id] = _judge(row, book, market, blocked, now)
                    changes += _record_verdict(journal, channel, row, verdict, book, now)
                    if verdict.action is not None:
                        plans.append(_plan(row, verdict, book, market.get(row.symbol)))
                journal.commit()
    errors: list[str] = []
    for plan in plans:
        verdict, change, error = _act(db, broker, channel, plan, now, gate_wait, clock)
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
                              broker_holds=holding is not None, restore_blocked=blocked, now=now,
                              account_qty=account_shares(holding, position.side))


def _plan(row: Position, verdict: Verdict, book: OrderBook,
          holding: BrokerPosition | None) -> Plan:
    return Plan(row.id, row.symbol, row.side, row.stop_loss, row.take_profit, verdict,
                 row.restore_client_order_id, tuple(cancel_targets(row, book)),
                 abs(holding.qty) if holding else None,
                 holding.current_price if holding else None)


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
                    book: OrderBook, now: datetime) -> list[str]:
    changes: list[str] = []
    for change in _row_changes(row, verdict, book):
        for name, value in change.values.items():
            setattr(row, name, value)
        if change.kind is not None and change.message is not None:
            journal.record(change.kind, change.message, cycle_id=row.cycle_id,
                           position_id=row.id, details=change.details)
            changes.append(change.message)
        if change.unprotected is not None \
                and mark_unprotected(journal, channel, row, change.unprotected, now):
            changes.append(f"{row.symbol}: UNPROTECTED: {change.unprotected}")
    return changes


def _act(db: Database, broker: Broker, channel: Channels | None, plan: Plan, now: datetime,
         gate_wait: float, clock: Clock) -> tuple[Verdict, list[str], str | None]:
    with db.lock("cycle", wait=gate_wait) as gate:
        if not gate:
            return plan.verdict, [f"{plan.symbol}: the trading gate is busy: its protection is "
                                  "acted on next tick"], None
        try:  # the market-data API's last trade, right before: the positions' price can lag
            last: Decimal | None = broker.latest_trade_price(plan.symbol)
        except BrokerError:
            last = plan.last_trade
        if last is not None and gapped_through(plan.side, plan.stop, last):
            return _close_gapped(db, broker, channel, replace(plan, last_trade=last), now,
                                 clock)
        return restore(db, broker, channel, plan, now, clock)


def _close_gapped(db: Database, broker: Broker, channel: Channels | None, plan: Plan,
                  now: datetime, clock: Clock) -> tuple[Verdict, list[str], str | None]:
    with exit_lock(db, plan.position_id, wait=0) as lock:  # a `close` of it is running
        if not lock:
            return replace(plan.verdict, action=None), [], None
        return _close_gapped_locked(db, broker, channel, plan, now, clock)


def _close_gapped_locked(db: Database, broker: Broker, channel: Channels | None, plan: Plan,
                         now: datetime, clock: Clock) -> tuple[Verdict, list[str], str | None]:
    held = plan.verdict.held
    with db.transaction() as journal:
        row = still_open(journal, plan)
        if row is None:
            return replace(plan.verdict, action=None), [], None
        message = (f"{row.symbol}: gapped through the stop {price_text(row.stop_loss)} (last "
                   f"trade {price_text(plan.last_trade) if plan.last_trade else '?'}): closing "
                   f"{held:f} at market")
        move(row, PositionEvent.CLOSE_SENT)
        row.close_reason, row.exit_sent_at = "stop_loss", now
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
                              held=held, account_qty=plan.account_qty, view=view, gap=True,
                              clock=clock)
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
