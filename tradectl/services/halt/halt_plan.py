"""`halt`'s plan: what the emergency stop would cancel and close, from a live read of the broker
and the database, and the request it sends first. The real stop sends that close-all before
anything is read (cli/early_halt.py: speed first), so it cannot wait for a plan; instead the
plan's request and the stop's come from one definition (`first_close.close_all_request` and
`close_all`). `halt --dry-run` shows the plan (`halt_dry_run`): nothing is latched, cancelled,
closed, recorded or alerted."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from tradectl.broker import Account, Broker, BrokerPosition, BrokerRequest, Clock, Order
from tradectl.db.session import Database
from tradectl.db.spool import StopSpool
from tradectl.errors import BrokerError, DatabaseError, ExitCode, InputError
from tradectl.notify import Channels
from tradectl.services.dry_run import DryRun, HaltSummary, OrderToCancel, PositionToClose
from tradectl.services.halt.first_close import close_all_request

T = TypeVar("T")


@dataclass(frozen=True)
class HaltPlan:
    """The stop as it would go: `summary`, the close-all it sends first (`requests`), what
    else it would do or could not read (`notes`), and the exit code it would have."""

    summary: HaltSummary
    requests: tuple[BrokerRequest, ...] = ()
    notes: tuple[str, ...] = ()
    exit_code: ExitCode = ExitCode.OK


@dataclass(frozen=True)
class _Book:
    cycle_id: int | None
    stopped: bool
    tracked: dict[str, tuple[int, ...]]  # symbol -> live broker-backed rows
    order_ids: frozenset[str]
    local: tuple[str, ...]


def plan_halt(db: Database, broker: Broker | None, channels: Channels | None, reason: str,
              *, spool: StopSpool | None = None) -> HaltPlan:
    """Reads only (the database, then the broker's four reads side by side)."""
    reason = reason.strip()
    if not reason:
        raise InputError("--reason must not be empty: say why trading is stopped")
    notes: list[str] = []
    exit_code = ExitCode.OK
    try:
        book = _read_book(db)
    except DatabaseError as err:
        book = _Book(None, False, {}, frozenset(), ())
        notes.append(f"the database could not be read ({err.message}): the real stop still "
                     "flattens the account, alerts directly and spools its record")
        exit_code = ExitCode.DATABASE
    alerts = tuple(f"{c.name} to {c.recipients}" for c in channels or ())
    plan = HaltSummary(reason, book.cycle_id, book.stopped, alerts=alerts,
                    spooled_stops=spool.pending_count() if spool else 0)
    if not alerts:
        notes.append("no alert channel is configured: the stop would alert nobody")
    if broker is None:
        notes.append("Alpaca is not configured: nothing would be sent to a broker; the "
                     "positions recorded locally would be closed in the database only")
        return HaltPlan(replace(plan, closed_locally=book.local), notes=tuple(notes),
                        exit_code=exit_code)
    reads = _read_broker(broker)
    positions, orders, clock, account = reads.positions, reads.orders, reads.clock, reads.account
    notes += reads.errors
    if positions is None or orders is None:  # the real stop could not say what it closed
        exit_code = ExitCode.DATABASE if exit_code == ExitCode.DATABASE else ExitCode.BROKER
    plan = replace(
        plan, orders=_orders_to_cancel(orders or [], book), closed_locally=book.local,
        positions=tuple(PositionToClose(p.symbol, p.side, abs(p.qty), p.current_price,
                                        p.market_value, p.unrealized_pl,
                                        book.tracked.get(p.symbol, ()))
                        for p in sorted(positions or [], key=lambda p: p.symbol)),
        entries_to_cancel=tuple(sorted({o.symbol for o in orders or () if o.id in book.order_ids
                                        and o.filled_qty == 0})),
        market_open=clock.is_open if clock else None,
        equity=account.equity if account else None, day_pnl=account.day_pnl if account else None)
    notes.append("if that request fails as a whole or for a symbol, the stop cancels every "
                 "order (DELETE /v2/orders) and closes symbol by symbol "
                 "(DELETE /v2/positions/{symbol}), retried within 60 s")
    if plan.market_open is False and plan.positions:
        notes.append("the market is closed: the close orders would fill when it opens")
    return HaltPlan(plan, (close_all_request(broker),), tuple(notes), exit_code)


def halt_dry_run(plan: HaltPlan, *, trading_mode: str) -> DryRun[HaltSummary]:
    return DryRun("halt", trading_mode, plan.summary, requests=plan.requests, notes=plan.notes,
                  exit_code=plan.exit_code)


def _read_book(db: Database) -> _Book:
    with db.read() as journal:
        cycle = journal.latest_cycle()
        tracked: dict[str, list[int]] = {}
        order_ids, local = set(), []
        for p in journal.live_positions():
            if p.alpaca_status == "alpaca_disabled":
                local.append(p.symbol)
                continue
            tracked.setdefault(p.symbol, []).append(p.id)
            order_ids |= {i for i in (p.alpaca_order_id, p.exit_order_id) if i}
        return _Book(cycle.id if cycle else None, bool(cycle and cycle.status == "stopped"),
                     {s: tuple(ids) for s, ids in tracked.items()}, frozenset(order_ids),
                     tuple(sorted(local)))


@dataclass(frozen=True)
class _Reads:
    positions: list[BrokerPosition] | None
    orders: list[Order] | None
    clock: Clock | None
    account: Account | None
    errors: tuple[str, ...]


def _read_broker(broker: Broker) -> _Reads:
    """The four reads side by side; a failed one is a note (and None)."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="halt-plan") as pool:
        positions, orders = pool.submit(broker.list_positions), pool.submit(broker.list_orders)
        clock, account = pool.submit(broker.clock), pool.submit(broker.account)
    errors: list[str] = []
    return _Reads(_settle(positions, "positions", errors), _settle(orders, "open orders", errors),
                  _settle(clock, "clock", errors), _settle(account, "account", errors),
                  tuple(errors))


def _settle(future: Future[T], name: str, errors: list[str]) -> T | None:
    try:
        return future.result()
    except BrokerError as err:
        errors.append(f"could not read the {name} at Alpaca: {err.message}")
        return None


def _orders_to_cancel(orders: list[Order], book: _Book) -> tuple[OrderToCancel, ...]:
    """Every order still working, legs included (they come nested under their bracket): the
    close-all request cancels them all before it closes."""
    rows = []
    for root in orders:
        tracked = root.id in book.order_ids
        for order, leg in ((root, False), *((leg, True) for leg in root.legs)):
            if not order.is_final:
                rows.append(OrderToCancel.of(order, leg=leg, tracked=tracked))
    return tuple(sorted(rows, key=lambda r: (r.symbol, r.leg, r.type, r.id)))
