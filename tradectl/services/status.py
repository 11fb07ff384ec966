"""`status`: where trading stands, on one screen. The journal (cycle, positions, pending alerts)
comes first; the broker's account and prices are added when keys are set, and a broker failure
degrades the view to the journal instead of failing it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradectl.broker import Account, Broker, BrokerPosition
from tradectl.db.models import LIVE_POSITION_STATUSES, Alert, Cycle, Position, utcnow
from tradectl.db.session import Database
from tradectl.errors import BrokerError
from tradectl.services.journal import (
    latest_cycle,
    live_positions,
    position_view,
    realized_pl_since,
    trading_day_start,
)

RECENT_POSITIONS = 10  # finished positions shown below the live ones
CENT = Decimal("0.01")


@dataclass(frozen=True)
class StatusReport:
    mode: str
    cycle: dict[str, Any] | None  # None: nothing traded yet, trading allowed
    positions: list[dict[str, Any]]  # live first (oldest first), then recent (newest first)
    realized_pl_today: Decimal
    alerts: list[dict[str, Any]]
    broker_configured: bool
    account: Account | None = None
    broker_error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def trading_stopped(self) -> bool:
        return self.cycle is not None and self.cycle["status"] == "stopped"


def trading_status(
    db: Database, broker: Broker | None, *, mode: str, now: datetime | None = None
) -> StatusReport:
    now = now or utcnow()
    with db.transaction() as session:  # journal first, then the broker outside the transaction
        cycle = latest_cycle(session)
        finished = session.scalars(
            select(Position)
            .where(Position.status.not_in(LIVE_POSITION_STATUSES))
            .order_by(Position.id.desc())
            .limit(RECENT_POSITIONS)
        )
        positions = [_with_pl(position_view(p)) for p in [*live_positions(session), *finished]]
        realized = realized_pl_since(session, trading_day_start(now))
        alerts = pending_alerts(session)
    report = StatusReport(
        mode=mode,
        cycle=_cycle_view(cycle) if cycle is not None else None,
        positions=positions,
        realized_pl_today=realized,
        alerts=alerts,
        broker_configured=broker is not None,
    )
    if broker is None:
        return report
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="status") as pool:
            account_f, held_f = pool.submit(broker.account), pool.submit(broker.list_positions)
            account, held = account_f.result(), held_f.result()
    except BrokerError as err:
        reason = err.message + (f"; {err.hint}" if err.hint else "")
        return replace(report, broker_error=reason)
    return replace(report, account=account, warnings=_mark_to_market(positions, held))


def pending_alerts(session: Session) -> list[dict[str, Any]]:
    """Alerts still waiting in the outbox, oldest first."""
    alerts = session.scalars(select(Alert).where(Alert.status == "pending").order_by(Alert.id))
    return [{"id": a.id, "created_at": a.created_at, "subject": a.subject, "status": a.status,
             "attempts": a.attempts, "last_error": a.last_error} for a in alerts]


def _cycle_view(cycle: Cycle) -> dict[str, Any]:
    return {
        "id": cycle.id,
        "status": cycle.status,
        "started_at": cycle.started_at,
        "stopped_at": cycle.stopped_at,
        "stop_reason": cycle.stop_reason,
    }


def _with_pl(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "current_price": None, "unrealized_pl": None}


def _mark_to_market(positions: list[dict[str, Any]], held: list[BrokerPosition]) -> list[str]:
    """Unrealized P&L of each filled live position at Alpaca's current price (Alpaca nets one
    position per symbol; the journal may hold several brackets on it, so each is priced on its
    own fill). Returns a warning per position the journal holds and Alpaca does not."""
    prices = {p.symbol: p.current_price for p in held}
    warnings = []
    for view in positions:
        filled, average = view["filled_qty"], view["filled_avg_price"]
        if view["status"] not in ("open", "closing") or not filled or average is None:
            continue
        if view["symbol"] not in prices:
            if view["alpaca_order_id"] is not None:
                warnings.append(f"#{view['id']} {view['symbol']}: {view['status']} in the "
                                f"journal but Alpaca holds no {view['symbol']} position")
            continue
        price = prices[view["symbol"]]
        if price is None:
            continue
        sign = Decimal(1) if view["side"] == "buy" else Decimal(-1)
        view["current_price"] = price
        view["unrealized_pl"] = ((price - average) * filled * sign).quantize(CENT)
    return warnings
