"""`status`: where trading stands, on one screen. The journal (cycle, positions, pending alerts)
comes first; the broker's account and prices are added when keys are set, and a broker failure
degrades the view to the journal instead of failing it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Account, Broker, BrokerPosition
from tradectl.db.journal import cycle_view, position_view
from tradectl.db.models import utcnow
from tradectl.db.session import Database
from tradectl.errors import BrokerError
from tradectl.market import trading_day_start
from tradectl.risk import CENT, position_pnl
from tradectl.views import AlertView, CycleView, PositionView

RECENT_POSITIONS = 10  # finished positions shown below the live ones


@dataclass(frozen=True)
class StatusReport:
    mode: str
    cycle: CycleView | None  # None: nothing traded yet, trading allowed
    positions: tuple[PositionView, ...]  # live first (oldest first), then recent (newest first)
    realized_pl_today: Decimal
    alerts: tuple[AlertView, ...]
    broker_configured: bool
    account: Account | None = None
    broker_error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def trading_stopped(self) -> bool:
        return self.cycle is not None and self.cycle.status == "stopped"


def trading_status(
    db: Database, broker: Broker | None, *, mode: str, now: datetime | None = None
) -> StatusReport:
    now = now or utcnow()
    with db.read() as journal:  # the journal first, then the broker with no transaction open
        cycle = journal.latest_cycle()
        rows = [*journal.live_positions(), *journal.finished_positions(RECENT_POSITIONS)]
        report = StatusReport(
            mode=mode,
            cycle=cycle_view(cycle) if cycle is not None else None,
            positions=tuple(position_view(p) for p in rows),
            realized_pl_today=journal.realized_pl_since(trading_day_start(now)),
            alerts=tuple(journal.pending_alerts()),
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
    positions, warnings = _mark_to_market(report.positions, held)
    return replace(report, account=account, positions=positions, warnings=warnings)


def _mark_to_market(positions: tuple[PositionView, ...], held: list[BrokerPosition]
                    ) -> tuple[tuple[PositionView, ...], tuple[str, ...]]:
    """Unrealized P&L of each filled live position at Alpaca's current price (Alpaca nets one
    position per symbol; the journal may hold several brackets on it, so each is priced on its
    own fill), and a warning per position the journal holds and Alpaca does not."""
    prices = {p.symbol: p.current_price for p in held}
    marked, warnings = [], []
    for view in positions:
        filled, average = view.filled_qty, view.filled_avg_price
        if view.status not in ("open", "closing") or not filled or average is None:
            marked.append(view)
            continue
        if view.symbol not in prices:
            if view.alpaca_order_id is not None:
                warnings.append(f"#{view.id} {view.symbol}: {view.status} in the journal but "
                                f"Alpaca holds no {view.symbol} position")
            marked.append(view)
            continue
        price = prices[view.symbol]
        marked.append(view if price is None else replace(
            view, last_price=price,
            unrealized_pl=position_pnl(view.side, average, price, filled).quantize(CENT)))
    return tuple(marked), tuple(warnings)
