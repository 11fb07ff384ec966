"""How a broker order's state maps onto a tracked position's life (entry side)."""

from __future__ import annotations

from tradectl.broker import Order
from tradectl.db.models import Position, utcnow

ENTRY_DEAD = {"canceled": "cancelled", "expired": "cancelled", "rejected": "rejected"}


def apply_entry_order(position: Position, order: Order) -> bool:
    """Bring a pending or open position in line with its entry order. True if anything changed.

    Filled or partly filled -> `open` (filled_qty tells a partial fill); cancelled, expired or
    rejected with nothing filled -> `cancelled` / `rejected`.
    """
    before = (position.status, position.alpaca_status, position.filled_qty,
              position.filled_avg_price, position.alpaca_order_id)
    position.alpaca_order_id = order.id
    position.alpaca_status = order.status
    if order.filled_qty > 0:
        position.filled_qty = order.filled_qty
        position.filled_avg_price = order.filled_avg_price
        if position.status == "pending":
            position.status = "open"
    elif order.status in ENTRY_DEAD and position.status == "pending":
        position.status = ENTRY_DEAD[order.status]
        position.closed_at = utcnow()
    after = (position.status, position.alpaca_status, position.filled_qty,
             position.filled_avg_price, position.alpaca_order_id)
    return before != after
