"""`tradectl close`: exit one position now, leaving every other one (and its stop) alone.

Written ahead like an order: under the position's exit lock (services/interrupted_close.py),
the row is `closing` (with when the close was sent) and committed before anything goes to
Alpaca, so `watch` restores nothing meanwhile. Then its working exit orders are cancelled (one
request per bracket or OCO: Alpaca cancels the rest of the group) and its shares closed at market
with one DELETE /v2/positions/{symbol} (`qty` when the account holds more than this position):
services/market_close.py. The close is never sent twice: a lost answer, or a close killed
midway, is settled from Alpaca's orders once its lock is free (by the next watch tick, or by the
next `close`, which sends it again only when Alpaca never had it).

Shares Alpaca no longer holds for the row (sold by hand) are taken from Alpaca's positions and
orders first (services/outside.py): the close sells only what is left, the P&L is Alpaca's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Broker, BrokerPosition
from tradectl.db.journal import Journal
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.states import PositionEvent, move
from tradectl.errors import BrokerError, BrokerNotConfigured, InputError, RefusedError
from tradectl.notify import Channels
from tradectl.services.interrupted_close import exit_lock, settle_in_doubt
from tradectl.services.market_close import (  # noqa: F401  (re-exported: the close's vocabulary)
    ExitOutcome,
    close_at_market,
    close_qty,
    mark_unprotected,
)
from tradectl.services.orders import ENTRY_DEAD, apply_entry_order
from tradectl.services.outside import (
    OutsideExit,
    apply_outside_exits,
    describe,
    outside_fills,
    own_order_ids,
)
from tradectl.services.protection import CancelTarget, account_shares, cancel_targets
from tradectl.services.reconcile import OrderBook, exit_orders, sync_position
from tradectl.services.row_views import position_view


def find_position(journal: Journal, ref: str) -> Position:
    """A live position by id (`12`, `#12`) or by symbol; exit 2 when there is none (or the
    symbol names several: then the id is needed)."""
    text = ref.strip().lstrip("#")
    live = journal.live_positions()
    if text.isascii() and text.isdigit():
        found = [p for p in live if p.id == int(text)]
        if not found:
            raise InputError(f"no live position #{text} (see `tradectl status`)")
        return found[0]
    matching = [p for p in live if p.symbol == text.upper()]
    if not matching:
        raise InputError(f"no live position in {text.upper()!r} (see `tradectl status`)")
    if len(matching) > 1:
        ids = ", ".join(f"#{p.id}" for p in matching)
        raise InputError(f"{text.upper()} has {len(matching)} live positions ({ids}): "
                         "name one by its id")
    return matching[0]


def close_position(db: Database, broker: Broker | None, channel: Channels | None,
                   ref: str, *, clock: Clock = SYSTEM_CLOCK) -> ExitOutcome:
    with db.read() as journal:
        row = find_position(journal, ref)
        position_id, since = row.id, journal.orders_window_start()
        local = row.alpaca_status == "alpaca_disabled"
    if local:
        return _close_locally(db, position_id, clock.now())
    broker = needs_keys(broker, row)
    with exit_lock(db, position_id) as lock:  # until the answer is recorded
        if not lock:
            raise RefusedError(f"{row.symbol} #{position_id}: another close is still running "
                               "(of it, or of a position sharing its lock): try again in a "
                               "moment", rule="close_running")
        return _close_locked(db, broker, channel, position_id, since, clock)


def _close_locked(db: Database, broker: Broker, channel: Channels | None, position_id: int,
                  since: datetime, clock: Clock) -> ExitOutcome:
    book, market = read_for_close(broker, since)  # read with the lock held: no close runs
    with db.transaction() as journal:
        row = journal.position_for_update(position_id)
        now = clock.now()
        settle_in_doubt(journal, row, list(book.by_id.values()), journal.tracked_order_ids(),
                        now, interrupted=True)
        decision = decide_close(row, book, market, now)
        for done in decision.outside:
            journal.record("outside_exit", f"{row.symbol}: {describe(done)}",
                           cycle_id=row.cycle_id, position_id=row.id,
                           details={"qty": done.qty, "price": done.price,
                                    "outside_qty": row.outside_qty,
                                    "outside_pl": row.outside_pl})
        if decision.outcome is None:
            _write_ahead(journal, row, decision, now)
        journal.commit()
        view = position_view(row)
    if decision.outcome == "already_closing":
        return ExitOutcome(view, decision.outcome, close_order_id=view.exit_order_id,
                           notes=(ALREADY_CLOSING,))
    if decision.outcome is not None:
        return ExitOutcome(view, decision.outcome,
                           notes=tuple(describe(d) for d in decision.outside))
    cancel = list(decision.cancel)
    if decision.held is None:
        return _cancel_entry(db, broker, position_id, cancel, clock)
    working_entry = next((t.order for t in cancel if t.order.id == view.alpaca_order_id), None)
    return close_at_market(db, broker, channel, position_id, cancel=cancel, held=decision.held,
                           account_qty=decision.account_qty, view=view, entry=working_entry,
                           clock=clock)


ALREADY_CLOSING = "a close is already working: `tradectl watch` records its fill"


def needs_keys(broker: Broker | None, row: Position) -> Broker:
    if broker is None:
        raise BrokerNotConfigured(f"{row.symbol} #{row.id} was sent to Alpaca: closing it "
                                  "needs the keys (ALPACA_API_KEY, ALPACA_SECRET_KEY)")
    return broker


def read_for_close(broker: Broker, since: datetime) -> tuple[OrderBook, list[BrokerPosition]]:
    """Alpaca's orders (since the oldest live position) and positions, side by side."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="close") as pool:
        orders = pool.submit(broker.list_orders, status="all", after=since)
        held = pool.submit(broker.list_positions)
        return OrderBook.of(orders.result()), held.result()


