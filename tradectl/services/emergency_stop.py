"""The emergency stop: latch the cycle, flatten the account, record every position truthfully,
alert someone, report. Safe to run again: it retries what failed and keeps what succeeded."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from tradectl.broker import Account, Broker, Order, SymbolOutcome
from tradectl.db.models import Cycle, Position, utcnow
from tradectl.db.session import Database
from tradectl.errors import InputError
from tradectl.services.alerts import SmtpSettings, deliver_pending, queue_alert
from tradectl.services.flatten import Flattening, flatten_account
from tradectl.services.journal import (
    event_row,
    latest_cycle,
    live_positions,
    orders_window_start,
    record_event,
    record_events,
    tracked_order_ids,
    trading_gate,
)
from tradectl.services.orders import apply_entry_order, apply_exit_order

MARKET_CLOSED_NOTE = "market closed: fills when the market opens"


@dataclass
class SymbolReport:
    symbol: str
    state: str  # closed | closing | failed | cancelled | flat | missing | closed_locally
    position_ids: list[int] = field(default_factory=list)
    external: bool = False
    close_order_id: str | None = None
    cancelled_orders: int = 0
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.state in ("failed", "missing")


@dataclass
class HaltReport:
    cycle_id: int
    reason: str
    stopped_at: datetime
    already_stopped: bool
    broker_enabled: bool
    path: str = "none"
    symbols: list[SymbolReport] = field(default_factory=list)
    market_open: bool | None = None
    equity: Decimal | None = None
    day_pnl: Decimal | None = None
    broker_error: str | None = None
    notes: list[str] = field(default_factory=list)
    alert: str = "not configured"
    broker_requests: int | None = None

    @property
    def exit_code(self) -> int:
        failed = self.broker_error is not None or any(s.failed for s in self.symbols)
        return 4 if failed else 0


def emergency_stop(
    db: Database, broker: Broker | None, smtp: SmtpSettings, reason: str,
    *, fallback_deadline: float = 60.0,
) -> HaltReport:
    reason = reason.strip()
    if not reason:
        raise InputError("--reason must not be empty: say why trading is stopped")
    report = _latch(db, reason, broker is not None)
    if broker is None:
        report.symbols = _close_locally(db, report)
    else:
        with db.transaction() as session:
            since = orders_window_start(session, report.stopped_at)
            tracked = tracked_order_ids(session)
        flattening = flatten_account(broker, orders_since=since, tracked_orders=tracked,
                                     deadline_seconds=fallback_deadline)
        report.path, report.broker_error = flattening.path, flattening.broker_error
        report.notes.extend(flattening.notes)
        report.market_open = flattening.clock.is_open if flattening.clock else None
        _account_figures(report, flattening.account)
        report.symbols = _record(db, report, flattening)
        if report.market_open is False and any(s.state == "closing" for s in report.symbols):
            report.notes.append(MARKET_CLOSED_NOTE)
        for s in report.symbols:
            if s.state == "failed" and s.cancelled_orders:
                report.notes.append(f"{s.symbol} is still open at Alpaca and its bracket orders "
                                    "were cancelled (no stop-loss): run `tradectl halt` again or "
                                    "close it by hand")
    report.broker_requests = getattr(broker, "requests_sent", None)
    _alert(db, smtp, report)
    return report


def _latch(db: Database, reason: str, broker_enabled: bool) -> HaltReport:
    """Stop the cycle and commit before any broker call: from here on `open` refuses."""
    with trading_gate(db), db.transaction() as session:
        cycle = latest_cycle(session)
        already = cycle is not None and cycle.status == "stopped"
        if cycle is None:
            cycle = Cycle(status="active")
            session.add(cycle)
        if not already:
            cycle.status, cycle.stopped_at, cycle.stop_reason = "stopped", utcnow(), reason
        session.flush()
        record_event(session, "emergency_stop",
                     f"emergency stop{' (again)' if already else ''}: {reason}",
                     cycle_id=cycle.id, details={"reason": reason})
        assert cycle.stopped_at is not None
        return HaltReport(cycle.id, cycle.stop_reason or reason, cycle.stopped_at, already,
                          broker_enabled)


def _close_locally(db: Database, report: HaltReport) -> list[SymbolReport]:
    report.notes.append("Alpaca is not configured: nothing was sent to a broker; "
                        "positions were closed in the database only")
    results = []
    with db.transaction() as session:
        for position in live_positions(session):
            _mark_closed_locally(session, position)
            results.append(SymbolReport(position.symbol, "closed_locally", [position.id]))
    return results


def _mark_closed_locally(session: Session, position: Position) -> None:
    position.status, position.closed_at = "closed", utcnow()
    position.close_reason = "emergency_stop"
    record_event(session, "position_closed",
                 f"{position.symbol}: closed locally by the emergency stop (never at a broker)",
                 cycle_id=position.cycle_id, position_id=position.id)


def _record(db: Database, report: HaltReport, state: Flattening) -> list[SymbolReport]:
    orders = _by_id(state.orders or [])
    cancelled = _cancelled_per_symbol(state.orders or [], report.stopped_at)
    results: list[SymbolReport] = []
    events: list[dict[str, Any]] = []  # one insert for all: a large book has an event a position
    with db.transaction() as session:
        tracked: dict[str, list[Position]] = defaultdict(list)
        for position in live_positions(session):
            if position.alpaca_status == "alpaca_disabled":
                _mark_closed_locally(session, position)
                continue
            entry = orders.get(position.alpaca_order_id or "")
            if entry is not None:
                apply_entry_order(position, entry)
            tracked[position.symbol].append(position)
        for symbol in sorted(set(tracked) | set(state.outcomes)):
            result = _record_symbol(events, report, symbol, tracked.get(symbol, []),
                                    state.outcomes.get(symbol), orders, state.broker_error)
            result.cancelled_orders = cancelled.get(symbol, 0)
            results.append(result)
        record_events(session, events)
    return results


def _record_symbol(
    events: list[dict[str, Any]], report: HaltReport, symbol: str, positions: list[Position],
    outcome: SymbolOutcome | None, orders: dict[str, Order], broker_error: str | None,
) -> SymbolReport:
    result = SymbolReport(symbol, "flat", [p.id for p in positions], external=not positions)
    if broker_error is not None and outcome is None:
        result.state, result.error = "failed", broker_error
    elif outcome is not None and not outcome.ok and outcome.http_status != 404:
        result.state, result.error = "failed", outcome.error
    elif outcome is not None and outcome.order is not None:
        close_order = orders.get(outcome.order.id, outcome.order)
        result.close_order_id = close_order.id
        result.state = "closed" if close_order.status == "filled" else "closing"
    for position in positions:
        _record_position(events, report, position, result, orders)
    if result.external and result.close_order_id:
        events.append(event_row(
            "external_closed", f"{symbol}: position not opened by tradectl, closed by the "
            f"emergency stop (order {result.close_order_id})", cycle_id=report.cycle_id))
    return result


def _record_position(
    events: list[dict[str, Any]], report: HaltReport, position: Position, result: SymbolReport,
    orders: dict[str, Order],
) -> None:
    def log(kind: str, message: str) -> None:
        events.append(event_row(
            kind, f"{position.symbol}: {message}", cycle_id=report.cycle_id,
            position_id=position.id, details={"close_order_id": result.close_order_id}))

    if result.state == "failed":
        position.alpaca_error = f"emergency stop: {result.error}"
        log("close_failed", f"close failed, still open at the broker: {result.error}")
    elif position.status in ("pending", "cancelled") and not position.filled_qty:
        # The entry never filled (the stop's cancel_orders has just cancelled it, or will).
        position.status, position.closed_at = "cancelled", position.closed_at or utcnow()
        position.alpaca_status, position.close_reason = "canceled", "emergency_stop"
        result.state = "cancelled"
        log("entry_cancelled", "entry order had not filled: cancelled by the emergency stop")
    elif result.close_order_id is not None:
        position.alpaca_status, position.close_reason = "closed_by_emergency_stop", "emergency_stop"
        position.alpaca_error = None
        apply_exit_order(position, orders.get(result.close_order_id) or _unknown(result))
        log("position_" + position.status, f"{position.status} by the emergency stop")
    elif position.status == "closing" and position.exit_order_id:
        exit_order = orders.get(position.exit_order_id)
        if exit_order is not None and apply_exit_order(position, exit_order):
            log("position_closed", "emergency close order filled")
        result.state, result.close_order_id = position.status, position.exit_order_id
    else:  # tracked as holding shares, but the broker has no position in the symbol
        result.state = "missing"
        position.alpaca_error = "emergency stop: Alpaca holds no position in this symbol"
        log("position_missing", "tracked as open but Alpaca holds no position; check it")


def _unknown(result: SymbolReport) -> Order:
    assert result.close_order_id is not None
    return Order(id=result.close_order_id, client_order_id="", symbol=result.symbol, side="",
                 type="market", status="accepted", qty=None, filled_qty=Decimal(0),
                 filled_avg_price=None)


def _by_id(orders: list[Order]) -> dict[str, Order]:
    found: dict[str, Order] = {}
    for order in orders:
        found[order.id] = order
        for leg in order.legs:
            found[leg.id] = leg
    return found


def _cancelled_per_symbol(orders: list[Order], stopped_at: datetime) -> dict[str, int]:
    """Orders (legs included) cancelled since the stop latched, allowing for clock skew."""
    since = stopped_at - timedelta(seconds=5)
    counts: dict[str, int] = defaultdict(int)
    for order in _by_id(orders).values():
        if order.status == "canceled" and order.canceled_at and order.canceled_at >= since:
            counts[order.symbol] += 1
    return counts


def _account_figures(report: HaltReport, account: Account | None) -> None:
    if account is not None:
        report.equity, report.day_pnl = account.equity, account.day_pnl


def _alert(db: Database, smtp: SmtpSettings, report: HaltReport) -> None:
    with db.transaction() as session:
        alert = queue_alert(session, smtp, "emergency_stop", alert_subject(report),
                            alert_body(report), cycle_id=report.cycle_id)
    if alert is None:
        report.alert = "not configured (set SMTP_HOST and ALERT_EMAIL_TO)"
        return
    delivery = deliver_pending(db, smtp)
    report.alert = "sent" if delivery.last_error is None else (
        f"queued, not sent ({delivery.last_error}); retried by watch, halt or resume")


def alert_subject(report: HaltReport) -> str:
    failed = sum(1 for s in report.symbols if s.failed)
    outcome = f"{failed} FAILED" if failed or report.broker_error else "all closed or closing"
    return f"EMERGENCY STOP - trading halted: {outcome}"


def alert_body(report: HaltReport) -> str:
    lines = [
        f"tradectl emergency stop at {report.stopped_at:%Y-%m-%d %H:%M:%S} UTC",
        f"Reason: {report.reason}",
        f"Cycle: {report.cycle_id} (new entries refused until `tradectl resume`)",
        "",
    ]
    if report.broker_error:
        lines.append(f"BROKER UNREACHABLE: {report.broker_error}")
    for s in report.symbols:
        detail = s.error or (f"close order {s.close_order_id}" if s.close_order_id else "")
        who = " (not opened by tradectl)" if s.external else ""
        lines.append(f"  {s.symbol:<8} {s.state:<14} {detail}{who}".rstrip())
    if not report.symbols:
        lines.append("  no open positions")
    lines.append("")
    if report.equity is not None:
        lines.append(f"Equity: ${report.equity:,.2f}   Day P&L: ${report.day_pnl:,.2f}")
    lines.extend(report.notes)
    return "\n".join(lines) + "\n"
