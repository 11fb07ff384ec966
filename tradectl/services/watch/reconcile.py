"""Bring tracked positions in line with the orders Alpaca reports. Shared by watch, status, halt
and open: each reads the orders once (one request, or one per page), never one per position.

A position without an order id has an order outcome tradectl does not know: the process died
between submit and record, or the answer to the submit was lost. It stays `pending` (and
`alpaca_status=unknown` when the answer was lost) until Alpaca's orders show the order, or until
they have not shown it for UNKNOWN_GRACE.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from tradectl.broker import BrokerPosition, Order
from tradectl.db.journal import Journal
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.money import price_or_none
from tradectl.domain.states import AlpacaStatusMark, PositionEvent, move
from tradectl.errors import BrokerError, BrokerTimeout, BrokerUnreachable
from tradectl.services.orders import (
    apply_bracket,
    apply_entry_order,
    apply_exit_fills,
    apply_exit_order,
)

# How long an order tradectl may have sent can stay out of Alpaca's orders before it counts as
# never placed. A request that reached Alpaca is acted on within seconds; our own requests give
# up after ALPACA_TIMEOUT, and an `open` mid-submit holds its row for at most that long. Ten
# minutes covers both with room for a slow proxy and clock skew between Alpaca and this machine.
UNKNOWN_GRACE = timedelta(minutes=10)
UNKNOWN = AlpacaStatusMark.UNKNOWN.value


class Holding(Protocol):
    """What the order rules read of a position: a Position row, or its PositionView (the same
    names, read-only)."""

    @property
    def id(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def alpaca_status(self) -> str | None: ...
    @property
    def filled_qty(self) -> Decimal | None: ...
    @property
    def stop_loss(self) -> Decimal: ...
    @property
    def take_profit(self) -> Decimal: ...
    @property
    def alpaca_order_id(self) -> str | None: ...
    @property
    def client_order_id(self) -> str: ...
    @property
    def stop_order_id(self) -> str | None: ...
    @property
    def target_order_id(self) -> str | None: ...
    @property
    def restore_client_order_id(self) -> str | None: ...
    @property
    def restore_order_id(self) -> str | None: ...
    @property
    def restore_sent_at(self) -> datetime | None: ...
    @property
    def unprotected_since(self) -> datetime | None: ...
    @property
    def protection_error(self) -> str | None: ...
    @property
    def exit_order_id(self) -> str | None: ...
    @property
    def exit_sent_at(self) -> datetime | None: ...
    @property
    def outside_qty(self) -> Decimal | None: ...


@dataclass(frozen=True)
class OrderBook:
    """The orders of one read, by id (legs included) and by client_order_id, and which order
    replaced which (a PATCH gives the new order a new id)."""

    by_id: dict[str, Order] = field(default_factory=dict)
    by_client_id: dict[str, Order] = field(default_factory=dict)
    successor: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, orders: Iterable[Order]) -> OrderBook:
        book = cls()
        for order in orders:
            for one in (order, *order.legs):
                book.by_id[one.id] = one
                if one.client_order_id:
                    book.by_client_id.setdefault(one.client_order_id, one)
                if one.replaced_by:
                    book.successor[one.id] = one.replaced_by
                if one.replaces:
                    book.successor.setdefault(one.replaces, one.id)
        return book

    def entry_of(self, position: Holding) -> Order | None:
        return self.by_id.get(position.alpaca_order_id or "") or self.by_client_id.get(
            position.client_order_id)

    def latest(self, order_id: str) -> Order | None:
        """The order as it stands now: itself, or what replaced it (and so on)."""
        if order_id not in self.successor:
            return self.by_id.get(order_id)
        seen = {order_id}
        while (after := self.successor.get(order_id)) is not None and after not in seen:
            order_id = after
            seen.add(order_id)
        return self.by_id.get(order_id)


def exit_orders(position: Holding, book: OrderBook) -> list[Order]:
    """The orders that exit this position's shares, as Alpaca shows them now: its bracket's
    legs, the OCO a restore placed, the orders recorded as its stop and take-profit; a replaced
    order counts as its replacement."""
    side = "sell" if position.side == "buy" else "buy"
    entry = book.entry_of(position)
    candidates = list(entry.legs) if entry is not None else []
    restore = (book.by_client_id.get(position.restore_client_order_id or "")
               or book.by_id.get(position.restore_order_id or ""))
    if restore is not None:
        restore = book.latest(restore.id) or restore
        candidates += [restore, *restore.legs]
    for order_id in (position.stop_order_id, position.target_order_id):
        if order_id and (recorded := book.latest(order_id)) is not None:
            candidates.append(recorded)
    found: dict[str, Order] = {}
    for order in candidates:
        latest = book.latest(order.id) or order if book.successor else order
        if latest.side == side:
            found.setdefault(latest.id, latest)
    return list(found.values())


def _beyond_bracket(position: Holding, entry: Order) -> bool:
    """The position has exit orders its bracket's legs do not show: a restore, or an order
    recorded as its stop or take-profit that is not one of the legs (a replacement)."""
    if position.restore_client_order_id or position.restore_order_id:
        return True
    legs = {leg.id for leg in entry.legs}
    return any(i is not None and i not in legs
               for i in (position.stop_order_id, position.target_order_id))


def write_outcome_unknown(err: BrokerError) -> bool:
    """After a failed write (an order, a replace, a close): no answer, an unreadable one, or a
    server error means Alpaca may have acted on it. A refused connection or a 4xx means not."""
    if isinstance(err, BrokerUnreachable):
        return False
    return isinstance(err, BrokerTimeout) or err.status is None or err.status >= 500


def outcome_unknown(position: Position) -> bool:
    """No order id recorded: whether Alpaca has the order is not known yet."""
    return position.status == "pending" and position.alpaca_order_id is None


def sync_position(position: Position, book: OrderBook, now: datetime) -> str | None:
    """Apply what the orders say to one live, broker-backed position. Returns what changed."""
    exit_order = book.by_id.get(position.exit_order_id or "")
    order = book.entry_of(position)
    if exit_order is not None:  # closed outside its bracket: the entry's fills, then the close
        before = position.status
        if order is not None:
            apply_entry_order(position, order, now)
        if position.filled_qty:  # an entry that never filled has nothing to exit
            apply_exit_order(position, exit_order, now)
            position.alpaca_error = None
        if position.close_reason == "emergency_stop":
            position.alpaca_status = AlpacaStatusMark.CLOSED_BY_EMERGENCY_STOP.value
        if position.status == before:
            return None
        return (f"closed at {price_or_none(position.exit_price)}" if position.status == "closed"
                else position.status)
    if order is not None:
        recovered = outcome_unknown(position)
        change = apply_bracket(position, order, now)
        if position.status == "open" and _beyond_bracket(position, order):
            # a restore's OCO or a replaced leg filled
            change = apply_exit_fills(position, exit_orders(position, book), now) or change
        if recovered:
            position.alpaca_error = None
            return f"order {order.id} found by client_order_id ({order.status})"
        return change
    if outcome_unknown(position) and now - position.created_at >= UNKNOWN_GRACE:
        move(position, PositionEvent.NEVER_PLACED)
        position.alpaca_status = AlpacaStatusMark.ERROR.value
        position.alpaca_error = (f"Alpaca's orders have not shown this client_order_id for "
                                 f"{UNKNOWN_GRACE.seconds // 60} minutes: it was never placed")
        position.closed_at = now
        return "failed: the order never reached Alpaca"
    return None


def settle_unknown_orders(db: Database, orders: list[Order], now: datetime) -> list[str]:
    """Rows whose order outcome is unknown, settled from an orders read already made; one short
    transaction. Returns what changed."""
    book = OrderBook.of(orders)
    changes = []
    with db.transaction() as journal:
        for position in journal.live_positions():
            if outcome_unknown(position) and (change := sync_position(position, book, now)):
                changes.append(f"{position.symbol}: {change}")
                journal.record("position_synced", f"{position.symbol}: {change}",
                               cycle_id=position.cycle_id, position_id=position.id)
        journal.commit()
    return changes


def sync_live_positions(journal: Journal, live: list[Position], book: OrderBook,
                        market: dict[str, BrokerPosition], now: datetime) -> list[str]:
    """A watch tick's sync: every broker-backed live position brought in line with the orders,
    then with the shares Alpaca holds (services/watch/outside.py: shares sold outside tradectl, a
    row Alpaca no longer holds settled); each change an event. An open row Alpaca holds nothing
    for while one of its own orders is still working is flagged, and settled once they end."""
    from tradectl.services.watch.outside import NOT_HELD, record_outside_exits  # builds on this one

    changes: dict[int, str] = {}
    for position in live:
        if position.alpaca_status != "alpaca_disabled" \
                and (change := sync_position(position, book, now)) is not None:
            changes[position.id] = change
    recorded = record_outside_exits(journal, live, market, book, now)
    for position in live:
        if position.status == "open" and position.filled_qty and position.symbol not in market \
                and position.alpaca_error != NOT_HELD \
                and position.alpaca_status != "alpaca_disabled":
            position.alpaca_error = NOT_HELD
            changes[position.id] = "flagged: tracked as open but Alpaca holds no position"
    for position in live:
        if (change := changes.get(position.id)) is None or position.id in recorded:
            continue
        journal.record("position_synced", f"{position.symbol}: {change}",
                       cycle_id=position.cycle_id, position_id=position.id,
                       details={"status": position.status,
                                "alpaca_status": position.alpaca_status})
        recorded[position.id] = f"{position.symbol}: {change}"
    return list(recorded.values())
