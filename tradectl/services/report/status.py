"""`status`: where trading stands, on one screen. The journal (cycle, positions, pending alerts)
comes first; the broker's account, positions and prices are added when keys are set, and a
broker failure degrades the view to the journal instead of failing it. Rows whose order outcome
is unknown are settled from Alpaca's orders first (one more read, only when there are some); so
is a close killed midway (services/position/interrupted_close.py): recorded, or the row open
again and UNPROTECTED with its one alert, sent here. `status` sends no order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradectl.broker import Account, Broker, BrokerPosition, Order
from tradectl.broker import Clock as MarketClock
from tradectl.db.session import Database
from tradectl.domain.calendar import trading_day_start
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.day_rules import DayLimits, RuleVerdict
from tradectl.domain.limits import Limit
from tradectl.domain.loss_limit import applicable_baseline
from tradectl.errors import BrokerError, DatabaseError
from tradectl.notify import Channels
from tradectl.services.alerts import deliver_pending
from tradectl.services.day_rules import day_rule_verdicts
from tradectl.services.position.interrupted_close import (
    INTERRUPTED,
    WHO_REPROTECTS,
    interrupted_closes,
    settle_for_status,
)
from tradectl.services.protection import (
    RESTORE,
    UNPROTECTED,
    Verdict,
    account_shares,
    protection_verdict,
)
from tradectl.services.row_views import alert_view, cycle_view, position_view
from tradectl.services.watch.drawdown import drawdown_status
from tradectl.services.watch.holdings import split_holdings
from tradectl.services.watch.reconcile import OrderBook, outcome_unknown, settle_unknown_orders
from tradectl.views import (
    AlertView,
    CycleView,
    ExternalPositionView,
    PositionView,
    overlaid,
)

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
    external: tuple[ExternalPositionView, ...] = ()  # held at the broker, not opened by tradectl
    loss_baseline: Decimal | None = None  # a forced resume's day P&L, while it applies
    rules: tuple[RuleVerdict, ...] = ()  # each configured day rule, as `open` would judge it

    @property
    def trading_stopped(self) -> bool:
        return self.cycle is not None and self.cycle.status == "stopped"


def trading_status(
    db: Database, broker: Broker | None, *, mode: str, channel: Channels | None = None,
    clock: Clock = SYSTEM_CLOCK, day: DayLimits | None = None, drawdown: Limit | None = None,
) -> StatusReport:
    """`channel`: where the alert for a close killed midway goes (sent within the usual
    delivery wait; what is not sent stays pending for watch, halt or resume). `day`: the day's
    entry rules, shown with their state; `drawdown`: MAX_DRAWDOWN_FROM_PEAK, after them."""
    report = _status(db, broker, mode=mode, channel=channel, clock=clock, day=day)
    if drawdown is None:
        return report
    verdict = drawdown_status(db, drawdown, report.account, clock.now())
    return replace(report, rules=(*report.rules, verdict))


def _status(db: Database, broker: Broker | None, *, mode: str, channel: Channels | None,
            clock: Clock, day: DayLimits | None) -> StatusReport:
    now, day = clock.now(), day or DayLimits()
    report, unknown, since = _journal(db, mode, now, broker is not None)
    if broker is None:
        return _with_rules(db, report, day, now, None, None)
    # One orders read: for rows whose order outcome is unknown, and for what protects the rest.
    needs_orders = unknown or any(p.is_live and not p.local_only for p in report.positions)
    try:
        account, held, orders, market_clock = _read_broker(
            broker, since if needs_orders else None, day.needs_market_clock)
    except BrokerError as err:
        reason = err.message + (f"; {err.hint}" if err.hint else "")
        return _with_rules(db, replace(report, broker_error=reason), day, now, None, None)
    if orders is not None and settle_unknown_orders(db, orders, now):
        report, _, _ = _journal(db, mode, now, True)
    if orders is not None and _settle_interrupted(db, broker, channel, report, orders, clock):
        report, _, _ = _journal(db, mode, now, True)
    if orders is not None:
        report = replace(report, positions=_protection(report, orders, held, now))
        report = replace(report, positions=interrupted_closes(db, report.positions, orders))
    positions, external = split_holdings(report.positions, held)
    report = replace(report, account=account, positions=positions,
                     warnings=_not_held(report.positions, held), external=external)
    return _with_rules(db, report, day, now, account, market_clock)


def _with_rules(db: Database, report: StatusReport, day: DayLimits, now: datetime,
                account: Account | None, market_clock: MarketClock | None) -> StatusReport:
    """The day's rules on the account's day P&L (the day's realized P&L without it)."""
    if not day.any:
        return report
    day_pnl = account.day_pnl if account is not None else report.realized_pl_today
    with db.read() as journal:
        rules = day_rule_verdicts(journal, day, now=now, account=account,
                                  clock=market_clock, day_pnl=day_pnl)
    return replace(report, rules=tuple(rules))


def _settle_interrupted(db: Database, broker: Broker, channel: Channels | None,
                        report: StatusReport, orders: list[Order], clock: Clock) -> bool:
    """Closes killed midway settled, their alerts sent; True when something changed. A
    database fault leaves them as they were (shown UNPROTECTED all the same)."""
    try:
        if not settle_for_status(db, broker, channel, report.positions, orders, clock.now()):
            return False
        deliver_pending(db, channel, clock=clock)
    except DatabaseError:
        return False
    return True


def _journal(db: Database, mode: str, now: datetime,
             broker: bool) -> tuple[StatusReport, bool, datetime]:
    with db.read() as journal:  # the journal first, then the broker with no transaction open
        cycle = journal.latest_cycle()
        live = journal.live_positions()
        rows = [*live, *journal.finished_positions(RECENT_POSITIONS)]
        report = StatusReport(
            mode=mode,
            cycle=cycle_view(cycle) if cycle is not None else None,
            positions=tuple(position_view(p) for p in rows),
            realized_pl_today=journal.realized_pl_since(trading_day_start(now)),
            alerts=tuple(alert_view(a) for a in journal.pending_alerts()),
            broker_configured=broker,
            loss_baseline=applicable_baseline(cycle.loss_baseline, cycle.baseline_at, now)
            if cycle is not None else None,
        )
        return report, any(outcome_unknown(p) for p in live), journal.orders_window_start()


def _protection(report: StatusReport, orders: list[Order], held: list[BrokerPosition],
                now: datetime) -> tuple[PositionView, ...]:
    """Each live position with what protects it at Alpaca (services/protection.py): shown
    only, nothing restored here."""
    book, market = OrderBook.of(orders), {p.symbol: p for p in held}
    blocked = "trading is stopped: nothing is restored" if report.trading_stopped else None
    views = []
    for view in report.positions:
        if not view.is_live or view.local_only:
            views.append(view)
            continue
        holding = market.get(view.symbol)
        verdict = protection_verdict(
            view, book, last_trade=holding.current_price if holding else None,
            broker_holds=holding is not None, restore_blocked=blocked, now=now,
            account_qty=account_shares(holding, view.side))
        views.append(overlaid(view, _interrupted(view, verdict, verdict.view_fields())))
    return tuple(views)


def _interrupted(view: PositionView, verdict: Verdict, fields: dict[str, Any]
                 ) -> dict[str, Any]:
    """A row open again after a close killed midway, not re-protected yet, says so."""
    if verdict.state == UNPROTECTED and view.protection_error == INTERRUPTED:
        fields["protection_error"] = INTERRUPTED + (
            WHO_REPROTECTS if verdict.action == RESTORE else f"; {verdict.reason}")
    return fields


def _read_broker(broker: Broker, orders_since: datetime | None, market_clock: bool
                 ) -> tuple[Account, list[BrokerPosition], list[Order] | None,
                            MarketClock | None]:
    """The account and the positions side by side, the orders too when rows need them, and
    Alpaca's clock when the entry cutoff is set."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="status") as pool:
        account = pool.submit(broker.account)
        held = pool.submit(broker.list_positions)
        orders = (pool.submit(broker.list_orders, status="all", after=orders_since)
                  if orders_since is not None else None)
        clock = pool.submit(broker.clock) if market_clock else None
        return (account.result(), held.result(), orders.result() if orders else None,
                clock.result() if clock else None)


def _not_held(positions: tuple[PositionView, ...], held: list[BrokerPosition]
              ) -> tuple[str, ...]:
    """A warning per filled position the journal holds and Alpaca does not (`watch` settles
    it once none of its own orders is working)."""
    symbols = {p.symbol for p in held}
    return tuple(f"#{v.id} {v.symbol}: {v.status} in the journal but Alpaca holds no "
                 f"{v.symbol} position" for v in positions
                 if v.status in ("open", "closing") and v.filled_qty and not v.local_only
                 and v.alpaca_order_id is not None and v.symbol not in symbols)
