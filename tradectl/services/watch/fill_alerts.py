"""ALERT_FILLS=true: an alert when an entry fills and when an exit fills, queued in the outbox in
the same transaction that records the fill (so it is sent, and retried, like the stop's).

The fills are seen where `watch` brings the rows in line with Alpaca's orders (a tick's sync and
the trade-updates stream): a snapshot of each live row's status and filled quantity before the
sync, compared with the row after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tradectl.db.journal import Journal
from tradectl.db.models import Position
from tradectl.domain.money import cents, dollars, price_text, quantity_text
from tradectl.notify import Channels
from tradectl.services.alerts import queue_alert

_HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class Before:
    status: str
    filled_qty: Decimal


def snapshot(live: Iterable[Position]) -> dict[int, Before]:
    return {p.id: Before(p.status, p.filled_qty or Decimal(0)) for p in live}


def queue_fill_alerts(journal: Journal, channels: Channels | None, live: Iterable[Position],
                      before: dict[int, Before]) -> int:
    """Queue an alert per entry that filled (more) and per position whose exit filled since
    `before`. Returns how many were queued."""
    if not channels:
        return 0
    queued = 0
    for position in live:
        was = before.get(position.id)
        if was is None:
            continue
        filled = position.filled_qty or Decimal(0)
        if filled > was.filled_qty and position.filled_avg_price is not None:
            queued += _entry_alert(journal, channels, position, was.filled_qty)
        if position.status == "closed" and was.status != "closed" and filled \
                and position.exit_price is not None and position.realized_pl is not None:
            queued += _exit_alert(journal, channels, position,
                                  journal.initial_stop(position.id) or position.stop_loss)
    return queued


def _entry_alert(journal: Journal, channels: Channels, p: Position, had: Decimal) -> int:
    assert p.filled_avg_price is not None
    filled = p.filled_qty or Decimal(0)
    qty, price = quantity_text(filled), price_text(p.filled_avg_price)
    part = "" if filled >= p.qty else f" (partly: {qty} of {quantity_text(p.qty)})"
    subject = f"Entry filled: {p.symbol} {p.side} {qty} @ {price}{part}"
    risk = filled * abs(p.filled_avg_price - p.stop_loss)
    more = f" {quantity_text(filled - had)} more," if had else ""
    body = (f"{p.symbol}: the entry ({p.side}) filled{more} {qty} held at an average "
            f"{price}{part}.\nStop {price_text(p.stop_loss)}, target "
            f"{price_text(p.take_profit)}; at risk to the stop: {dollars(risk)}.\n")
    facts: dict[str, Any] = {"symbol": p.symbol, "side": p.side, "qty": quantity_text(filled),
                             "price": price_text(p.filled_avg_price), "position_id": p.id,
                             "stop": price_text(p.stop_loss), "risk": cents(risk)}
    return int(queue_alert(journal, channels, "entry_filled", subject, body,
                           cycle_id=p.cycle_id, facts=facts))


def _exit_alert(journal: Journal, channels: Channels, p: Position, initial_stop: Decimal) -> int:
    assert p.exit_price is not None and p.realized_pl is not None
    assert p.filled_avg_price is not None
    filled = p.filled_qty or Decimal(0)
    exit_side = "sell" if p.side == "buy" else "buy"
    risk = filled * abs(p.filled_avg_price - initial_stop)
    r = (p.realized_pl / risk).quantize(_HUNDREDTH, ROUND_HALF_EVEN) if risk else None
    r_text = f"{r:+}R" if r is not None else "R n/a (nothing was at risk)"
    qty, price = quantity_text(filled), price_text(p.exit_price)
    subject = (f"Exit filled: {p.symbol} {exit_side} {qty} @ {price}, "
               f"P&L {dollars(p.realized_pl)} ({r_text})")
    body = (f"{p.symbol}: closed ({p.close_reason or 'exit'}), {exit_side} {qty} at {price}; "
            f"entry {price_text(p.filled_avg_price)}, initial stop {price_text(initial_stop)}."
            f"\nP&L {dollars(p.realized_pl)}, {r_text}.\n")
    facts: dict[str, Any] = {"symbol": p.symbol, "side": exit_side, "qty": qty, "price": price,
                             "position_id": p.id, "realized_pl": cents(p.realized_pl),
                             "r_multiple": str(r) if r is not None else None,
                             "close_reason": p.close_reason}
    return int(queue_alert(journal, channels, "exit_filled", subject, body,
                           cycle_id=p.cycle_id, facts=facts))
