"""Flatten the account at the broker: cancel every order and close every position in one request,
falling back to per-symbol closes (concurrent, rate-limited, retried within a deadline) when that
request fails as a whole or for some symbols. Then one batch of reads shows what happened, and
anything placed after the close-all (an `open` that was submitting while the stop latched) is
swept: its orders cancelled and its shares closed."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from tradectl.broker import Account, Broker, BrokerPosition, Clock, Order, SymbolOutcome
from tradectl.domain.clock import SYSTEM_CLOCK
from tradectl.domain.clock import Clock as TimeSource
from tradectl.errors import BrokerError
from tradectl.services.halt.first_close import close_all

if TYPE_CHECKING:
    from tradectl.services.halt.first_close import FirstClose

T = TypeVar("T")

CLOSE_WORKERS = 8
CLOCK_SKEW = timedelta(seconds=5)  # between this machine's clock and Alpaca's timestamps
# The orders read after the stop is bounded, so that the record and the alert always follow.
READS_AFTER_STOP_SECONDS = 30.0
RETRY_BACKOFF = (0.2, 0.5, 1.0, 2.0)


@dataclass
class Flattening:
    """What the broker said. `outcomes` maps symbol -> the close's outcome."""

    path: str  # "close_all", or "fallback" when the one-request close failed
    outcomes: dict[str, SymbolOutcome] = field(default_factory=dict)
    broker_error: str | None = None  # the broker could not be used at all
    notes: list[str] = field(default_factory=list)
    orders: list[Order] | None = None
    clock: Clock | None = None
    account: Account | None = None
    positions: list[BrokerPosition] | None = None
    unread: list[str] = field(default_factory=list)  # the reads after the stop that failed
    swept: list[str] = field(default_factory=list)  # symbols placed after the close-all, closed
    sweep_cancelled: set[str] = field(default_factory=set)  # orders the sweep cancelled


def flatten_account(
    broker: Broker, *, orders_since: datetime, tracked_orders: Collection[str] = (),
    deadline_seconds: float = 60.0, sleep: Callable[[float], None] = time.sleep,
    first: FirstClose | None = None, started: datetime | None = None, close: bool = True,
    clock: TimeSource = SYSTEM_CLOCK,
) -> Flattening:
    """`tracked_orders`: the order ids the caller must see afterwards (entries and earlier
    closes); with the closes submitted here, the orders read may stop once it has them all.
    `first`: the close-all already sent (its answer is awaited here). `started`: when the stop
    began (its closes are those Alpaca shows from then on). `close` False: reads only (a stop
    being completed by a later command, with nothing left to close)."""
    deadline = clock.monotonic() + deadline_seconds
    started = started or (first.started if first is not None else clock.now())
    try:
        if not close:
            result = Flattening("none")
        else:
            answer = first.result() if first is not None else close_all(broker)
            result = Flattening("close_all", {o.key: o for o in answer})
    except BrokerError as err:
        result = Flattening("fallback")
        result.notes.append(f"close-all failed ({err.message}); closing symbol by symbol")
    failed = [symbol for symbol, outcome in result.outcomes.items() if not outcome.ok]
    if result.path == "fallback" or failed:
        if failed:
            result.path = "fallback"
            result.notes.append(f"{len(failed)} symbol(s) failed in close-all; retrying each")
        _fallback(broker, result, failed or None, deadline, sleep, clock)
    closes = {o.order.id for o in result.outcomes.values() if o.order is not None}
    _read_state(broker, result, orders_since, {*tracked_orders, *closes})
    _closes_without_an_answer(result, started, tracked_orders)
    _sweep(broker, result, deadline, sleep, clock)
    return result


def _sweep(broker: Broker, result: Flattening, deadline: float,
           sleep: Callable[[float], None], clock: TimeSource) -> None:
    """Shares Alpaca holds beyond what this stop's working closes cover were bought or sold
    after the close-all (an `open` submitting while the latch waited for it): cancel the working
    orders of that symbol (a filled entry's exits hold the shares), then close what is held."""
    if result.positions is None or result.orders is None:
        return
    closes = {o.order.id for o in result.outcomes.values() if o.order is not None}
    uncovered = _uncovered(result.positions, result.orders, closes)
    working = [o for o in result.orders if o.symbol in uncovered and o.id not in closes
               and (not o.is_final or any(not leg.is_final for leg in o.legs))]
    for order in working:  # one cancel per group: Alpaca cancels the rest of it
        target = order if not order.is_final else next(g for g in order.legs if not g.is_final)
        try:
            broker.cancel_order(target.id)
        except BrokerError as err:
            result.notes.append(f"sweep: cancelling order {target.id} failed: {err.message}")
        else:
            result.sweep_cancelled.add(order.id)
    for symbol, qty in sorted(uncovered.items()):
        def close(symbol: str = symbol, qty: Decimal | None = qty) -> Order:
            return broker.close_position(symbol, qty)

        try:
            order = _retry(close, deadline, sleep, clock, also=_still_held)
        except BrokerError as err:
            if err.status == 404:
                continue
            result.outcomes[symbol] = SymbolOutcome(symbol, err.status or 0, None, err.message)
        else:
            with suppress(BrokerError):  # the close's fill, if Alpaca has it by now
                order = broker.get_order(order.id)
            result.outcomes[symbol] = SymbolOutcome(symbol, 200, order, None)
        result.swept.append(symbol)
    if result.swept:
        result.notes.append(
            f"swept after the latch: {', '.join(result.swept)} (placed after the close-all, "
            "while the stop was being latched): its orders cancelled and its shares closed")


