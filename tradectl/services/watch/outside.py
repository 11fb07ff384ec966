"""Trades made at Alpaca outside tradectl on the shares of a tracked position (issue 23): a
sale by hand in the dashboard or on the phone. Alpaca's positions say how many shares are gone;
Alpaca's orders (the ones no tracked position owns) say at what price.

The shares a symbol's open rows account for, minus what Alpaca holds, were exited outside
tradectl. They are taken from the newest row first, their P&L priced on the newest outside fills
that cover them, and recorded on the row (`outside_qty`, `outside_pl`); a row left with no
shares is settled: closed, `close_reason` exited_outside_tradectl, its exit price and P&L
Alpaca's. Nothing is decided while one of the rows' own exit orders is still working (or its
cancel pending): those shares may be leaving through tradectl's own orders, which the order sync
records.

Pure over the rows of one unit of work: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tradectl.broker import BrokerPosition, Order
from tradectl.db.journal import Journal, loaded_values
from tradectl.db.models import Position
from tradectl.domain.loss_limit import position_pnl
from tradectl.domain.money import dollars, price_text, quantity_text
from tradectl.domain.states import PositionEvent, move
from tradectl.services.protection import WORKING, account_shares, exit_side
from tradectl.services.watch.reconcile import OrderBook, exit_orders

OUTSIDE = "exited_outside_tradectl"  # the close_reason of a row Alpaca no longer holds
NOT_HELD = "Alpaca holds no position in this symbol"  # the sync's flag (reconcile.py)
CLOCK_SKEW = timedelta(seconds=5)
_STILL_LEAVING = WORKING | {"pending_cancel"}


@dataclass(frozen=True)
class OutsideExit:
    """What one row took from an outside exit, for its event."""

    position: Position
    qty: Decimal
    price: Decimal | None  # the average price of the outside fills, None when none was found
    settled: bool  # the row has no shares left: closed


def tracked_shares(position: Position, book: OrderBook) -> Decimal:
    """The shares tradectl accounts for on this row now: filled, less what its own exit orders
    and outside trades took."""
    exited = sum((o.filled_qty for o in exit_orders(position, book)), Decimal(0))
    return (position.filled_qty or Decimal(0)) - exited - (position.outside_qty or Decimal(0))


def own_order_ids(rows: Iterable[Position], book: OrderBook) -> set[str]:
    """Every order a live row owns: its entry and legs, its exits and its close."""
    ids: set[str] = set()
    for row in rows:
        entry = book.entry_of(row)
        if entry is not None:
            ids.update(o.id for o in (entry, *entry.legs))
        ids.update(o.id for o in exit_orders(row, book))
        ids.update(i for i in (row.exit_order_id, row.alpaca_order_id, row.stop_order_id,
                               row.target_order_id, row.restore_order_id) if i)
    return ids


def outside_fills(book: OrderBook, own: set[str]) -> dict[tuple[str, str], list[Order]]:
    """The filled orders (in part) no live row owns, by symbol and side: one pass over the read,
    however many symbols."""
    found: dict[tuple[str, str], list[Order]] = {}
    for order in book.by_id.values():
        if order.id not in own and order.filled_qty > 0 and order.filled_at is not None \
                and order.filled_avg_price is not None:
            found.setdefault((order.symbol, order.side), []).append(order)
    return found


def apply_outside_exits(rows: list[Position], holding: BrokerPosition | None, book: OrderBook,
                        fills: dict[tuple[str, str], list[Order]], now: datetime, *,
                        unexplained: bool = False) -> list[OutsideExit]:
    """The open rows of one symbol (one side) against what Alpaca holds in it; `fills` from
    outside_fills. Shares gone with no fill in Alpaca's orders to explain them (a read that
    crossed a fill, say) are taken only from rows already flagged by an earlier tick as not held,
    or when `unexplained` (`close`, asked by the trader)."""
    rows = [r for r in rows if r.status == "open" and r.filled_qty
            and r.alpaca_status != "alpaca_disabled"]
    if not rows or any(_still_moving(r, book) for r in rows):
        return []
    side, symbol = rows[0].side, rows[0].symbol
    shares = {r.id: tracked_shares(r, book) for r in rows}
    since = min(r.created_at for r in rows) - CLOCK_SKEW
    # Shares bought by hand since are the trader's own (external): the rows hold at most the
    # rest. A sale by hand takes the rows' shares first.
    bought = sum((o.filled_qty for o in _since(fills.get((symbol, side), []), since)),
                 Decimal(0))
    shortfall = sum(shares.values(), Decimal(0)) \
        - max(account_shares(holding, side) - bought, Decimal(0))
    if shortfall <= 0:
        return []
    price, last_fill = _outside_price(
        _since(fills.get((symbol, exit_side(side)), []), since), shortfall)
    if price is None and not (unexplained or all(r.alpaca_error == NOT_HELD for r in rows)):
        return []  # confirmed by the next tick (the sync flags a row Alpaca does not hold)
    done = []
    for row in sorted(rows, key=lambda r: r.created_at, reverse=True):  # newest first
        take = min(shares[row.id], shortfall)
        if take <= 0:
            continue
        shortfall -= take
        done.append(_record(row, take, price, shares[row.id] - take, last_fill or now))
        if shortfall <= 0:
            break
    return done


def _still_moving(row: Position, book: OrderBook) -> bool:
    """Its entry still filling, or one of its own exits working (or its cancel pending): shares
    may be moving through tradectl's own orders, which the order sync records."""
    entry = book.entry_of(row)
    return (entry is not None and entry.status in _STILL_LEAVING) \
        or any(o.status in _STILL_LEAVING for o in exit_orders(row, book))


