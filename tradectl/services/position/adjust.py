"""`tradectl adjust`: move a position's working stop and/or take-profit in place.

PATCH /v2/orders/{id} replaces the order (a new id takes the old one's place), so the shares are
never without cover: nothing is cancelled and sent again. The new prices are checked against
the last trade (and a pending limit entry's price) before anything is sent. A lost answer is
not sent again: the old order's `replaced_by`, in the next orders read, settles it. Each leg is
reported, and the row records the prices Alpaca answered with (the old ones go in the event).

Plan then execute: `adjust_plan.plan_adjust` reads and decides each leg (the exact PATCHes);
`execute_adjust` writes the request ahead, sends exactly those, records the answers.

A pending entry's legs are `held` at Alpaca: the spec's list of statuses that cannot be
replaced (accepted, pending_new, pending_cancel, pending_replace) leaves `held` out, and
Alpaca's order guide says bracket and OCO orders take PATCH of limit_price and stop_price; no
source says otherwise for a leg whose entry has not filled, so they are replaced like any
other, and a refusal is reported as Alpaca's (exit 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradectl.broker import Broker
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.money import Price, price_text
from tradectl.errors import BrokerError, ExitCode
from tradectl.services.position.adjust_plan import AdjustPlan, LegPlan, plan_adjust, price_of
from tradectl.services.row_views import position_view
from tradectl.services.watch.reconcile import write_outcome_unknown
from tradectl.views import PositionView


@dataclass(frozen=True)
class LegChange:
    """One exit order's move. `state`: replaced | unchanged (already at that price: nothing
    sent) | recorded (no working order: the row keeps the price for the next restore) | failed
    | unknown (the answer was lost; the next tick follows the replacement)."""

    leg: str  # stop | target
    old_price: Price | None
    new_price: Price
    state: str
    old_order_id: str | None = None
    new_order_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AdjustReport:
    position: PositionView
    legs: tuple[LegChange, ...]
    last_trade: Price | None = None

    @property
    def exit_code(self) -> ExitCode:
        failed = any(leg.state in ("failed", "unknown") for leg in self.legs)
        return ExitCode.BROKER if failed else ExitCode.OK


def adjust_position(db: Database, broker: Broker | None, ref: str, *, stop: Decimal | None,
                    target: Decimal | None, clock: Clock = SYSTEM_CLOCK) -> AdjustReport:
    """The real `adjust`: `execute_adjust(plan_adjust(...))`."""
    return execute_adjust(db, broker, plan_adjust(db, broker, ref, stop=stop, target=target,
                                                  clock=clock))


def execute_adjust(db: Database, broker: Broker | None, plan: AdjustPlan) -> AdjustReport:
    """Write the plan ahead, send exactly its PATCHes (no more, no other), record the answers."""
    if plan.refusal is not None:
        raise plan.refusal
    summary = plan.summary
    if plan.local:
        return _record_locally(db, summary.position_id, summary.legs)
    assert broker is not None and plan.row_prices is not None
    with db.transaction() as journal:  # written ahead: what is about to be asked, and why
        row = journal.position(summary.position_id)
        journal.record("adjust_requested", f"{row.symbol}: adjust requested: " + ", ".join(
            f"{leg.leg} {price_text(leg.old_price or leg.new_price)} -> "
            f"{price_text(leg.new_price)}"
            for leg in summary.legs),
            cycle_id=row.cycle_id, position_id=row.id,
            details={"last_trade": summary.last_trade, "old_stop": plan.row_prices[0],
                     "old_target": plan.row_prices[1]})
        journal.commit()
    changes = [_move(broker, leg) for leg in summary.legs]
    return AdjustReport(_record(db, summary.position_id, changes), tuple(changes),
                        summary.last_trade)


def _move(broker: Broker, leg: LegPlan) -> LegChange:
    was, new = leg.old_price, leg.new_price
    if leg.action == "recorded" or leg.order_id is None:
        return LegChange(leg.leg, was, new, "recorded")
    if leg.action == "unchanged":
        return LegChange(leg.leg, was, new, "unchanged", leg.order_id, leg.order_id)
    try:  # the plan's request: the same order and price fields it was described with
        answer = broker.replace_order(leg.order_id, **leg.price_fields())
    except BrokerError as err:
        state = "unknown" if write_outcome_unknown(err) else "failed"
        return LegChange(leg.leg, was, new, state, leg.order_id, error=err.message)
    return LegChange(leg.leg, was, price_of(answer, leg.leg) or new, "replaced", leg.order_id,
                     answer.id)


def _record(db: Database, position_id: int, changes: list[LegChange]) -> PositionView:
    with db.transaction() as journal:
        row = journal.position(position_id)
        for c in changes:
            what = (f"{row.symbol}: {c.leg} {price_text(c.old_price or c.new_price)} -> "
                    f"{price_text(c.new_price)}")
            details = {"leg": c.leg, "old_price": c.old_price, "new_price": c.new_price,
                       "old_order_id": c.old_order_id, "new_order_id": c.new_order_id}
            if c.state in ("replaced", "recorded", "unchanged"):
                _set_leg(row, c)
                note = {"replaced": f" (order {c.old_order_id} replaced by {c.new_order_id})",
                        "recorded": " (no working order: recorded for the next restore)",
                        "unchanged": " (already so at Alpaca)"}[c.state]
                journal.record("adjusted", what + note, cycle_id=row.cycle_id,
                               position_id=row.id, details=details)
            elif c.state == "unknown":
                journal.record("adjust_unknown", f"{what}: outcome unknown ({c.error}); the "
                               "next watch tick follows the replacement, not sent again",
                               cycle_id=row.cycle_id, position_id=row.id, details=details)
            else:
                journal.record("adjust_failed", f"{what}: refused: {c.error}",
                               cycle_id=row.cycle_id, position_id=row.id, details=details)
        journal.commit()
        return position_view(row)


def _set_leg(row: Position, change: LegChange) -> None:
    if change.leg == "stop":
        row.stop_loss = change.new_price
        row.stop_order_id = change.new_order_id or row.stop_order_id
    else:
        row.take_profit = change.new_price
        row.target_order_id = change.new_order_id or row.target_order_id


def _record_locally(db: Database, position_id: int, legs: tuple[LegPlan, ...]) -> AdjustReport:
    """A local-only row (never sent to a broker): the plan's prices, in the database only."""
    with db.transaction() as journal:
        row = journal.position_for_update(position_id)
        changes = tuple(LegChange(leg.leg, leg.old_price, leg.new_price, "recorded")
                        for leg in legs)
        for change in changes:
            _set_leg(row, change)
            journal.record("adjusted", f"{row.symbol}: {change.leg} "
                           f"{price_text(change.old_price or change.new_price)} -> "
                           f"{price_text(change.new_price)} (local only: the database only)",
                           cycle_id=row.cycle_id, position_id=row.id)
        journal.commit()
        return AdjustReport(position_view(row), changes)
