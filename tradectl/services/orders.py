"""How broker orders map onto a tracked position's life. Shared by open, halt and watch.

pending (entry working) -> open (shares held; filled_qty < qty is a partial fill) -> closing
(a close order is working) -> closed; or cancelled / rejected when the entry never filled.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradectl.broker import Order
from tradectl.db.models import Position
from tradectl.domain.loss_limit import position_pnl
from tradectl.domain.money import price_or_none
from tradectl.domain.states import PositionEvent, advance, move

# Alpaca's final statuses of an entry that never filled, and what each is to the position.
ENTRY_DEAD = {"canceled": PositionEvent.ENTRY_CANCELLED, "expired": PositionEvent.ENTRY_CANCELLED,
              "rejected": PositionEvent.ENTRY_REJECTED}


def realized_pl(position: Position, exit_price: Decimal, qty: Decimal) -> Decimal | None:
    entry = position.filled_avg_price
    return None if entry is None else position_pnl(position.side, entry, exit_price, qty)


def apply_entry_order(position: Position, order: Order, now: datetime) -> bool:
    """Bring a pending or open position in line with its entry order. True if anything changed.
    `now`: when it ended, if Alpaca's order does not say."""
    values: dict[str, object] = {"alpaca_order_id": order.id}
    if position.status in ("pending", "open"):
        values["alpaca_status"] = order.status
    if order.filled_qty > 0:
        values["filled_qty"] = order.filled_qty
        values["filled_avg_price"] = order.filled_avg_price
        if position.status == "pending":
            values["status"] = advance(position.status, PositionEvent.ENTRY_FILLED).value
    elif order.status in ENTRY_DEAD and position.status == "pending":
        values["status"] = advance(position.status, ENTRY_DEAD[order.status]).value
        values["closed_at"] = order.canceled_at or now
    return _assign(position, values)


def apply_bracket(position: Position, order: Order, now: datetime) -> str | None:
    """Sync a position from its bracket order (entry and legs). Returns what happened, if
    anything changed: e.g. 'filled', 'closed by stop_loss'."""
    changed = apply_entry_order(position, order, now)
    if position.status in ("open", "closing"):
        for leg in order.legs:
            if leg.status == "filled" and leg.filled_avg_price is not None:
                reason = "take_profit" if leg.type == "limit" else "stop_loss"
                close(position, leg.filled_avg_price, reason, leg, now)
                changed = True
                break
    if not changed:
        return None
    if position.status == "closed":
        return f"closed by {position.close_reason} at {price_or_none(position.exit_price)}"
    return f"{position.status} ({position.alpaca_status})"


def apply_exit_fills(position: Position, exits: list[Order], now: datetime) -> str | None:
    """Close an open position whose take-profit or stop filled, whichever order it was (a
    bracket leg, a restore's OCO, a replacement), exactly as a bracket leg closes it."""
    for order in exits:
        if order.status == "filled" and order.filled_avg_price is not None:
            reason = "take_profit" if order.type == "limit" else "stop_loss"
            close(position, order.filled_avg_price, reason, order, now)
            return f"closed by {reason} at {position.exit_price}"
    return None


def apply_exit_order(position: Position, order: Order, now: datetime) -> bool:
    """Sync a position from the market order that closes it (the emergency stop's close)."""
    position.exit_order_id = order.id
    if order.status == "filled" and order.filled_avg_price is not None:
        if position.status != "closed":
            close(position, order.filled_avg_price, position.close_reason or "emergency_stop",
                  order, now)
            return True
        return False
    if position.status == "open":
        move(position, PositionEvent.CLOSE_SENT)
        return True
    return False


def close(position: Position, exit_price: Decimal, reason: str, order: Order,
          now: datetime) -> None:
    """The last of the position's shares exited at `exit_price`. Shares exited outside
    tradectl before (services/watch/outside.py) count at their own fills: the P&L is Alpaca's share
    for share (unknown when their price is)."""
    outside = position.outside_qty or Decimal(0)
    qty = (position.filled_qty or position.qty) - outside
    move(position, PositionEvent.EXITED)
    position.exit_price = exit_price
    pl = realized_pl(position, exit_price, qty)
    position.realized_pl = None if pl is None or (outside and position.outside_pl is None) \
        else pl + (position.outside_pl or Decimal(0))
    position.close_reason = reason
    position.closed_at = order.filled_at or now


def _assign(position: Position, values: dict[str, object]) -> bool:
    """Set the values that differ. An equal value is not written: the ORM would mark it modified
    and every tick would re-examine every position at flush."""
    changed = False
    for name, value in values.items():
        if getattr(position, name) != value:
            setattr(position, name, value)
            changed = True
    return changed
