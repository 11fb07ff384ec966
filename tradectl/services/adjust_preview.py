"""`adjust --dry-run`: the adjust up to its first write. The same reads as `adjust` (Alpaca's
orders and the last trade), the same checks and plan (`adjust.plan_adjust`) on a read-only unit
of work, and the exact PATCH of each leg that would move. Nothing is written and nothing is
sent."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from tradectl.broker import Broker
from tradectl.db.session import Database
from tradectl.domain.money import Price, price_text
from tradectl.domain.pre_trade import RuleCheck
from tradectl.errors import RefusedError
from tradectl.services.adjust import (
    check_adjustable,
    check_asked,
    leg_action,
    local_changes,
    needs_keys,
    plan_adjust,
    read_for_adjust,
    replace_request,
)
from tradectl.services.close_position import find_position
from tradectl.services.dry_run import DryRun


@dataclass(frozen=True)
class LegPlan:
    """`action`: replace (PATCH its working order) | unchanged (already at that price: nothing
    sent) | recorded (no working order: the row keeps the price for the next restore)."""

    leg: str  # stop | target
    old_price: Price | None
    new_price: Price
    action: str
    order_id: str | None  # the working order that would be replaced
    order_status: str | None


@dataclass(frozen=True)
class AdjustPlan:
    position_id: int
    symbol: str
    side: str
    status: str
    last_trade: Price | None  # what the new prices are checked against
    entry: Price | None  # a pending limit entry's price: checked against too
    legs: tuple[LegPlan, ...] = ()
    stop: Price | None = None  # the prices after the adjust
    target: Price | None = None


def preview_adjust(db: Database, broker: Broker | None, ref: str, *, stop: Decimal | None,
                   target: Decimal | None, trading_mode: str) -> DryRun[AdjustPlan]:
    check_asked(stop, target)
    with db.read() as journal:
        row = find_position(journal, ref)
        position_id, since = row.id, journal.orders_window_start()
        plan = AdjustPlan(row.id, row.symbol, row.side, row.status, None,
                          row.entry_price if row.status == "pending" else None)
        try:
            check_adjustable(row)
        except RefusedError as err:
            return DryRun("adjust", trading_mode, plan, refusal=err.message,
                          exit_code=err.exit_code)
        if row.alpaca_status == "alpaca_disabled":
            legs = tuple(LegPlan(c.leg, c.old_price, c.new_price, "recorded", None, None)
                         for c in local_changes(row, stop, target))
            return DryRun("adjust", trading_mode, _after(plan, legs, row.stop_loss,
                                                         row.take_profit),
                          notes=("local only: the prices change in the database; nothing "
                                 "would be sent",))
    adapter = needs_keys(broker, row)
    book, last_trade = read_for_adjust(adapter, since, plan.symbol)
    plan = replace(plan, last_trade=last_trade)
    with db.read() as journal:
        row = journal.position(position_id)
        try:
            planned = plan_adjust(row, book, stop, target, last_trade)
        except RefusedError as err:
            return DryRun("adjust", trading_mode, plan, refusal=err.message,
                          exit_code=err.exit_code)
        stop_was, target_was = row.stop_loss, row.take_profit
    legs = tuple(LegPlan(leg, was, new, leg_action(order, was, new),
                         order.id if order else None, order.status if order else None)
                 for leg, order, was, new in planned)
    requests = tuple(replace_request(adapter, leg.leg, leg.order_id, leg.new_price)
                     for leg in legs if leg.action == "replace" and leg.order_id)
    new = {leg.leg: leg.new_price for leg in legs}
    plan = _after(plan, legs, new.get("stop", stop_was), new.get("target", target_was))
    return DryRun("adjust", trading_mode, plan, checks=_checks(plan), requests=requests,
                  notes=_notes(plan))


def _after(plan: AdjustPlan, legs: tuple[LegPlan, ...], stop: Decimal,
           target: Decimal) -> AdjustPlan:
    return replace(plan, legs=legs, stop=stop, target=target)


def _checks(plan: AdjustPlan) -> tuple[RuleCheck, ...]:
    """The price checks `plan_adjust` passed (a failing one is bad input: exit 2), with their
    figures."""
    below, above = ("below", "above") if plan.side == "buy" else ("above", "below")
    bases = [("the last trade", plan.last_trade), ("--entry", plan.entry)]
    return tuple(
        RuleCheck(f"exit_prices_{'entry' if name == '--entry' else 'last_trade'}", True,
                  f"stop {price_text(plan.stop)} at least 0.01 {below} and target "
                  f"{price_text(plan.target)} at least 0.01 {above} {name} "
                  f"{price_text(base)} ({plan.side})",
                  {"stop": price_text(plan.stop), "target": price_text(plan.target),
                   "base": price_text(base)})
        for name, base in bases
        if base is not None and plan.stop is not None and plan.target is not None)


def _notes(plan: AdjustPlan) -> tuple[str, ...]:
    notes = []
    if any(leg.action == "replace" for leg in plan.legs):
        notes.append("a PATCH replaces the order in place (a new order id takes its place): "
                     "the shares stay covered throughout")
    for leg in plan.legs:
        if leg.action == "recorded":
            notes.append(f"no working {leg.leg} order at Alpaca: {price_text(leg.new_price)} "
                         "would be recorded on the position for the next restore "
                         "(`tradectl watch`)")
        elif leg.action == "unchanged":
            notes.append(f"the {leg.leg} is already {price_text(leg.new_price)} at Alpaca: "
                         "nothing would be sent for it")
    if plan.status == "pending" and any(leg.order_status == "held" for leg in plan.legs):
        notes.append("the entry has not filled: its legs are held at Alpaca and replaced like "
                     "any other (should Alpaca refuse, the real adjust exits 4)")
    return tuple(notes)
