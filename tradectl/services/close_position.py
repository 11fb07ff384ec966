"""`tradectl close`: exit one position now, leaving every other one (and its stop) alone. Also
the close at market that `watch` sends when the market has gapped through a stop.

Written ahead like an order: the row is `closing` (with when the close was sent) and committed
before anything goes to Alpaca, so `watch` restores nothing meanwhile. Then its working exit
orders are cancelled (one request per bracket or OCO: Alpaca cancels the rest of the group) and
its shares closed at market with one DELETE /v2/positions/{symbol} (`qty` when the account holds
more than this position). The close is never sent twice: a lost answer stays unknown until
Alpaca's orders show the close (services/protection.lost_close).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Broker, BrokerPosition, Order
from tradectl.db.journal import Journal
from tradectl.db.models import Position, utcnow
from tradectl.db.session import Database
from tradectl.errors import (
    BrokerError,
    BrokerNotConfigured,
    ExitCode,
    InputError,
    RefusedError,
)
from tradectl.notify import Channels
from tradectl.services.alerts import queue_alert
from tradectl.services.orders import ENTRY_DEAD, apply_entry_order, apply_exit_order
from tradectl.services.protection import (
    GAP_CLOSE_FAILED,
    WORKING,
    CancelTarget,
    cancel_targets,
    exit_side,
)
from tradectl.services.reconcile import (
    OrderBook,
    exit_orders,
    sync_position,
    write_outcome_unknown,
)
from tradectl.services.row_views import position_view
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
                   ref: str) -> ExitOutcome:
    with db.read() as journal:
        row = find_position(journal, ref)
        position_id, since = row.id, journal.orders_window_start()
        local = row.alpaca_status == "alpaca_disabled"
    if local:
        return _close_locally(db, position_id)
    broker = needs_keys(broker, row)
    book, market = read_for_close(broker, since)
    with db.transaction() as journal:
        row = journal.position_for_update(position_id)
        decision = decide_close(row, book, market, utcnow())
        if decision.outcome is None:
            _write_ahead(journal, row, decision)
        journal.commit()
        view = position_view(row)
    if decision.outcome == "already_closing":
        return ExitOutcome(view, decision.outcome, close_order_id=view.exit_order_id,
                           notes=(ALREADY_CLOSING,))
    if decision.outcome is not None:
        return ExitOutcome(view, decision.outcome)
    cancel = list(decision.cancel)
    if decision.held is None:
        return _cancel_entry(db, broker, position_id, cancel)
    working_entry = next((t.order for t in cancel if t.order.id == view.alpaca_order_id), None)
    return close_at_market(db, broker, channel, position_id, cancel=cancel, held=decision.held,
                           account_qty=decision.account_qty, view=view, entry=working_entry)


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
    send, and why (already_closing, or the status Alpaca's orders settled it in); else the
    orders to cancel, then `held` shares to close (None: an unfilled entry, cancelled
    instead), `account_qty` the account's shares in the symbol."""

    outcome: str | None
    cancel: tuple[CancelTarget, ...] = ()
    held: Decimal | None = None
    account_qty: Decimal | None = None
    synced: str | None = None  # what the row took from Alpaca's orders first


def decide_close(row: Position, book: OrderBook, market: list[BrokerPosition],
                 now: datetime) -> CloseDecision:
    """The close's decision, shared by the real command (on the row it then writes ahead) and
    `close --dry-run` (on a read-only unit of work). Brings the row in line with Alpaca's
    orders first; RefusedError (exit 3) when there is nothing it can do yet."""
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
    exited = sum((o.filled_qty for o in exit_orders(row, book)), Decimal(0))
    account = next((abs(p.qty) for p in market if p.symbol == row.symbol), None)
    if account is None:
        raise RefusedError(f"{row.symbol}: Alpaca holds no {row.symbol} position: nothing to "
                           "close (`tradectl watch` settles the row)", rule="nothing_held")
    return CloseDecision(None, tuple(cancel_targets(row, book)), row.filled_qty - exited,
                         account, synced)


def close_qty(held: Decimal, account_qty: Decimal | None) -> Decimal | None:
    """The `qty` of DELETE /v2/positions/{symbol}: this position's shares when the account
    holds more (a sibling's stay, with their stop); None closes the whole position."""
    return held if account_qty is not None and account_qty > held else None


def _write_ahead(journal: Journal, row: Position, decision: CloseDecision) -> None:
    """Record what the close will do before anything is sent."""
    row.close_reason = "manual"
    if decision.held is None:
        entry = decision.cancel[0].order
        journal.record("close_requested", f"{row.symbol}: close requested: cancelling the "
                       f"unfilled entry {entry.id}", cycle_id=row.cycle_id, position_id=row.id)
        return
    row.status, row.exit_sent_at, row.exit_order_id = "closing", utcnow(), None
    journal.record("close_requested",
                   f"{row.symbol}: close requested: cancelling {len(decision.cancel)} exit "
                   f"order group(s), then closing {decision.held:f} at market",
                   cycle_id=row.cycle_id, position_id=row.id,
                   details={"cancel": [t.order.id for t in decision.cancel],
                            "qty": decision.held, "account_qty": decision.account_qty})


