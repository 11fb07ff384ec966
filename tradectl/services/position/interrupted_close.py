"""A close at market in doubt (issue 31, item 2): the row is `closing` and written ahead, but no
close order is recorded. Either a close is running now (between its write-ahead and its
answer), or it was killed (after cancelling the exit orders, before the close reached Alpaca or
before its answer was recorded), or its answer was lost.

Whoever writes a close ahead holds the position's exit lock (`exit_lock`) until the answer is
recorded; the lock is freed by the kernel or the database server when the process dies. So a
row in doubt whose lock is free has no close running: Alpaca's orders (read after the lock was
had) settle it at once. The close order found there is recorded; none found means the close
never reached Alpaca, and the row is open again, UNPROTECTED with one alert when no stop is
working, for `watch` to re-protect in the same tick (or `close` to send the close again).
`status` settles it the same way (`settle_for_status`) and sends that alert, but sends no order:
the next `watch` tick re-protects it, and alerts no second time for the same gap.

While the lock is held, the close is running: it is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime

from tradectl.broker import Broker, Order
from tradectl.db.journal import Journal
from tradectl.db.locks import NamedLock
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.states import PositionEvent, move
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.orders import apply_exit_order
from tradectl.services.position.market_close import mark_unprotected
from tradectl.services.protection import CLOCK_SKEW, UNPROTECTED, lost_close, working_exits
from tradectl.services.watch.reconcile import UNKNOWN_GRACE, Holding, OrderBook
from tradectl.views import PositionView, overlaid

# Lock names are per position, folded into a few slots: on SQLite each name is a file beside the
# database. Two positions sharing a slot only wait on each other's close for a moment.
EXIT_LOCK_SLOTS = 32
# How long a close waits for its position's exit lock (another close of it, or of a position in
# the same slot, running): longer than a close takes (its retries plus a broker timeout).
CLOSE_LOCK_WAIT = 30.0
# How long `watch` and `status` try the lock of a row in doubt: a killed holder's lock is freed
# by the kernel at once, by PostgreSQL once it notices the closed connection (milliseconds).
PROBE_WAIT = 0.5
INTERRUPTED = ("the close was interrupted (or its answer lost) and Alpaca's orders show no close "
               "order: the position is open again, its exit orders may be cancelled")
NEVER_REACHED = "the close at market never reached Alpaca"
# What `status` adds to the reason of a row it shows UNPROTECTED for an interrupted close.
WHO_REPROTECTS = ("; the next `tradectl watch` tick re-protects it (or `tradectl close` sends the "
                  "close again)")


def exit_lock_name(position_id: int) -> str:
    return f"exit-{position_id % EXIT_LOCK_SLOTS}"


@contextmanager
def exit_lock(db: Database, position_id: int, wait: float = CLOSE_LOCK_WAIT
              ) -> Iterator[NamedLock]:
    """Held from before a close's write-ahead until its answer is recorded."""
    with db.lock(exit_lock_name(position_id), wait=wait) as lock:
        yield lock


def in_doubt(position: Holding) -> bool:
    """Written ahead as `closing`, sent (or about to be), and no close order recorded."""
    return position.status == "closing" and not position.exit_order_id \
        and position.exit_sent_at is not None


@contextmanager
def not_running(db: Database, positions: Sequence[Holding], wait: float = PROBE_WAIT
                ) -> Iterator[set[int]]:
    """The ids of the rows in doubt whose close is not running: their exit locks, held for the
    block (a new close of them waits until it ends)."""
    with ExitStack() as stack:
        free: set[int] = set()
        locks: dict[str, bool] = {}
        for position in positions:
            if not in_doubt(position):
                continue
            name = exit_lock_name(position.id)
            if name not in locks:
                locks[name] = bool(stack.enter_context(db.lock(name, wait=wait)))
            if locks[name]:
                free.add(position.id)
        yield free


