"""The close at market of one position's shares, after its write-ahead: cancel its exit
orders, close with one DELETE /v2/positions/{symbol}, record what Alpaca said. Shared by
`tradectl close` (close_position.py) and the close `watch` sends when the market has
gapped through a stop (services/watch/rearm.py); also how an interrupted close is found and settled
(services/position/interrupted_close.py) and how a gap with no stop is marked.

No transaction is open while Alpaca is called.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Broker, Order
from tradectl.db.journal import Journal
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import Clock
from tradectl.domain.states import PositionEvent, move
from tradectl.errors import BrokerError, ExitCode
from tradectl.notify import Channels
from tradectl.services.alerts import queue_alert
from tradectl.services.orders import apply_entry_order, apply_exit_order
from tradectl.services.protection import GAP_CLOSE_FAILED, WORKING, CancelTarget, exit_side
from tradectl.services.row_views import position_view
from tradectl.services.watch.reconcile import write_outcome_unknown
from tradectl.views import PositionView

# How long the close is retried while Alpaca still counts the shares as held by the orders just
# cancelled (403 "insufficient qty": a cancel can stay pending for a moment).
CLOSE_DEADLINE_SECONDS = 10.0
CLOSE_BACKOFF = (0.2, 0.5, 1.0, 2.0, 3.0)


@dataclass(frozen=True)
class ExitOutcome:
    """How one position's exit went. `state`: closed | closing (close working) | cancelled |
    cancelling (the entry's cancel is pending) | closed_locally | unknown (a lost answer) |
    failed | already_closing | not_sent (an exit order filled first: nothing to close)."""

    position: PositionView
    state: str
    cancelled_orders: int = 0
    close_order_id: str | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.state in ("failed", "unknown")

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.BROKER if self.failed else ExitCode.OK


def close_qty(held: Decimal, account_qty: Decimal | None) -> Decimal | None:
    """The `qty` of DELETE /v2/positions/{symbol}: this position's shares when the account
    holds more (a sibling's stay, with their stop); None closes the whole position."""
    return held if account_qty is not None and account_qty > held else None


def close_at_market(db: Database, broker: Broker, channel: Channels | None, position_id: int, *,
                    cancel: list[CancelTarget], held: Decimal, account_qty: Decimal | None,
                    view: PositionView, clock: Clock, entry: Order | None = None,
                    gap: bool = False, sleep: Callable[[float], None] = time.sleep) -> ExitOutcome:
    """After the write-ahead (`closing`, `exit_sent_at`, `close_reason`): cancel, close,
    record what Alpaca said. No transaction is open while Alpaca is called. `entry`: a partly
    filled entry still working, cancelled first; what it filled meanwhile is closed too. `gap`:
    the close of a gap through the stop (a refusal leaves the position UNPROTECTED, and the
    time it was sent, so that the next try waits)."""
    cancelled, blocker = _cancel(broker, cancel, exit_side(view.side))
    if blocker is not None:
        return _record_not_sent(db, position_id, blocker, cancelled)
    if entry is not None:
        try:
            now = broker.get_order(entry.id)
        except BrokerError as err:
            return _record_not_sent(db, position_id, f"its entry could not be read after "
                                    f"the cancel ({err.message}); not closed", cancelled)
        held += now.filled_qty - entry.filled_qty
        account_qty = None if account_qty is None else account_qty + now.filled_qty \
            - entry.filled_qty
        _record_entry(db, position_id, now, clock)
    try:
        order = _close(broker, view.symbol, close_qty(held, account_qty), sleep, clock)
    except BrokerError as err:
        return _record_close_error(db, channel, position_id, err, cancelled, gap, clock)
    return _record_close(db, position_id, order, cancelled, clock)


def _cancel(broker: Broker, targets: list[CancelTarget], side: str) -> tuple[int, str | None]:
    """Cancel each order; (how many, why the close must not go on). A cancel Alpaca refuses
    is read back with its group: an exit that filled meanwhile means those shares are already
    out, and nothing more is sent."""
    cancelled = 0
    for target in targets:
        try:
            broker.cancel_order(target.order.id)
            cancelled += 1
            continue
        except BrokerError as err:
            refused = err.message
        try:
            group = broker.get_order(target.group)
        except BrokerError as err:
            return cancelled, f"cancelling {target.order.id} failed ({refused}) and its " \
                              f"order could not be read ({err.message}); not closed"
        members = {o.id: o for o in (group, *group.legs)}
        filled = next((o for o in members.values() if o.side == side and o.filled_qty > 0), None)
        if filled is not None:
            return cancelled, (f"order {filled.id} {filled.status} while closing: Alpaca "
                               "exited those shares; nothing else was sent")
        now = members.get(target.order.id)
        if now is None or now.status in WORKING:
            return cancelled, f"cancelling {target.order.id} failed ({refused}); not closed"
    return cancelled, None


def _close(broker: Broker, symbol: str, qty: Decimal | None,
           sleep: Callable[[float], None], clock: Clock) -> Order:
    """One close, tried again only when Alpaca refused it without acting: the shares still
    held by a cancel that has not landed (403 insufficient qty), or the rate limit (429)."""
    deadline = clock.monotonic() + CLOSE_DEADLINE_SECONDS
    for pause in (*CLOSE_BACKOFF, None):
        try:
            return broker.close_position(symbol, qty)
        except BrokerError as err:
            refused = err.status == 429 or (err.status == 403 and "insufficient qty" in
                                            err.message)
            if not refused or pause is None or clock.monotonic() + pause > deadline:
                raise
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _record_entry(db: Database, position_id: int, entry: Order, clock: Clock) -> None:
    with db.transaction() as journal:
        apply_entry_order(journal.position(position_id), entry, clock.now())
        journal.commit()


def _record_close(db: Database, position_id: int, order: Order, cancelled: int,
                  clock: Clock) -> ExitOutcome:
    with db.transaction() as journal:
        row = journal.position(position_id)
        apply_exit_order(row, order, clock.now())
        row.alpaca_error = None
        journal.record(f"position_{row.status}",
                       f"{row.symbol}: {row.status} at market by {row.close_reason} "
                       f"(order {order.id}, {order.status})", cycle_id=row.cycle_id,
                       position_id=row.id, details={"close_order_id": order.id})
        journal.commit()
        return ExitOutcome(position_view(row), row.status, cancelled, order.id)


def _record_close_error(db: Database, channel: Channels | None, position_id: int,
                        err: BrokerError, cancelled: int, gap: bool, clock: Clock) -> ExitOutcome:
    with db.transaction() as journal:
        row = journal.position(position_id)
        if write_outcome_unknown(err):
            row.alpaca_error = (f"close outcome unknown ({err.message}): settled from Alpaca's "
                                "orders by the next watch tick; not sent again")
            journal.record("close_unknown", f"{row.symbol}: {row.alpaca_error}",
                           cycle_id=row.cycle_id, position_id=row.id)
            state = "unknown"
        else:
            move(row, PositionEvent.CLOSE_FAILED)
            row.close_reason = None
            row.exit_sent_at = row.exit_sent_at if gap else None
            journal.record("close_failed", f"{row.symbol}: close failed: {err.message}",
                           cycle_id=row.cycle_id, position_id=row.id,
                           details={"http_status": err.status, "cancelled": cancelled})
            if gap:
                mark_unprotected(journal, channel, row, f"{GAP_CLOSE_FAILED}: {err.message}",
                                 clock.now())
            elif cancelled:
                mark_unprotected(journal, channel, row, f"its exit orders were cancelled and "
                                 f"the close failed: {err.message}", clock.now())
            else:
                row.alpaca_error = f"close failed: {err.message}"
            state = "failed"
        journal.commit()
        return ExitOutcome(position_view(row), state, cancelled, error=err.message)


def _record_not_sent(db: Database, position_id: int, why: str, cancelled: int) -> ExitOutcome:
    """The close was not sent: the row is open again; the next tick sees what protects it."""
    with db.transaction() as journal:
        row = journal.position(position_id)
        move(row, PositionEvent.CLOSE_FAILED)
        row.exit_sent_at, row.close_reason = None, None
        row.alpaca_error = why
        journal.record("close_failed", f"{row.symbol}: {why}", cycle_id=row.cycle_id,
                       position_id=row.id, details={"cancelled": cancelled})
        journal.commit()
        return ExitOutcome(position_view(row), "failed", cancelled, error=why)


def mark_unprotected(journal: Journal, channel: Channels | None, row: Position,
                     reason: str, now: datetime) -> bool:
    """Held shares with no working stop that tradectl cannot restore now: say why on the row;
    the first time in a gap, log it and queue one alert. True if this started the gap."""
    row.protection_error = reason
    if row.unprotected_since is not None:
        return False
    row.unprotected_since = now
    side = "long" if row.side == "buy" else "short"
    journal.record("unprotected", f"{row.symbol}: UNPROTECTED: {reason}", cycle_id=row.cycle_id,
                   position_id=row.id, details={"exit_side": exit_side(row.side)})
    queue_alert(journal, channel, "unprotected",
                f"UNPROTECTED - {row.symbol} #{row.id} has no working stop",
                f"tradectl position #{row.id}: {side} {row.filled_qty or row.qty:f} "
                f"{row.symbol}, stop {row.stop_loss}, target {row.take_profit}\n\n"
                f"No stop order is working at Alpaca for these shares: {reason}\n\n"
                "tradectl watch tries again while the cycle is active; `tradectl close "
                f"{row.symbol}` exits it now.\n", cycle_id=row.cycle_id)
    return True