def close_at_market(db: Database, broker: Broker, channel: Channels | None, position_id: int, *,
                    cancel: list[CancelTarget], held: Decimal, account_qty: Decimal | None,
                    view: PositionView, entry: Order | None = None, gap: bool = False,
                    sleep: Callable[[float], None] = time.sleep) -> ExitOutcome:
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
        _record_entry(db, position_id, now)
    try:
        order = _close(broker, view.symbol, close_qty(held, account_qty), sleep)
    except BrokerError as err:
        return _record_close_error(db, channel, position_id, err, cancelled, gap)
    return _record_close(db, position_id, order, cancelled)


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
           sleep: Callable[[float], None]) -> Order:
    """One close, tried again only when Alpaca refused it without acting: the shares still
    held by a cancel that has not landed (403 insufficient qty), or the rate limit (429)."""
    deadline = time.monotonic() + CLOSE_DEADLINE_SECONDS
    for pause in (*CLOSE_BACKOFF, None):
        try:
            return broker.close_position(symbol, qty)
        except BrokerError as err:
            refused = err.status == 429 or (err.status == 403 and "insufficient qty" in
                                            err.message)
            if not refused or pause is None or time.monotonic() + pause > deadline:
                raise
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _record_entry(db: Database, position_id: int, entry: Order) -> None:
    with db.transaction() as journal:
        apply_entry_order(journal.position(position_id), entry)
        journal.commit()


def _record_close(db: Database, position_id: int, order: Order, cancelled: int) -> ExitOutcome:
    with db.transaction() as journal:
        row = journal.position(position_id)
        apply_exit_order(row, order)
        row.alpaca_error = None
        journal.record(f"position_{row.status}",
                       f"{row.symbol}: {row.status} at market by {row.close_reason} "
                       f"(order {order.id}, {order.status})", cycle_id=row.cycle_id,
                       position_id=row.id, details={"close_order_id": order.id})
        journal.commit()
        return ExitOutcome(position_view(row), row.status, cancelled, order.id)


def _record_close_error(db: Database, channel: Channels | None, position_id: int,
                        err: BrokerError, cancelled: int, gap: bool) -> ExitOutcome:
    with db.transaction() as journal:
        row = journal.position(position_id)
        if write_outcome_unknown(err):
            row.alpaca_error = (f"close outcome unknown ({err.message}): settled from Alpaca's "
                                "orders by the next watch tick; not sent again")
            journal.record("close_unknown", f"{row.symbol}: {row.alpaca_error}",
                           cycle_id=row.cycle_id, position_id=row.id)
            state = "unknown"
        else:
            row.status, row.close_reason = "open", None
            row.exit_sent_at = row.exit_sent_at if gap else None
            journal.record("close_failed", f"{row.symbol}: close failed: {err.message}",
                           cycle_id=row.cycle_id, position_id=row.id,
                           details={"http_status": err.status, "cancelled": cancelled})
            if gap:
                mark_unprotected(journal, channel, row, f"{GAP_CLOSE_FAILED}: {err.message}")
            elif cancelled:
                mark_unprotected(journal, channel, row, f"its exit orders were cancelled and "
                                 f"the close failed: {err.message}")
            else:
                row.alpaca_error = f"close failed: {err.message}"
            state = "failed"
        journal.commit()
        return ExitOutcome(position_view(row), state, cancelled, error=err.message)


def _record_not_sent(db: Database, position_id: int, why: str, cancelled: int) -> ExitOutcome:
    """The close was not sent: the row is open again; the next tick sees what protects it."""
    with db.transaction() as journal:
        row = journal.position(position_id)
        row.status, row.exit_sent_at, row.close_reason = "open", None, None
        row.alpaca_error = why
        journal.record("close_failed", f"{row.symbol}: {why}", cycle_id=row.cycle_id,
                       position_id=row.id, details={"cancelled": cancelled})
        journal.commit()
        return ExitOutcome(position_view(row), "failed", cancelled, error=why)


def _cancel_entry(db: Database, broker: Broker, position_id: int,
                  cancel: list[CancelTarget]) -> ExitOutcome:
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
        apply_entry_order(row, now)
        dead = now.status in ENTRY_DEAD or row.status != "pending"
        state = row.status if dead else "cancelling"
        journal.record("entry_cancelled" if state == "cancelled" else "entry_cancel_sent",
                       f"{row.symbol}: entry order {now.status}" + (
                           "" if state == "cancelled" else ": the next tick records the rest"),
                       cycle_id=row.cycle_id, position_id=row.id)
        journal.commit()
        return ExitOutcome(position_view(row), state, 1)


def _close_locally(db: Database, position_id: int) -> ExitOutcome:
    with db.transaction() as journal:
        row = journal.position_for_update(position_id)
        row.status, row.closed_at, row.close_reason = "closed", utcnow(), "manual"
        journal.record("position_closed", f"{row.symbol}: closed locally (never at a broker)",
                       cycle_id=row.cycle_id, position_id=row.id)
        journal.commit()
        return ExitOutcome(position_view(row), "closed_locally",
                           notes=("local only: closed in the database; nothing was sent",))


def mark_unprotected(journal: Journal, channel: Channels | None, row: Position,
                     reason: str) -> bool:
    """Held shares with no working stop that tradectl cannot restore now: say why on the row;
    the first time in a gap, log it and queue one alert. True if this started the gap."""
    row.protection_error = reason
    if row.unprotected_since is not None:
        return False
    row.unprotected_since = utcnow()
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