def orders_since_sent(broker: Broker, positions: Sequence[Holding], free: set[int]
                      ) -> list[Order] | None:
    """Alpaca's orders since the earliest of these closes was sent, read now (after the locks):
    a close that reached Alpaca before its process died is in them. None when there is nothing
    to read or the read fails: nothing is decided from it (the row keeps waiting)."""
    sent = [p.exit_sent_at for p in positions if p.id in free and p.exit_sent_at is not None]
    if not sent:
        return None
    try:
        return broker.list_orders(status="all", after=min(sent) - CLOCK_SKEW)
    except BrokerError:
        return None


def settle_in_doubt(journal: Journal, row: Position, orders: list[Order], taken: set[str],
                    now: datetime, *, interrupted: bool) -> str | None:
    """A close in doubt: its close order found in Alpaca's orders and recorded; or, when its
    close is known not to be running (`interrupted`, the orders read after that was known) or
    has not shown for UNKNOWN_GRACE, never placed: the row is open again. What changed."""
    if not in_doubt(row):
        return None
    assert row.exit_sent_at is not None
    found = lost_close(row, orders, taken)
    if found is not None:
        apply_exit_order(row, found, now)
        taken.add(found.id)
        row.alpaca_error = None
        message = f"{row.symbol}: close order {found.id} found at Alpaca ({found.status})"
    elif interrupted or now - row.exit_sent_at >= UNKNOWN_GRACE:
        move(row, PositionEvent.CLOSE_FAILED)
        row.exit_sent_at, row.close_reason = None, None
        row.alpaca_error = INTERRUPTED if interrupted else \
            f"{NEVER_REACHED}: the position is open"
        message = f"{row.symbol}: {row.alpaca_error}"
    else:
        return None
    journal.record("position_synced", message, cycle_id=row.cycle_id, position_id=row.id)
    return message


def settle_and_flag(journal: Journal, channel: Channels | None, row: Position,
                    orders: list[Order], book: OrderBook, taken: set[str], now: datetime, *,
                    interrupted: bool) -> str | None:
    """`settle_in_doubt`; then, the row open again with no stop working, UNPROTECTED with the
    reason and one alert (the gap's: `watch` sends none more until it is protected again)."""
    message = settle_in_doubt(journal, row, orders, taken, now, interrupted=interrupted)
    if message is not None and row.status == "open" and working_exits(row, book)[0] is None:
        mark_unprotected(journal, channel, row, INTERRUPTED if interrupted else NEVER_REACHED,
                         now)
    return message


def settle_for_status(db: Database, broker: Broker, channel: Channels | None,
                      views: Sequence[PositionView], orders: list[Order], now: datetime
                      ) -> list[str]:
    """`status`'s part: the closes in doubt that are not running, settled like `watch` settles
    them (Alpaca's orders read after their locks, outside any transaction; then one short
    transaction). No order is sent. What changed; nothing when the read fails."""
    doubtful = [v for v in views if in_doubt(v)]
    if not doubtful:
        return []
    with not_running(db, doubtful) as free:
        fresh = orders_since_sent(broker, doubtful, free)
        if fresh is None:
            return []
        orders = list({o.id: o for o in [*orders, *fresh]}.values())  # the read made now wins
        book = OrderBook.of(orders)
        changes: list[str] = []
        with db.transaction() as journal:
            taken = journal.tracked_order_ids()
            for row in journal.positions_by_id(free, for_update=True):
                message = settle_and_flag(journal, channel, row, orders, book, taken, now,
                                          interrupted=True)
                changes += [message] if message else []
            journal.commit()
    return changes



def interrupted_closes(db: Database, views: tuple[PositionView, ...], orders: list[Order]
                       ) -> tuple[PositionView, ...]:
    """`status`'s view of closes in doubt it could not settle (`settle_for_status` failed: the
    database could not be written): one whose close is not running and whose close order
    Alpaca's orders (read after this process started) do not show is UNPROTECTED, not closing.
    Nothing is written."""
    doubtful = [v for v in views if in_doubt(v)]
    if not doubtful:
        return views
    with not_running(db, doubtful) as free:
        lost = {v.id for v in doubtful if v.id in free and lost_close(v, orders, set()) is None}
    reason = INTERRUPTED + WHO_REPROTECTS
    return tuple(overlaid(v, {"protection": UNPROTECTED, "protected": False,
                              "protection_error": reason}) if v.id in lost else v
                 for v in views)
