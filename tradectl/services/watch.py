"""One tick of the risk loop: bring the database in line with the broker, compute the day's
P&L, and pull the emergency stop when the loss limit is reached (confirmed by a second read)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradectl.broker import Account, Broker, BrokerPosition, Order
from tradectl.db.models import Event, Position, utcnow
from tradectl.db.session import Database
from tradectl.errors import BrokerError
from tradectl.risk import loss_limit_reached, loss_warning_reached
from tradectl.services.alerts import SmtpSettings, deliver_pending
from tradectl.services.emergency_stop import HaltReport, emergency_stop
from tradectl.services.journal import (
    latest_cycle,
    live_positions,
    orders_window_start,
    position_view,
    record_event,
)
from tradectl.services.orders import apply_bracket, apply_exit_order

# A pending row without an order id younger than this may still be mid-submit in another process.
ORPHAN_GRACE = timedelta(seconds=60)
RECENT_EVENTS = 8


@dataclass
class TickResult:
    at: datetime
    cycle_id: int | None
    cycle_status: str
    stop_reason: str | None
    account: Account | None = None
    positions: list[dict[str, Any]] = field(default_factory=list)
    external: list[BrokerPosition] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    warning: str | None = None
    error: str | None = None
    rate_limited: bool = False
    stop: HaltReport | None = None
    alerts_sent: int = 0

    @property
    def day_pnl(self) -> Decimal | None:
        return self.account.day_pnl if self.account is not None else None


@dataclass
class BrokerState:
    account: Account
    positions: list[BrokerPosition]
    orders: list[Order]


class Watcher:
    """Keeps what must survive between ticks: whether the 80% warning was given this cycle."""

    def __init__(self, db: Database, broker: Broker | None, smtp: SmtpSettings, *,
                 daily_loss_limit: Decimal, drives_stops: bool) -> None:
        self.db, self.broker, self.smtp = db, broker, smtp
        self.limit, self.drives_stops = daily_loss_limit, drives_stops
        self._warned_cycles: set[int | None] = set()

    def tick(self) -> TickResult:
        state: BrokerState | None = None
        error: BrokerError | None = None
        if self.broker is not None:
            try:
                state = self._read(self.broker)
            except BrokerError as err:
                error = err
        result = self._sync(state, error)
        if state is not None and self.drives_stops:
            self._check_loss_limit(result)
        result.alerts_sent = deliver_pending(self.db, self.smtp).sent
        if result.stop is not None:  # show the positions as the stop left them
            result.positions, result.events = self._views()
        return result

    # -- reading the broker: three calls, side by side, whatever the size of the book --------

    def _read(self, broker: Broker) -> BrokerState:
        with self.db.transaction() as session:
            since = orders_window_start(session)
        with ThreadPoolExecutor(max_workers=3) as pool:
            account = pool.submit(broker.account)
            positions = pool.submit(broker.list_positions)
            orders = pool.submit(broker.list_orders, status="all", after=since)
            return BrokerState(account.result(), positions.result(), orders.result())

    # -- bringing the database in line ---------------------------------------------------

    def _sync(self, state: BrokerState | None, error: BrokerError | None) -> TickResult:
        with self.db.transaction() as session:
            cycle = latest_cycle(session)
            result = TickResult(utcnow(), cycle.id if cycle else None,
                                cycle.status if cycle else "none",
                                cycle.stop_reason if cycle else None)
            live = live_positions(session)
            if error is not None:
                result.error, result.rate_limited = error.message, error.status == 429
                record_event(session, "broker_error", f"watch: {error.message}",
                             cycle_id=result.cycle_id, details={"http_status": error.status})
            elif state is not None:
                result.account = state.account
                self._apply(session, result, live, state)
            market = {p.symbol: p for p in state.positions} if state is not None else {}
            result.positions = [_with_market(position_view(p), market) for p in live]
            result.events = _recent_events(session)
        return result

    def _apply(self, session: Session, result: TickResult, live: list[Position],
               state: BrokerState) -> None:
        by_id: dict[str, Order] = {}
        by_client_id: dict[str, Order] = {}
        for order in state.orders:
            by_id[order.id] = order
            by_client_id[order.client_order_id] = order
            for leg in order.legs:
                by_id[leg.id] = leg
        held = {p.symbol for p in state.positions}
        for position in live:
            if position.alpaca_status == "alpaca_disabled":
                continue
            change = self._sync_position(session, position, by_id, by_client_id)
            if change is None and position.status == "open" and position.symbol not in held \
                    and not position.alpaca_error:
                position.alpaca_error = "Alpaca holds no position in this symbol"
                change = "flagged: tracked as open but Alpaca holds no position"
            if change:
                result.changes.append(f"{position.symbol}: {change}")
                record_event(session, "position_synced", f"{position.symbol}: {change}",
                             cycle_id=position.cycle_id, position_id=position.id,
                             details={"status": position.status,
                                      "alpaca_status": position.alpaca_status})
        tracked = {p.symbol for p in live}
        result.external = [p for p in state.positions if p.symbol not in tracked]

    def _sync_position(self, session: Session, position: Position, by_id: dict[str, Order],
                       by_client_id: dict[str, Order]) -> str | None:
        if position.exit_order_id and position.exit_order_id in by_id:
            before = position.status
            apply_exit_order(position, by_id[position.exit_order_id])
            return f"closed at {position.exit_price}" if position.status != before else None
        order = by_id.get(position.alpaca_order_id or "") or by_client_id.get(
            position.client_order_id)
        if order is None and position.alpaca_order_id is None:
            return self._reconcile_orphan(position)
        return apply_bracket(position, order) if order is not None else None

    def _reconcile_orphan(self, position: Position) -> str | None:
        """A pending row with no order id: the process died between submit and record (or is
        submitting right now). Found at Alpaca -> complete it; absent past the grace -> failed."""
        if self.broker is None:
            return None
        try:
            order = self.broker.find_order_by_client_id(position.client_order_id)
        except BrokerError:
            return None  # try again next tick
        if order is not None:
            apply_bracket(position, order)
            return f"recovered order {order.id} by client_order_id ({order.status})"
        if utcnow() - position.created_at < ORPHAN_GRACE:
            return None
        position.status, position.alpaca_status = "failed", "error"
        position.alpaca_error = "no order at Alpaca for this client_order_id: never submitted"
        position.closed_at = utcnow()
        return "failed: the order never reached Alpaca"

    # -- the loss limit -----------------------------------------------------------------

    def _check_loss_limit(self, result: TickResult) -> None:
        pnl = result.day_pnl
        if pnl is None or result.cycle_status == "stopped" or self.broker is None:
            return
        if loss_limit_reached(pnl, self.limit):
            try:  # one bad equity reading must not flatten the account
                confirmed = self.broker.account().day_pnl
            except BrokerError as err:
                result.error = f"loss limit reading not confirmed: {err.message}"
                return
            if loss_limit_reached(confirmed, self.limit):
                reason = (f"daily loss limit: day P&L ${confirmed:,.2f} reached "
                          f"-DAILY_LOSS_LIMIT ${-self.limit:,.2f}")
                result.stop = emergency_stop(self.db, self.broker, self.smtp, reason)
                result.cycle_status, result.stop_reason = "stopped", reason
                return
        if loss_warning_reached(pnl, self.limit) and result.cycle_id not in self._warned_cycles:
            self._warned_cycles.add(result.cycle_id)
            result.warning = (f"day P&L ${pnl:,.2f} is past 80% of DAILY_LOSS_LIMIT "
                              f"${self.limit:,.2f}")
            with self.db.transaction() as session:
                record_event(session, "loss_warning", result.warning, cycle_id=result.cycle_id)

    def _views(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self.db.transaction() as session:
            return [position_view(p) for p in live_positions(session)], _recent_events(session)



def _with_market(view: dict[str, Any], market: dict[str, BrokerPosition]) -> dict[str, Any]:
    held = market.get(view["symbol"])
    view["last_price"] = held.current_price if held is not None else None
    view["unrealized_pl"] = held.unrealized_pl if held is not None else None
    return view


def _recent_events(session: Session) -> list[dict[str, Any]]:
    events = session.scalars(select(Event).order_by(Event.id.desc()).limit(RECENT_EVENTS))
    return [{"at": e.created_at, "kind": e.kind, "message": e.message} for e in events]
