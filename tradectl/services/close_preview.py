"""`close --dry-run`: the close up to its first write. The same reads as `close` (Alpaca's orders
and positions), the same decision (`close_position.decide_close`) on a read-only unit of work,
and the exact requests it would send: a cancel per exit order group, then the close at market
(or the cancel of an entry that has not filled). Nothing is written and nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tradectl.broker import Broker
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.money import Money, Price, Quantity
from tradectl.errors import RefusedError
from tradectl.services.close_position import (
    ALREADY_CLOSING,
    close_qty,
    decide_close,
    find_position,
    needs_keys,
    read_for_close,
)
from tradectl.services.dry_run import DryRun, OrderToCancel


@dataclass(frozen=True)
class ClosePlan:
    """`action`: close (cancel the exits, then close at market) | cancel_entry (an entry that
    has not filled) | close_locally (never at a broker) | none (nothing to send)."""

    position_id: int
    symbol: str
    side: str
    status: str  # as Alpaca's orders show it now
    action: str
    qty: Quantity | None  # the shares to close at market
    account_qty: Quantity | None  # the account's shares in the symbol
    cancel: tuple[OrderToCancel, ...]
    stop: Price
    target: Price
    last_price: Price | None
    unrealized_pl: Money | None
    cycle_status: str  # closing is allowed while trading is stopped


def preview_close(db: Database, broker: Broker | None, ref: str, *,
                  trading_mode: str, clock: Clock = SYSTEM_CLOCK) -> DryRun[ClosePlan]:
    with db.read() as journal:
        row = find_position(journal, ref)
        position_id, since = row.id, journal.orders_window_start()
        cycle = journal.latest_cycle()
        local = row.alpaca_status == "alpaca_disabled"
        plan = ClosePlan(row.id, row.symbol, row.side, row.status, "close_locally", None, None,
                         (), row.stop_loss, row.take_profit, None, None,
                         cycle.status if cycle else "none")
    if local:
        return DryRun("close", trading_mode, plan, notes=(
            "local only: closed in the database; nothing would be sent",))
    adapter = needs_keys(broker, row)
    book, market = read_for_close(adapter, since)
    holding = next((p for p in market if p.symbol == plan.symbol), None)
    if holding is not None:
        plan = replace(plan, last_price=holding.current_price,
                       unrealized_pl=holding.unrealized_pl)
    with db.read() as journal:  # the row is brought in line with Alpaca, never written
        row = journal.position(position_id)
        try:
            decision = decide_close(row, book, market, clock.now())
        except RefusedError as err:
            return DryRun("close", trading_mode, replace(plan, status=row.status, action="none"),
                          refusal=err.message, exit_code=err.exit_code)
        entry_working = any(t.order.id == row.alpaca_order_id for t in decision.cancel)
        plan = replace(plan, status=row.status, cancel=tuple(
            OrderToCancel.of(t.order, leg=t.group != t.order.id, tracked=True)
            for t in decision.cancel))
    notes: list[str] = []
    if decision.synced:
        notes.append(f"Alpaca's orders show what the database does not say yet "
                     f"({decision.synced}): the real close records it first")
    if decision.outcome is not None:
        notes.append(ALREADY_CLOSING if decision.outcome == "already_closing" else
                     f"the position is {decision.outcome} at Alpaca: nothing would be sent")
        return DryRun("close", trading_mode, replace(plan, action="none"), notes=tuple(notes))
    requests = [adapter.cancel_order_request(t.order.id) for t in decision.cancel]
    if decision.held is None:
        notes.append("the entry has not filled: it would be cancelled instead (its legs go "
                     "with it); nothing is closed")
        return DryRun("close", trading_mode, replace(plan, action="cancel_entry"),
                      requests=tuple(requests), notes=tuple(notes))
    qty = close_qty(decision.held, decision.account_qty)
    requests.append(adapter.close_position_request(plan.symbol, qty))
    if decision.cancel:
        notes.append("the cancels go first (one per bracket or OCO: Alpaca cancels the rest of "
                     "the group); should Alpaca then refuse the close, the position is "
                     "UNPROTECTED until `tradectl watch` restores its stop")
    if qty is None:
        notes.append(f"the account holds no other {plan.symbol} shares: the whole position is "
                     "closed (no qty)")
    if entry_working:
        notes.append("its entry is still working: cancelled first, and what it fills "
                     "meanwhile is closed too")
    if plan.cycle_status == "stopped":
        notes.append("trading is stopped: closing is still allowed")
    plan = replace(plan, action="close", qty=decision.held, account_qty=decision.account_qty)
    return DryRun("close", trading_mode, plan, requests=tuple(requests), notes=tuple(notes))