@dataclass(frozen=True)
class CloseDecision:
    """What `close` does with one position, from one read of Alpaca. `outcome`: nothing to
    send, and why (already_closing, or the status Alpaca settled it in); else the orders to
    cancel, then `held` shares to close (None: an unfilled entry, cancelled instead),
    `account_qty` the account's shares in the symbol."""

    outcome: str | None
    cancel: tuple[CancelTarget, ...] = ()
    held: Decimal | None = None
    account_qty: Decimal | None = None
    synced: str | None = None  # what the row took from Alpaca's orders first
    outside: tuple[OutsideExit, ...] = ()  # shares Alpaca no longer holds for it (by hand)


def decide_close(row: Position, book: OrderBook, market: list[BrokerPosition],
                 now: datetime) -> CloseDecision:
    """The close's decision, shared by the real command (on the row it then writes ahead) and
    `close --dry-run` (on a read-only unit of work). Brings the row in line with Alpaca's
    orders and positions first; RefusedError (exit 3) when there is nothing it can do yet."""
    if row.status == "closing":
        return CloseDecision("already_closing")
    synced = sync_position(row, book, now)  # an entry or an exit Alpaca settled since the tick
    entry = book.entry_of(row)
    if row.status not in ("pending", "open"):
        return CloseDecision(row.status, synced=synced)
    if not row.filled_qty:
        if entry is None:
            raise RefusedError(f"{row.symbol}: its order's outcome is not known yet: nothing "
                               "to cancel until Alpaca's orders settle it (`tradectl status`)",
                               rule="outcome_unknown")
        return CloseDecision(None, (CancelTarget(entry, entry.id),), synced=synced)
    holding = next((p for p in market if p.symbol == row.symbol), None)
    fills = outside_fills(book, own_order_ids([row], book))
    outside = tuple(apply_outside_exits([row], holding, book, fills, now, unexplained=True))
    if row.status != "open":  # Alpaca holds none of it: settled from its fills
        return CloseDecision(row.status, synced=synced, outside=outside)
    if account_shares(holding, row.side) <= 0:
        raise RefusedError(f"{row.symbol}: Alpaca holds no {row.symbol} position while its "
                           "own exit orders are still working: nothing to close; `tradectl "
                           "watch` records how they end", rule="nothing_held")
    exited = sum((o.filled_qty for o in exit_orders(row, book)), Decimal(0))
    held = row.filled_qty - exited - (row.outside_qty or Decimal(0))
    assert holding is not None
    return CloseDecision(None, tuple(cancel_targets(row, book)), held, abs(holding.qty),
                         synced, outside)


def _write_ahead(journal: Journal, row: Position, decision: CloseDecision,
                 now: datetime) -> None:
    """Record what the close will do before anything is sent."""
    row.close_reason = "manual"
    if decision.held is None:
        entry = decision.cancel[0].order
        journal.record("close_requested", f"{row.symbol}: close requested: cancelling the "
                       f"unfilled entry {entry.id}", cycle_id=row.cycle_id, position_id=row.id)
        return
    move(row, PositionEvent.CLOSE_SENT)
    row.exit_sent_at, row.exit_order_id = now, None
    journal.record("close_requested",
                   f"{row.symbol}: close requested: cancelling {len(decision.cancel)} exit "
                   f"order group(s), then closing {decision.held:f} at market",
                   cycle_id=row.cycle_id, position_id=row.id,
                   details={"cancel": [t.order.id for t in decision.cancel],
                            "qty": decision.held, "account_qty": decision.account_qty})


def _cancel_entry(db: Database, broker: Broker, position_id: int,
                  cancel: list[CancelTarget], clock: Clock) -> ExitOutcome:
    """An entry that has not filled is cancelled instead (its legs go with it), and recorded
    as Alpaca then shows it."""
    entry = cancel[0].order
    try:
        broker.cancel_order(entry.id)
        now = broker.get_order(entry.id)
    except BrokerError as err:
        with db.transaction() as journal:
            row = journal.position(position_id)
            row.alpaca_error = f"cancelling the entry failed: {err.message}"
            journal.record("cancel_failed", f"{row.symbol}: {row.alpaca_error}",
                           cycle_id=row.cycle_id, position_id=row.id)
            journal.commit()
            return ExitOutcome(position_view(row), "failed", error=err.message)
    with db.transaction() as journal:
        row = journal.position(position_id)
        apply_entry_order(row, now, clock.now())
        dead = now.status in ENTRY_DEAD or row.status != "pending"
        state = row.status if dead else "cancelling"
        journal.record("entry_cancelled" if state == "cancelled" else "entry_cancel_sent",
                       f"{row.symbol}: entry order {now.status}" + (
                           "" if state == "cancelled" else ": the next tick records the rest"),
                       cycle_id=row.cycle_id, position_id=row.id)
        journal.commit()
        return ExitOutcome(position_view(row), state, 1)


def _close_locally(db: Database, position_id: int, now: datetime) -> ExitOutcome:
    with db.transaction() as journal:
        row = journal.position_for_update(position_id)
        move(row, PositionEvent.CLOSED_LOCALLY)
        row.closed_at, row.close_reason = now, "manual"
        journal.record("position_closed", f"{row.symbol}: closed locally (never at a broker)",
                       cycle_id=row.cycle_id, position_id=row.id)
        journal.commit()
        return ExitOutcome(position_view(row), "closed_locally",
                           notes=("local only: closed in the database; nothing was sent",))

