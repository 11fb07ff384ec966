"""`close`'s plan: one read of Alpaca's orders and positions, the decision on the row brought in
line with them (`decide_close`, on a read of the database), and the exact requests that follow:
a DELETE per exit order group, then the DELETE of the position (or the cancel of an entry that
has not filled). `close_position.execute_close` sends exactly these, under the position's exit
lock; `close --dry-run` shows them (`close_dry_run`) and sends nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Broker, BrokerPosition, BrokerRequest, Order
from tradectl.db.journal import Journal
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.money import Price
from tradectl.errors import BrokerNotConfigured, ExitCode, InputError, RefusedError
from tradectl.services.dry_run import CloseSummary, DryRun, OrderToCancel
from tradectl.services.position.interrupted_close import settle_in_doubt
from tradectl.services.position.market_close import close_qty
from tradectl.services.protection import CancelTarget, account_shares, cancel_targets
from tradectl.services.watch.outside import (
    OutsideExit,
    apply_outside_exits,
    outside_fills,
    own_order_ids,
)
from tradectl.services.watch.reconcile import OrderBook, exit_orders, sync_position

ALREADY_CLOSING = "a close is already working: `tradectl watch` records its fill"


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

    def sends(self) -> tuple[tuple[str, ...], Decimal | None, Decimal | None]:
        """What the decision sends: the orders cancelled, the shares closed (and the account's)."""
        return tuple(t.order.id for t in self.cancel), self.held, self.account_qty


@dataclass(frozen=True)
class ClosePlan:
    """`action`: close (cancel the exits, then close at market) | cancel_entry (an entry that
    has not filled) | close_locally (never at a broker) | none (nothing to send: `decision`
    says why, or `refusal`). `book` and `market`: the read of Alpaca it was decided on."""

    position_id: int
    symbol: str
    side: str
    status: str  # as Alpaca's orders show it now
    action: str
    since: datetime  # the orders window the read covered
    stop: Price
    target: Price
    cycle_status: str  # closing is allowed while trading is stopped
    decision: CloseDecision | None = None
    book: OrderBook | None = None
    market: tuple[BrokerPosition, ...] = ()
    requests: tuple[BrokerRequest, ...] = ()
    refusal: RefusedError | None = None
    lock_held: bool = False  # decided under the exit lock: a close in doubt is settled first
    entry_order_id: str | None = None  # the row's entry order

    @property
    def working_entry(self) -> Order | None:
        """The row's entry, still working (partly filled): cancelled first."""
        cancel = self.decision.cancel if self.decision else ()
        return next((t.order for t in cancel if t.order.id == self.entry_order_id), None)

    @property
    def close_qty(self) -> Decimal | None:
        """The DELETE's `qty` (None: the whole position)."""
        assert self.decision is not None and self.decision.held is not None
        return close_qty(self.decision.held, self.decision.account_qty)


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


def needs_keys(broker: Broker | None, plan: ClosePlan) -> Broker:
    if broker is None:
        raise BrokerNotConfigured(f"{plan.symbol} #{plan.position_id} was sent to Alpaca: "
                                  "closing it needs the keys (ALPACA_API_KEY, ALPACA_SECRET_KEY)")
    return broker


def locate(db: Database, ref: str) -> ClosePlan:
    """The position `ref` names, before any broker read: a plan to close it locally when it
    was never sent to a broker, else one still to be decided (`plan_located`)."""
    with db.read() as journal:
        row = find_position(journal, ref)
        cycle = journal.latest_cycle()
        local = row.alpaca_status == "alpaca_disabled"
        return ClosePlan(row.id, row.symbol, row.side, row.status,
                         "close_locally" if local else "none", journal.orders_window_start(),
                         row.stop_loss, row.take_profit, cycle.status if cycle else "none")


def plan_close(db: Database, broker: Broker | None, ref: str, *,
               clock: Clock = SYSTEM_CLOCK) -> ClosePlan:
    """`close --dry-run`'s plan: reads only, without the exit lock."""
    located = locate(db, ref)
    if located.action == "close_locally":
        return located
    return plan_located(db, broker, located, lock_held=False, clock=clock)


def plan_located(db: Database, broker: Broker | None, located: ClosePlan, *,
                 lock_held: bool, clock: Clock = SYSTEM_CLOCK) -> ClosePlan:
    """Read Alpaca, then decide on the row as a read of the database shows it (nothing is
    written). `lock_held`: the caller holds the exit lock, so a close in doubt is settled as
    the write will settle it."""
    adapter = needs_keys(broker, located)
    book, market = read_for_close(adapter, located.since)
    plan = replace(located, book=book, market=tuple(market), lock_held=lock_held)
    with db.read() as journal:  # the row is brought in line with Alpaca, never written
        row = journal.position(located.position_id)
        try:
            decision = decide(journal, row, plan, clock.now())
        except RefusedError as err:
            return replace(plan, status=row.status, refusal=err)
        entry_order_id = row.alpaca_order_id
    return replace(plan, status=row.status, decision=decision, entry_order_id=entry_order_id,
                   action=_action(decision), requests=close_requests(adapter, plan.symbol,
                                                                     decision))


def decide(journal: Journal, row: Position, plan: ClosePlan, now: datetime) -> CloseDecision:
    """The plan's decision on `row`: the plan makes it on a read, the write-ahead again on the
    locked row (and writes what it changed)."""
    assert plan.book is not None
    if plan.lock_held:
        settle_in_doubt(journal, row, list(plan.book.by_id.values()),
                        journal.tracked_order_ids(), now, interrupted=True)
    return decide_close(row, plan.book, list(plan.market), now)


def _action(decision: CloseDecision) -> str:
    if decision.outcome is not None:
        return "none"
    return "cancel_entry" if decision.held is None else "close"


def close_requests(broker: Broker, symbol: str, decision: CloseDecision
                   ) -> tuple[BrokerRequest, ...]:
    """The writes the decision sends, in order: one cancel per group, then the close."""
    if decision.outcome is not None:
        return ()
    cancels = tuple(broker.cancel_order_request(t.order.id) for t in decision.cancel)
    if decision.held is None:
        return cancels
    return (*cancels, broker.close_position_request(
        symbol, close_qty(decision.held, decision.account_qty)))


def read_for_close(broker: Broker, since: datetime) -> tuple[OrderBook, list[BrokerPosition]]:
    """Alpaca's orders (since the oldest live position) and positions, side by side."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="close") as pool:
        orders = pool.submit(broker.list_orders, status="all", after=since)
        held = pool.submit(broker.list_positions)
        return OrderBook.of(orders.result()), held.result()


def decide_close(row: Position, book: OrderBook, market: list[BrokerPosition],
                 now: datetime) -> CloseDecision:
    """Brings the row in line with Alpaca's orders and positions first, then decides;
    RefusedError (exit 3) when there is nothing it can do yet."""
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


def close_dry_run(plan: ClosePlan, *, trading_mode: str) -> DryRun[CloseSummary]:
    """The plan as `--dry-run` shows it: its requests, and what they mean."""
    holding = next((p for p in plan.market if p.symbol == plan.symbol), None)
    decision = plan.decision
    summary = CloseSummary(
        plan.position_id, plan.symbol, plan.side, plan.status, plan.action,
        decision.held if plan.action == "close" and decision else None,
        decision.account_qty if plan.action == "close" and decision else None,
        tuple(OrderToCancel.of(t.order, leg=t.group != t.order.id, tracked=True)
              for t in (decision.cancel if decision else ())),
        plan.stop, plan.target, holding.current_price if holding else None,
        holding.unrealized_pl if holding else None, plan.cycle_status)
    if plan.action == "close_locally":
        return DryRun("close", trading_mode, summary, notes=(
            "local only: closed in the database; nothing would be sent",))
    if plan.refusal is not None or decision is None:
        err = plan.refusal
        return DryRun("close", trading_mode, summary, refusal=err.message if err else None,
                      exit_code=err.exit_code if err else ExitCode.OK)
    return DryRun("close", trading_mode, summary, requests=plan.requests,
                  notes=_notes(plan, decision))


def _notes(plan: ClosePlan, decision: CloseDecision) -> tuple[str, ...]:
    notes: list[str] = []
    if decision.synced:
        notes.append(f"Alpaca's orders show what the database does not say yet "
                     f"({decision.synced}): the real close records it first")
    if decision.outcome is not None:
        notes.append(ALREADY_CLOSING if decision.outcome == "already_closing" else
                     f"the position is {decision.outcome} at Alpaca: nothing would be sent")
        return tuple(notes)
    if decision.held is None:
        notes.append("the entry has not filled: it would be cancelled instead (its legs go "
                     "with it); nothing is closed")
        return tuple(notes)
    entry_working = plan.working_entry is not None
    if decision.cancel:
        notes.append("the cancels go first (one per bracket or OCO: Alpaca cancels the rest of "
                     "the group); should Alpaca then refuse the close, the position is "
                     "UNPROTECTED until `tradectl watch` restores its stop")
    if plan.close_qty is None:
        notes.append(f"the account holds no other {plan.symbol} shares: the whole position is "
                     "closed (no qty)")
    if entry_working:
        notes.append("its entry is still working: cancelled first, and what it fills "
                     "meanwhile is closed too")
    if plan.cycle_status == "stopped":
        notes.append("trading is stopped: closing is still allowed")
    return tuple(notes)
