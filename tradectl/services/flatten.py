"""Flatten the account at the broker: cancel every order and close every position in one request,
falling back to per-symbol closes (concurrent, rate-limited, retried within a deadline) when that
request fails as a whole or for some symbols. Then one batch of reads shows what happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tradectl.broker import Account, Broker, Clock, Order, SymbolOutcome
from tradectl.errors import BrokerError

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
    unread: list[str] = field(default_factory=list)  # the reads after the stop that failed


def flatten_account(
    broker: Broker, *, orders_since: datetime, tracked_orders: Collection[str] = (),
    deadline_seconds: float = 60.0, sleep: Callable[[float], None] = time.sleep,
) -> Flattening:
    """`tracked_orders`: the order ids the caller must see afterwards (entries and earlier
    closes); with the closes submitted here, the orders read may stop once it has them all."""
    deadline = time.monotonic() + deadline_seconds
    started = datetime.now(UTC)
    try:
        result = Flattening("close_all", {o.key: o for o in
                                          broker.close_all_positions(cancel_orders=True)})
    except BrokerError as err:
        result = Flattening("fallback")
        result.notes.append(f"close-all failed ({err.message}); closing symbol by symbol")
    failed = [symbol for symbol, outcome in result.outcomes.items() if not outcome.ok]
    if result.path == "fallback" or failed:
        if failed:
            result.path = "fallback"
            result.notes.append(f"{len(failed)} symbol(s) failed in close-all; retrying each")
        _fallback(broker, result, failed or None, deadline, sleep)
    closes = {o.order.id for o in result.outcomes.values() if o.order is not None}
    _read_state(broker, result, orders_since, {*tracked_orders, *closes})
    _closes_without_an_answer(result, started, tracked_orders)
    return result


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
    sleep: Callable[[float], None],
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
            order = _retry(lambda: broker.close_position(symbol), deadline, sleep,
                           also=_still_held)
        except BrokerError as err:
            if err.status == 404:  # nothing left to close
                return SymbolOutcome(symbol, 404, None, None)
            return SymbolOutcome(symbol, err.status or 0, None, err.message)
        return SymbolOutcome(symbol, 200, order, None)

    with ThreadPoolExecutor(max_workers=CLOSE_WORKERS) as pool:
        for outcome in pool.map(close_one, symbols):
            result.outcomes[outcome.key] = outcome


def _still_held(err: BrokerError) -> bool:
    """A 403 'insufficient qty' right after cancelling: the cancels have not landed yet."""
    return err.status == 403 and "insufficient qty" in err.message


def _retry(
    call: Callable[[], T], deadline: float, sleep: Callable[[float], None],
    also: Callable[[BrokerError], bool] = lambda _err: False,
) -> T:
    for pause in (*RETRY_BACKOFF, None):
        try:
            return call()
        except BrokerError as err:
            retryable = err.transient or also(err)
            if not retryable or pause is None or time.monotonic() + pause > deadline:
                raise
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _read_state(
    broker: Broker, result: Flattening, orders_since: datetime, wanted: set[str]
) -> None:
    """One round trip: orders (with legs), the clock and the account, side by side."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        orders = pool.submit(broker.list_orders, status="all", after=orders_since, wanted=wanted,
                             deadline_seconds=READS_AFTER_STOP_SECONDS)
        clock = pool.submit(broker.clock)
        account = pool.submit(broker.account)
        for name, future in (("orders", orders), ("clock", clock), ("account", account)):
            try:
                setattr(result, name, future.result())
            except BrokerError as err:
                result.unread.append(name)
                result.notes.append(f"could not read {name} after the stop: {err.message}")