def _closes_without_an_answer(result: Flattening, started: datetime,
                              tracked_orders: Collection[str]) -> None:
    """A close-all whose answer was lost (a timeout) may still have closed positions: their
    market close orders are in the orders read. Each symbol with no close of its own answer
    takes the close Alpaca shows for it."""
    answered = {s for s, o in result.outcomes.items() if o.order is not None}
    since = started - CLOCK_SKEW
    for order in result.orders or ():
        if (order.symbol not in answered and order.id not in tracked_orders
                and order.type == "market" and not order.legs
                and order.order_class in ("", "simple")
                and order.submitted_at is not None and order.submitted_at >= since):
            result.outcomes[order.symbol] = SymbolOutcome(order.symbol, 200, order, None)
            answered.add(order.symbol)


def _fallback(
    broker: Broker, result: Flattening, symbols: list[str] | None, deadline: float,
    sleep: Callable[[float], None], clock: TimeSource,
) -> None:
    # Reads and cancels are retried by the adapter itself; only the closes need our loop.
    if symbols is None:
        try:
            symbols = [p.symbol for p in broker.list_positions()]
        except BrokerError as err:
            result.broker_error = f"could not list positions at Alpaca: {err.message}"
            return
    try:  # bracket legs hold the shares: cancel before closing
        broker.cancel_all_orders()
    except BrokerError as err:
        result.notes.append(f"cancelling orders failed: {err.message}")

    def close_one(symbol: str) -> SymbolOutcome:
        try:
            order = _retry(lambda: broker.close_position(symbol), deadline, sleep, clock,
                           also=_still_held)
        except BrokerError as err:
            if err.status == 404:  # nothing left to close
                return SymbolOutcome(symbol, 404, None, None)
            return SymbolOutcome(symbol, err.status or 0, None, err.message)
        return SymbolOutcome(symbol, 200, order, None)

    with ThreadPoolExecutor(max_workers=CLOSE_WORKERS) as pool:
        for outcome in pool.map(close_one, symbols):
            result.outcomes[outcome.key] = outcome


def _uncovered(positions: list[BrokerPosition], orders: list[Order],
               closes: set[str]) -> dict[str, Decimal | None]:
    """Symbol -> the shares held beyond what this stop's working closes cover (None: all of
    them, no close of this stop is working)."""
    covered: dict[str, Decimal] = {}
    for order in orders:
        if order.id in closes and not order.is_final:
            covered[order.symbol] = covered.get(order.symbol, Decimal(0)) + (
                (order.qty or Decimal(0)) - order.filled_qty)
    held = {p.symbol: abs(p.qty) - covered.get(p.symbol, Decimal(0)) for p in positions}
    return {s: (qty if s in covered else None) for s, qty in held.items() if qty > 0}


def _still_held(err: BrokerError) -> bool:
    """A 403 'insufficient qty' right after cancelling: the cancels have not landed yet."""
    return err.status == 403 and "insufficient qty" in err.message


def _retry(
    call: Callable[[], T], deadline: float, sleep: Callable[[float], None], clock: TimeSource,
    also: Callable[[BrokerError], bool] = lambda _err: False,
) -> T:
    for pause in (*RETRY_BACKOFF, None):
        try:
            return call()
        except BrokerError as err:
            retryable = err.transient or also(err)
            if not retryable or pause is None or clock.monotonic() + pause > deadline:
                raise
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _read_state(
    broker: Broker, result: Flattening, orders_since: datetime, wanted: set[str]
) -> None:
    """One round trip: orders (with legs), positions, the clock and the account, side by side."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        orders = pool.submit(broker.list_orders, status="all", after=orders_since, wanted=wanted,
                             deadline_seconds=READS_AFTER_STOP_SECONDS)
        positions = pool.submit(broker.list_positions)
        clock = pool.submit(broker.clock)
        account = pool.submit(broker.account)
        for name, future in (("orders", orders), ("positions", positions), ("clock", clock),
                             ("account", account)):
            try:
                setattr(result, name, future.result())
            except BrokerError as err:
                result.unread.append(name)
                result.notes.append(f"could not read {name} after the stop: {err.message}")
