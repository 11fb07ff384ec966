"""`tradectl close`: exit one position now, leaving every other one (and its stop) alone.

Written ahead like an order: under the position's exit lock (interrupted_close.py beside it),
the row is `closing` (with when the close was sent) and committed before anything goes to
Alpaca, so `watch` restores nothing meanwhile. Then its working exit orders are cancelled (one
request per bracket or OCO: Alpaca cancels the rest of the group) and its shares closed at market
with one DELETE /v2/positions/{symbol} (`qty` when the account holds more than this position):
services/position/market_close.py. The close is never sent twice: a lost answer, or a close killed
midway, is settled from Alpaca's orders once its lock is free (by the next watch tick, or by the
next `close`, which sends it again only when Alpaca never had it).

Plan then execute: `close_plan.plan_located` reads Alpaca and decides (the exact DELETEs), under
the exit lock; `execute_close` writes ahead, sends exactly those, records the answers.

Shares Alpaca no longer holds for the row (sold by hand) are taken from Alpaca's positions and
orders first (services/watch/outside.py): the close sells only what is left, the P&L is Alpaca's.
"""

from __future__ import annotations

from datetime import datetime

from tradectl.broker import Broker
from tradectl.db.journal import Journal
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.states import PositionEvent, move
from tradectl.errors import BrokerError, RefusedError
from tradectl.notify import Channels
from tradectl.services.orders import ENTRY_DEAD, apply_entry_order
from tradectl.services.position.close_plan import (  # noqa: F401  (find_position: re-exported)
    ALREADY_CLOSING,
    CloseDecision,
    ClosePlan,
    decide,
    find_position,
    locate,
    plan_located,
)
from tradectl.services.position.interrupted_close import exit_lock
from tradectl.services.position.market_close import (  # noqa: F401  (re-exported: the close's vocabulary)
    ExitOutcome,
    close_at_market,
    close_qty,
    mark_unprotected,
)
from tradectl.services.protection import CancelTarget
from tradectl.services.row_views import position_view
from tradectl.services.watch.outside import describe

CHANGED = "changed since the plan was made"


def close_position(db: Database, broker: Broker | None, channel: Channels | None,
                   ref: str, *, clock: Clock = SYSTEM_CLOCK) -> ExitOutcome:
    """The real `close`: under the position's exit lock, `execute_close(plan)`."""
    located = locate(db, ref)
    if located.action == "close_locally":
        return execute_close(db, broker, channel, located, clock=clock)
    with exit_lock(db, located.position_id) as lock:  # until the answer is recorded
        if not lock:
            raise RefusedError(f"{located.symbol} #{located.position_id}: another close is "
                               "still running (of it, or of a position sharing its lock): try "
                               "again in a moment", rule="close_running")
        # read with the lock held: no close runs
        plan = plan_located(db, broker, located, lock_held=True, clock=clock)
        return execute_close(db, broker, channel, plan, clock=clock)


def execute_close(db: Database, broker: Broker | None, channel: Channels | None,
                  plan: ClosePlan, *, clock: Clock = SYSTEM_CLOCK,
                  reason: str = "manual") -> ExitOutcome:
    """Under the exit lock the plan was made with: write the plan ahead (the row brought in
    line as the plan saw it; refused if the row changed since), then send exactly the plan's
    cancels and close, and record the answers. `reason`: the close_reason recorded (`manual`
    for `close`; a rule's name when `watch` closes for it)."""
    if plan.action == "close_locally":
        return _close_locally(db, plan.position_id, clock.now())
    if plan.refusal is not None:
        raise plan.refusal
    if not plan.lock_held:  # whoever writes a close ahead holds the exit lock until the answer
        raise ValueError("a close is planned and executed under its exit lock")
    assert plan.decision is not None and broker is not None
    with db.transaction() as journal:
        row = journal.position_for_update(plan.position_id)
        now = clock.now()
        decision = decide(journal, row, plan, now)
        if decision.sends() != plan.decision.sends() or decision.outcome != \
                plan.decision.outcome:
            raise RefusedError(f"{plan.symbol} #{plan.position_id}: {CHANGED} (a tick or "
                               "another command moved it): nothing was sent; try again",
                               rule="changed_since_plan")
        for done in decision.outside:
            journal.record("outside_exit", f"{row.symbol}: {describe(done)}",
                           cycle_id=row.cycle_id, position_id=row.id,
                           details={"qty": done.qty, "price": done.price,
                                    "outside_qty": row.outside_qty,
                                    "outside_pl": row.outside_pl})
        if decision.outcome is None:
            _write_ahead(journal, row, decision, now, reason)
        journal.commit()
        view = position_view(row)
    if decision.outcome == "already_closing":
        return ExitOutcome(view, decision.outcome, close_order_id=view.exit_order_id,
                           notes=(ALREADY_CLOSING,))
    if decision.outcome is not None:
        return ExitOutcome(view, decision.outcome,
                           notes=tuple(describe(d) for d in decision.outside))
    cancel = list(plan.decision.cancel)
    if plan.decision.held is None:
        return _cancel_entry(db, broker, plan.position_id, cancel, clock)
    return close_at_market(db, broker, channel, plan.position_id, cancel=cancel,
                           held=plan.decision.held, account_qty=plan.decision.account_qty,
                           view=view, entry=plan.working_entry, clock=clock)


def _write_ahead(journal: Journal, row: Position, decision: CloseDecision,
                 now: datetime, reason: str) -> None:
    """Record what the close will do before anything is sent."""
    row.close_reason = reason
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

