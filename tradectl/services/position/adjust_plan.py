"""`adjust`'s plan: Alpaca's orders and the last trade read side by side, the new prices checked,
and each leg's move decided on a read of the database: the exact PATCH of each working order
that moves. `adjust.execute_adjust` sends exactly those; `adjust --dry-run` shows them
(`adjust_dry_run`) and sends nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Broker, BrokerRequest, Order
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.bracket import check_exit_prices
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.money import Price, price_text
from tradectl.domain.pre_trade import RuleCheck
from tradectl.errors import BrokerNotConfigured, InputError, RefusedError
from tradectl.services.dry_run import AdjustSummary, DryRun, LegPlan
from tradectl.services.position.close_plan import find_position
from tradectl.services.protection import working_exits
from tradectl.services.watch.reconcile import UNKNOWN_GRACE, OrderBook


@dataclass(frozen=True)
class AdjustPlan:
    """What `adjust` will do: `summary` (the legs and the prices after), the PATCH of each leg
    that moves (`requests`, in the legs' order), or a `refusal`. `local`: a row never sent to a
    broker, whose prices change in the database only."""

    summary: AdjustSummary
    requests: tuple[BrokerRequest, ...] = ()
    refusal: RefusedError | None = None
    local: bool = False
    row_prices: tuple[Price, Price] | None = None  # the row's stop and target before


def plan_adjust(db: Database, broker: Broker | None, ref: str, *, stop: Decimal | None,
                target: Decimal | None, clock: Clock = SYSTEM_CLOCK) -> AdjustPlan:
    """Reads only: a read of the database, then Alpaca's orders and the last trade."""
    check_asked(stop, target)
    with db.read() as journal:
        row = find_position(journal, ref)
        position_id, since = row.id, journal.orders_window_start()
        summary = AdjustSummary(row.id, row.symbol, row.side, row.status, None,
                                row.entry_price if row.status == "pending" else None)
        try:
            check_adjustable(row)
        except RefusedError as err:
            return AdjustPlan(summary, refusal=err)
        if row.alpaca_status == "alpaca_disabled":
            return AdjustPlan(_after(summary, local_legs(row, stop, target), row.stop_loss,
                                     row.take_profit), local=True)
    adapter = needs_keys(broker, row)
    book, last_trade = read_for_adjust(adapter, since, summary.symbol)
    summary = replace(summary, last_trade=last_trade)
    with db.read() as journal:
        row = journal.position(position_id)
        try:
            legs = decide_legs(row, book, stop, target, last_trade, clock.now())
        except RefusedError as err:
            return AdjustPlan(summary, refusal=err)
        was = (row.stop_loss, row.take_profit)
    new = {leg.leg: leg.new_price for leg in legs}
    summary = _after(summary, legs, new.get("stop", was[0]), new.get("target", was[1]))
    requests = tuple(adapter.replace_order_request(leg.order_id, **leg.price_fields())
                     for leg in legs if leg.action == "replace" and leg.order_id)
    return AdjustPlan(summary, requests, row_prices=was)


def _after(summary: AdjustSummary, legs: tuple[LegPlan, ...], stop: Decimal,
           target: Decimal) -> AdjustSummary:
    return replace(summary, legs=legs, stop=stop, target=target)


def check_asked(stop: Decimal | None, target: Decimal | None) -> None:
    if stop is None and target is None:
        raise InputError("give --stop and/or --target: the new price(s)")


def check_adjustable(row: Position) -> None:
    if row.status == "closing":
        raise RefusedError(f"{row.symbol} #{row.id} is closing: there is nothing to adjust",
                           rule="position_closing")


def needs_keys(broker: Broker | None, row: Position) -> Broker:
    if broker is None:
        raise BrokerNotConfigured(f"{row.symbol} #{row.id} was sent to Alpaca: moving its "
                                  "exits needs the keys (ALPACA_API_KEY, ALPACA_SECRET_KEY)")
    return broker


def read_for_adjust(broker: Broker, since: datetime, symbol: str) -> tuple[OrderBook, Decimal]:
    """Alpaca's orders (since the oldest live position) and the last trade, side by side."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="adjust") as pool:
        orders = pool.submit(broker.list_orders, status="all", after=since)
        last = pool.submit(broker.latest_trade_price, symbol)
        return OrderBook.of(orders.result()), last.result()


def decide_legs(row: Position, book: OrderBook, stop: Decimal | None, target: Decimal | None,
                last_trade: Decimal, now: datetime) -> tuple[LegPlan, ...]:
    """Validate (exit 2, nothing sent; exit 3 while a restore's outcome is unknown) and decide
    each leg asked for: its working order (or none), the price now, the new price."""
    working_stop, working_target = working_exits(row, book)
    if row.restore_client_order_id and row.restore_order_id is None and \
            row.restore_sent_at is not None and now - row.restore_sent_at < UNKNOWN_GRACE \
            and book.by_client_id.get(row.restore_client_order_id) is None:
        raise RefusedError(f"{row.symbol}: the restore of its stop has an outcome not known "
                           "yet: try again once `tradectl watch` has settled it",
                           rule="outcome_unknown")
    stop_now = price_of(working_stop, "stop") or row.stop_loss
    target_now = price_of(working_target, "target") or row.take_profit
    new_stop = stop if stop is not None else stop_now
    new_target = target if target is not None else target_now
    check_exit_prices(row.side, new_stop, new_target, last_trade, base_name="the last trade")
    if row.status == "pending" and row.entry_price is not None:
        check_exit_prices(row.side, new_stop, new_target, row.entry_price, base_name="--entry")
    return tuple(LegPlan(leg, now, new, leg_action(order, now, new),
                         order.id if order else None, order.status if order else None)
                 for leg, order, now, new, asked in (
                     ("stop", working_stop, stop_now, new_stop, stop),
                     ("target", working_target, target_now, new_target, target))
                 if asked is not None)


def price_of(order: Order | None, leg: str) -> Decimal | None:
    if order is None:
        return None
    return order.stop_price if leg == "stop" else order.limit_price


def leg_action(order: Order | None, was: Decimal, new: Decimal) -> str:
    if order is None:
        return "recorded"
    return "unchanged" if new == was else "replace"


def local_legs(row: Position, stop: Decimal | None, target: Decimal | None
               ) -> tuple[LegPlan, ...]:
    """A local-only row's new prices, checked against each other (no market to check them by)."""
    new_stop = stop if stop is not None else row.stop_loss
    new_target = target if target is not None else row.take_profit
    if (row.side == "buy") != (new_stop < new_target):
        raise InputError(f"for a {row.side}, --stop ({new_stop}) must be "
                         f"{'below' if row.side == 'buy' else 'above'} --target "
                         f"({new_target})")
    return tuple(LegPlan(leg, was, new, "recorded", None, None) for leg, was, new, asked in (
        ("stop", row.stop_loss, new_stop, stop), ("target", row.take_profit, new_target,
                                                  target)) if asked is not None)


def adjust_dry_run(plan: AdjustPlan, *, trading_mode: str) -> DryRun[AdjustSummary]:
    """The plan as `--dry-run` shows it: the legs, the price checks passed, the PATCHes."""
    if plan.refusal is not None:
        return DryRun("adjust", trading_mode, plan.summary, refusal=plan.refusal.message,
                      exit_code=plan.refusal.exit_code)
    if plan.local:
        return DryRun("adjust", trading_mode, plan.summary, notes=(
            "local only: the prices change in the database; nothing would be sent",))
    return DryRun("adjust", trading_mode, plan.summary, checks=_checks(plan.summary),
                  requests=plan.requests, notes=_notes(plan.summary))


def _checks(plan: AdjustSummary) -> tuple[RuleCheck, ...]:
    """The price checks `decide_legs` passed (a failing one is bad input: exit 2), with their
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


def _notes(plan: AdjustSummary) -> tuple[str, ...]:
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