def _since(orders: list[Order], since: datetime) -> list[Order]:
    return [o for o in orders if o.filled_at is not None and o.filled_at >= since]


def _outside_price(orders: list[Order], qty: Decimal
                   ) -> tuple[Decimal | None, datetime | None]:
    """The average price of the newest of these fills covering `qty` shares (None if they do
    not), and when the last of them filled."""
    fills = sorted(orders, key=lambda o: o.filled_at or datetime.min, reverse=True)
    taken, cost = Decimal(0), Decimal(0)
    for order in fills:
        part = min(order.filled_qty, qty - taken)
        assert order.filled_avg_price is not None
        taken, cost = taken + part, cost + part * order.filled_avg_price
        if taken >= qty:
            return cost / qty, fills[0].filled_at
    return None, fills[0].filled_at if fills else None


def _record(row: Position, qty: Decimal, price: Decimal | None, left: Decimal,
            when: datetime) -> OutsideExit:
    entry = row.filled_avg_price
    pl = position_pnl(row.side, entry, price, qty) if price is not None and entry is not None \
        else None
    known = row.outside_qty is None or row.outside_pl is not None
    row.outside_qty = (row.outside_qty or Decimal(0)) + qty
    row.outside_pl = (row.outside_pl or Decimal(0)) + pl if pl is not None and known else None
    if left <= 0:
        move(row, PositionEvent.EXITED)
        row.close_reason, row.closed_at = OUTSIDE, when
        row.exit_price, row.realized_pl = price, row.outside_pl
        row.unprotected_since = row.protection_error = None
        row.alpaca_error = None if price is not None else (
            "exited at Alpaca outside tradectl; no fill in Alpaca's orders gives its price")
    return OutsideExit(row, qty, price, left <= 0)


def describe(done: OutsideExit) -> str:
    row = done.position
    at = f" at {price_text(done.price)}" if done.price is not None else " (price not found)"
    if done.settled:
        pl = f", P&L {dollars(row.realized_pl)}" if row.realized_pl is not None else ""
        return f"closed: {quantity_text(done.qty)} exited at Alpaca outside tradectl{at}{pl}"
    return (f"{quantity_text(done.qty)} exited at Alpaca outside tradectl{at}: "
            f"{quantity_text(row.outside_qty or Decimal(0))} of "
            f"{quantity_text(row.filled_qty or Decimal(0))} gone")


def outside_exits(rows: list[Position], market: dict[str, BrokerPosition], book: OrderBook,
                  now: datetime) -> list[OutsideExit]:
    """Every symbol's open rows against Alpaca's positions. A quiet tick is cheap: a symbol
    with no fill outside the rows' recorded orders and at least the rows' shares at Alpaca is
    not looked at further (its columns read from the loaded values, not through the ORM)."""
    values = [(row, _quick(row)) for row in rows]
    recorded = {v[i] for _, v in values for i in range(4, 9) if v[i]}
    candidates = {o.symbol for o in book.by_id.values()
                  if o.filled_qty > 0 and o.id not in recorded}
    by_symbol: dict[tuple[str, str], list[Position]] = {}
    shares: dict[tuple[str, str], Decimal] = {}
    for row, (symbol, side, status, filled, *_ids, outside) in values:
        if status == "open" and filled:
            by_symbol.setdefault((symbol, side), []).append(row)
            shares[symbol, side] = shares.get((symbol, side), Decimal(0)) + filled \
                - (outside or Decimal(0))
    suspect = {key: group for key, group in by_symbol.items()
               if key[0] in candidates
               or account_shares(market.get(key[0]), key[1]) < shares[key]}
    if not suspect:
        return []
    fills = outside_fills(book, own_order_ids([r for g in suspect.values() for r in g], book))
    done = []
    for (symbol, _side), group in suspect.items():
        done += apply_outside_exits(group, market.get(symbol), book, fills, now)
    return done


_QUICK = ("symbol", "side", "status", "filled_qty", "alpaca_order_id", "exit_order_id",
          "stop_order_id", "target_order_id", "restore_order_id", "outside_qty")


def _quick(row: Position) -> tuple[Any, ...]:
    loaded = loaded_values(row)
    return tuple(loaded[name] if name in loaded else getattr(row, name) for name in _QUICK)


def record_outside_exits(journal: Journal, rows: list[Position],
                         market: dict[str, BrokerPosition], book: OrderBook,
                         now: datetime) -> dict[int, str]:
    """outside_exits, each one an event; what changed, by position id."""
    recorded = {}
    for done in outside_exits(rows, market, book, now):
        row = done.position
        message = f"{row.symbol}: {describe(done)}"
        journal.record("outside_exit", message, cycle_id=row.cycle_id, position_id=row.id,
                       details={"qty": done.qty, "price": done.price, "status": row.status,
                                "outside_qty": row.outside_qty, "outside_pl": row.outside_pl})
        recorded[row.id] = message
    return recorded
