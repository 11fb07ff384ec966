"""Alpaca's trade updates, applied between two ticks of `watch` with the tick's rules: on the
loop's own thread (one writer), once they have arrived (no network wait inside a transaction),
in one short transaction per batch, through the tick's sync_position.

A leg's update comes alone: its bracket is found among the orders last read (the tick's read,
with the updates since laid over it). An update older than what is known (the tick read the
order while the update was still queued) never takes back a fill or a final status. What the
stream missed (a gap while it reconnected, an unreadable update) the next tick reads anyway.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tradectl.broker import Order, StreamStatus, TradeUpdates
from tradectl.db.journal import Journal, position_view
from tradectl.db.models import LIVE_POSITION_STATUSES, Position
from tradectl.db.session import Database
from tradectl.services.reconcile import OrderBook, sync_position
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


@dataclass(frozen=True)
class Applied:
    changes: tuple[str, ...]
    positions: tuple[PositionView, ...]
    events: tuple[EventView, ...]


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


def arrivals(updates: TradeUpdates, seconds: float) -> Iterator[tuple[list[Order], StreamStatus]]:
    """The wait between two ticks, on the stream's queue: each batch of updates, or a change of
    the stream's state, as it comes, for `seconds`."""
    deadline = time.monotonic() + seconds
    shown = updates.status()
    while (left := deadline - time.monotonic()) > 0:
        orders = updates.take(left)
        status = updates.status()
        if orders or status != shown:
            shown = status
            yield orders, status


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
        events = tuple(journal.recent_events(recent_events))
        journal.commit()
    return Applied(tuple(changes), positions, events)


def _record(journal: Journal, position: Position, kind: str, change: str,
            **details: object) -> str:
    message = f"{position.symbol}: {change}"
    journal.record(kind, message, cycle_id=position.cycle_id, position_id=position.id,
                   details={**details, "source": "trade_updates"})
    return message
