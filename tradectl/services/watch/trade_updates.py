"""Alpaca's trade updates, applied between two ticks of `watch` with the tick's rules: on the
loop's own thread (one writer), once they have arrived (no network wait inside a transaction),
in one short transaction per batch, through the tick's sync_position.

A leg's update comes alone: its bracket is found among the orders last read (the tick's read,
with the updates since laid over it). An update older than what is known (the tick read the
order while the update was still queued) never takes back a fill or a final status. What the
stream missed (a gap while it reconnected, an unreadable update) the next tick reads anyway.

An update that touches an open position (a leg cancelled or expired, a fill, a replacement) runs
the tick's protection check (services/watch/rearm.py) for the positions it touched, on the orders as
known, so an expired day leg is restored at once rather than at the next tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tradectl.broker import Broker, Order, StreamStatus, TradeUpdates
from tradectl.db.journal import Journal
from tradectl.db.models import LIVE_POSITION_STATUSES, Position
from tradectl.db.session import Database
from tradectl.domain.clock import Clock
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.row_views import position_view
from tradectl.services.row_views import recent_events as newest_events
from tradectl.services.watch.rearm import keep_protected
from tradectl.services.watch.reconcile import OrderBook, exit_orders, sync_position
from tradectl.views import EventView, PositionView

LEG_DEAD = frozenset({"canceled", "expired", "rejected"})


@dataclass(frozen=True)
class StreamReport:
    """What one batch of trade updates changed (or that the stream's state changed); the
    positions and events as they stand after it, when it was applied."""

    at: datetime
    stream: StreamStatus
    changes: tuple[str, ...] = ()
    positions: tuple[PositionView, ...] | None = None  # None: the database was not read
    events: tuple[EventView, ...] = ()
    error: str | None = None
    protection_error: str | None = None  # a restore or a gap's close Alpaca refused


@dataclass(frozen=True)
class Applied:
    changes: tuple[str, ...]
    positions: tuple[PositionView, ...]
    events: tuple[EventView, ...]
    touched: frozenset[int] = frozenset()  # open positions with shares the batch is about
    cycle_status: str = "none"


class KnownOrders:
    """The latest word on each order: the tick's read, with the stream's updates laid over it."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}  # top-level orders by id
        self._parents: dict[str, str] = {}  # a leg's id -> its bracket's id

    def reset(self, orders: Iterable[Order]) -> None:
        """A fresh read from Alpaca: it replaces everything the stream said before it."""
        self._orders, self._parents = {}, {}
        for order in orders:
            self._keep(order)

    def update(self, order: Order) -> tuple[Order, Order | None]:
        """Lay one update over what is known. Returns its top-level order as now known and,
        for a leg's update, the leg."""
        parent = self._orders.get(self._parents.get(order.id, ""))
        if parent is not None:
            legs = tuple(_later(leg, order) if leg.id == order.id else leg for leg in parent.legs)
            top = replace(parent, legs=legs)
            self._keep(top)
            return top, next(leg for leg in legs if leg.id == order.id)
        known = self._orders.get(order.id)
        top = order if known is None else _merged(known, order)
        self._keep(top)
        return top, None

    def orders(self) -> list[Order]:
        """Every order as now known (top level, legs nested): an orders read, brought up to
        date."""
        return list(self._orders.values())

    def _keep(self, order: Order) -> None:
        self._orders[order.id] = order
        for leg in order.legs:
            self._parents[leg.id] = order.id


def _later(known: Order, update: Order) -> Order:
    """The update, unless it would take back a fill or a final status: then it is older."""
    if (known.is_final and not update.is_final) or update.filled_qty < known.filled_qty:
        return known
    return update


def _merged(known: Order, update: Order) -> Order:
    legs = {leg.id: leg for leg in known.legs}
    merged_legs = tuple(_later(legs[leg.id], leg) if leg.id in legs else leg
                        for leg in update.legs)
    return replace(_later(known, update), legs=merged_legs or known.legs)


def arrivals(updates: TradeUpdates, seconds: float, *, while_down: float | None = None,
             seen: StreamStatus | None = None,
             clock: Clock) -> Iterator[tuple[list[Order], StreamStatus]]:
    """The wait between two ticks, on the stream's queue: each batch of updates, or a change of
    the stream's state, as it comes, for `seconds`.

    With `while_down`, what the stream misses is read soon: while it is not connected the wait
    lasts at most `while_down` seconds, and it ends as soon as the stream connects (again) after
    `seen`, its state when the tick read the orders, so the next tick reads at once whatever
    happened in the gap (Alpaca never replays it)."""
    now = clock.monotonic()
    deadline = now + seconds
    shown = seen or updates.status()
    if while_down is not None and shown.state != "connected":
        deadline = min(deadline, now + while_down)
    while (left := deadline - clock.monotonic()) > 0:
        orders = updates.take(left)
        status = updates.status()
        if orders or status != shown:
            was, shown = shown, status
            yield orders, status
            if while_down is None:
                continue
            if status.state == "connected" and was.state != "connected":
                return  # connected again: the next tick now
            if status.state != "connected":
                deadline = min(deadline, clock.monotonic() + while_down)


def note_refused_keys(db: Database, stream: StreamStatus, recorded: bool) -> bool:
    """Keys the stream refused need a human: recorded once, until it connects again. Returns
    whether it is recorded now."""
    if stream.state == "connected":
        return False
    if stream.state == "unauthorized" and not recorded:
        with db.transaction() as journal:
            journal.record("trade_updates_refused",
                           f"trade updates stream: {stream.detail or 'keys refused'}")
            journal.commit()
        return True
    return recorded


def apply_trade_updates(db: Database, known: KnownOrders, orders: Sequence[Order],
                        now: datetime, recent_events: int) -> Applied:
    """Sync the positions these updates concern, in one transaction; record what changed, and
    a bracket leg that ended while its position is still open."""
    tops: dict[str, Order] = {}
    legs: dict[str, list[Order]] = {}  # by their bracket's id
    for order in orders:
        top, leg = known.update(order)
        tops[top.id] = top
        if leg is not None:
            legs.setdefault(top.id, []).append(leg)
    book = OrderBook.of(tops.values())
    changes: list[str] = []
    with db.transaction() as journal:
        live = journal.live_positions()
        for position in live:
            entry = book.entry_of(position)
            if position.alpaca_status == "alpaca_disabled" or (
                    entry is None and (position.exit_order_id or "") not in book.by_id):
                continue  # nothing in this batch is about it: the tick keeps it in line
            if change := sync_position(position, book, now):
                changes.append(_record(journal, position, "position_synced", change,
                                       status=position.status,
                                       alpaca_status=position.alpaca_status))
            if entry is not None and position.status == "open":
                for leg in legs.get(entry.id, ()):
                    if leg.status in LEG_DEAD:
                        name = "take-profit" if leg.type == "limit" else "stop-loss"
                        changes.append(_record(
                            journal, position, "bracket_leg_ended",
                            f"the {name} leg {leg.status} at Alpaca while the position is open",
                            order_id=leg.id, order_status=leg.status))
        positions = tuple(position_view(p) for p in live
                          if p.status in LIVE_POSITION_STATUSES)
        touched = _touched(live, OrderBook.of(known.orders()), orders)
        events = tuple(newest_events(journal, recent_events))
        cycle = journal.latest_cycle()
        journal.commit()
    return Applied(tuple(changes), positions, events, touched,
                   cycle.status if cycle is not None else "none")


def _touched(live: Iterable[Position], book: OrderBook, orders: Sequence[Order]
             ) -> frozenset[int]:
    """The open positions holding shares that these updates are about: the update is their
    entry, a leg, their restore's OCO, an order recorded as their stop or take-profit, or what
    replaced one. A row naming an order the known orders do not hold yet (a restore sent since
    the tick's read, whose own update has not come) is left to that update or the next tick:
    judged now, it would look unprotected."""
    updated: set[str] = set()
    for order in orders:
        updated |= {o for o in (order.id, order.replaces, order.replaced_by) if o}
        updated |= {leg.id for leg in order.legs}
    found = set()
    for position in live:
        if position.status != "open" or not position.filled_qty \
                or position.alpaca_status == "alpaca_disabled" or not _current(position, book):
            continue
        entry = book.entry_of(position)
        mine = {o.id for o in exit_orders(position, book)} | {
            i for i in (position.stop_order_id, position.target_order_id,
                        position.restore_order_id) if i}
        if entry is not None:
            mine |= {entry.id, *(leg.id for leg in entry.legs)}
        if mine & updated:
            found.add(position.id)
    return frozenset(found)


def _current(position: Position, book: OrderBook) -> bool:
    """The known orders hold every order the row names."""
    recorded = all(i is None or i in book.by_id or i in book.successor
                   for i in (position.stop_order_id, position.target_order_id,
                             position.restore_order_id))
    restore = position.restore_client_order_id
    return recorded and (not restore or restore in book.by_client_id
                         or position.restore_order_id is not None)


def protect_touched(db: Database, broker: Broker, channel: Channels | None,
                    known: KnownOrders, applied: Applied, report: StreamReport, *, rearm: bool,
                    gate_wait: float, recent_events: int, clock: Clock) -> StreamReport:
    """The tick's protection check (the same rules: the cycle active, REARM_PROTECTION, one
    restore per gap, no network wait inside a transaction) for the positions a batch touched,
    on the orders as known and a fresh read of Alpaca's positions (the shares held, a close's
    qty). Only the watch that drives stops calls this."""
    views = tuple(p for p in applied.positions if p.id in applied.touched)
    try:
        found = keep_protected(db, broker, channel, orders=known.orders(),
                               held=broker.list_positions(), views=views, now=report.at,
                               clock=clock,
                               rearm=rearm, stopped=applied.cycle_status == "stopped",
                               gate_wait=gate_wait)
    except BrokerError as err:
        return replace(report, error=f"protection not checked ({err.message}): the next tick "
                       "checks it")
    checked = {p.id: p for p in found.positions}
    report = replace(report, positions=tuple(checked.get(p.id, p) for p in applied.positions),
                     protection_error=found.error)
    if not found.changes:
        return report
    with db.read() as journal:
        events = tuple(newest_events(journal, recent_events))
    return replace(report, changes=report.changes + found.changes, events=events)


def _record(journal: Journal, position: Position, kind: str, change: str,
            **details: object) -> str:
    message = f"{position.symbol}: {change}"
    journal.record(kind, message, cycle_id=position.cycle_id, position_id=position.id,
                   details={**details, "source": "trade_updates"})
    return message
