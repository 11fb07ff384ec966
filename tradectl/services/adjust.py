"""`tradectl adjust`: move a position's working stop and/or take-profit in place.

PATCH /v2/orders/{id} replaces the order (a new id takes the old one's place), so the shares are
never without cover: nothing is cancelled and sent again. The new prices are checked against
the last trade (and a pending limit entry's price) before anything is sent. A lost answer is
not sent again: the old order's `replaced_by`, in the next orders read, settles it. Each leg is
reported, and the row records the prices Alpaca answered with (the old ones go in the event).

A pending entry's legs are `held` at Alpaca: the spec's list of statuses that cannot be
replaced (accepted, pending_new, pending_cancel, pending_replace) leaves `held` out, and
Alpaca's order guide says bracket and OCO orders take PATCH of limit_price and stop_price; no
source says otherwise for a leg whose entry has not filled, so they are replaced like any
other, and a refusal is reported as Alpaca's (exit 4).
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
from tradectl.errors import (
    BrokerError,
    BrokerNotConfigured,
    ExitCode,
    InputError,
    RefusedError,
)
from tradectl.services.close_position import find_position
from tradectl.services.protection import working_exits
from tradectl.services.reconcile import UNKNOWN_GRACE, OrderBook, write_outcome_unknown
from tradectl.services.row_views import position_view
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
    check_asked(stop, target)
    with db.read() as journal:
        row = find_position(journal, ref)
        check_adjustable(row)
        position_id, since = row.id, journal.orders_window_start()
        local = row.alpaca_status == "alpaca_disabled"
    if local:
        return _record_locally(db, position_id, stop, target)
    broker = needs_keys(broker, row)
    book, last_trade = read_for_adjust(broker, since, row.symbol)
    with db.read() as journal:
        row = journal.position(position_id)
        planned = plan_adjust(row, book, stop, target, last_trade, clock=clock)
        old = (row.stop_loss, row.take_profit)
    with db.transaction() as journal:  # written ahead: what is about to be asked, and why
        row = journal.position(position_id)
        journal.record("adjust_requested", f"{row.symbol}: adjust requested: " + ", ".join(
            f"{leg} {price_text(was)} -> {price_text(new)}" for leg, _, was, new in planned),
            cycle_id=row.cycle_id, position_id=row.id,
            details={"last_trade": last_trade, "old_stop": old[0], "old_target": old[1]})
        journal.commit()
    changes = [_move(broker, leg, order, was, new) for leg, order, was, new in planned]
    return AdjustReport(_record(db, position_id, changes), tuple(changes), last_trade)


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


Planned = list[tuple[str, Order | None, Decimal, Decimal]]


def plan_adjust(row: Position, book: OrderBook, stop: Decimal | None, target: Decimal | None,
                last_trade: Decimal, *, clock: Clock = SYSTEM_CLOCK) -> Planned:
    """The adjust's decision, shared by the real command and `adjust --dry-run`: validate
    (exit 2, nothing sent; exit 3 while a restore's outcome is unknown) and list each leg to
    move: (leg, its working order or None, the price now, the new price)."""
    working_stop, working_target = working_exits(row, book)
    if row.restore_client_order_id and row.restore_order_id is None and \
            row.restore_sent_at is not None and clock.now() - row.restore_sent_at < UNKNOWN_GRACE \
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
    return [(leg, order, now, new) for leg, order, now, new, asked in (
        ("stop", working_stop, stop_now, new_stop, stop),
        ("target", working_target, target_now, new_target, target)) if asked is not None]


def price_of(order: Order | None, leg: str) -> Decimal | None:
    if order is None:
        return None
    return order.stop_price if leg == "stop" else order.limit_price


def leg_action(order: Order | None, was: Decimal, new: Decimal) -> str:
    """replace (PATCH the working order) | unchanged (already so: nothing sent) | recorded (no
    working order: the row keeps the price for the next restore)."""
    if order is None:
        return "recorded"
    return "unchanged" if new == was else "replace"


def replace_request(broker: Broker, leg: str, order_id: str, new: Decimal) -> BrokerRequest:
    if leg == "stop":
        return broker.replace_order_request(order_id, stop_price=new)
    return broker.replace_order_request(order_id, limit_price=new)


def _move(broker: Broker, leg: str, order: Order | None, was: Decimal,
          new: Decimal) -> LegChange:
    action = leg_action(order, was, new)
    if order is None or action == "recorded":
        return LegChange(leg, was, new, "recorded")
    if action == "unchanged":
        return LegChange(leg, was, new, "unchanged", order.id, order.id)
    try:
        if leg == "stop":
            answer = broker.replace_order(order.id, stop_price=new)
        else:
            answer = broker.replace_order(order.id, limit_price=new)
    except BrokerError as err:
        state = "unknown" if write_outcome_unknown(err) else "failed"
        return LegChange(leg, was, new, state, order.id, error=err.message)
    return LegChange(leg, was, price_of(answer, leg) or new, "replaced", order.id, answer.id)


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


def _record_locally(db: Database, position_id: int, stop: Decimal | None,
                    target: Decimal | None) -> AdjustReport:
    """A local-only row (never sent to a broker): the prices change in the database only."""
    with db.transaction() as journal:
        row = journal.position_for_update(position_id)
        changes = local_changes(row, stop, target)
        for change in changes:
            _set_leg(row, replace(change, new_order_id=None))
            journal.record("adjusted", f"{row.symbol}: {change.leg} "
                           f"{price_text(change.old_price or change.new_price)} -> "
                           f"{price_text(change.new_price)} (local only: the database only)",
                           cycle_id=row.cycle_id, position_id=row.id)
        journal.commit()
        return AdjustReport(position_view(row), tuple(changes))


def local_changes(row: Position, stop: Decimal | None, target: Decimal | None
                  ) -> list[LegChange]:
    """A local-only row's new prices, checked against each other (no market to check them by)."""
    new_stop = stop if stop is not None else row.stop_loss
    new_target = target if target is not None else row.take_profit
    if (row.side == "buy") != (new_stop < new_target):
        raise InputError(f"for a {row.side}, --stop ({new_stop}) must be "
                         f"{'below' if row.side == 'buy' else 'above'} --target "
                         f"({new_target})")
    return [LegChange(leg, was, new, "recorded") for leg, was, new, asked in (
        ("stop", row.stop_loss, new_stop, stop), ("target", row.take_profit, new_target,
                                                  target)) if asked is not None]
