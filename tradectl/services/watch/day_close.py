"""FLATTEN_BEFORE_CLOSE: `watch` exits the day trades before Alpaca's close.

Inside the window (domain/day_rules.flatten_before_close, on Alpaca's clock read beside the
tick's other reads), each live position tradectl opened with a `day` time in force is closed by
`close`'s own use case (services/position/close_position.py: under the position's exit lock,
planned on a fresh read, written ahead with close_reason `flatten_before_close`, its exits
cancelled, closed at market, the answer recorded). A `--gtc` position is a swing trade: kept,
with its stop. A close that fails leaves the row as the close left it (flagged, and
UNPROTECTED if its exits were cancelled) and is tried again next tick; a row already closing
is not sent again. One alert per flatten (not per position): a tick that sent closes queues
one, listing them; a failure is alerted once per position and close, however many ticks retry.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tradectl.broker import Broker
from tradectl.broker import Clock as MarketClock
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import Clock
from tradectl.domain.day_rules import FLATTEN_RULE, DayLimits, RuleVerdict
from tradectl.errors import BrokerError, RefusedError
from tradectl.notify import Channels
from tradectl.services.alerts import queue_alert
from tradectl.services.day_rules import day_rule_verdicts
from tradectl.services.position.close_plan import ClosePlan, plan_located
from tradectl.services.position.close_position import execute_close
from tradectl.services.position.interrupted_close import exit_lock
from tradectl.services.position.market_close import ExitOutcome
from tradectl.services.row_views import position_view
from tradectl.services.watch.tick_report import BrokerState, TickReport
from tradectl.views import PositionView

SENT = ("closed", "closing", "cancelled", "cancelling", "unknown")  # a close went out
RUNNING = "another close of it is running"


@dataclass(frozen=True)
class FlattenReport:
    changes: tuple[str, ...] = ()
    error: str | None = None  # closes that failed this tick, tried again next tick
    touched: frozenset[int] = frozenset()  # the rows a close was tried for


def day_trades(rows: list[Position]) -> list[Position]:
    """The live rows a flatten exits: sent to Alpaca, opened `day` (not `--gtc`), not already
    closing."""
    return [r for r in rows if r.status in ("pending", "open") and r.time_in_force == "day"
            and r.alpaca_status != "alpaca_disabled"]


def flatten_day_trades(db: Database, broker: Broker, channel: Channels | None,
                       verdict: RuleVerdict, *, clock: Clock) -> FlattenReport:
    """Close every day trade, one by one through `close`'s use case; one alert for the lot."""
    with db.read() as journal:
        targets = [_located(r, journal.orders_window_start()) for r in
                   day_trades(journal.live_positions())]
    if not targets:
        return FlattenReport()
    outcomes = [_flatten_one(db, broker, channel, located, clock) for located in targets]
    changes = tuple(_change(plan, outcome, why) for plan, outcome, why in outcomes)
    sent = [p.position_id for p, outcome, _ in outcomes
            if outcome is not None and outcome.state in SENT]
    failed = {p.position_id: c for (p, outcome, why), c in zip(outcomes, changes, strict=True)
              if (why is not None and why != RUNNING) or (outcome is not None and outcome.failed)}
    if sent or failed:
        _record(db, channel, verdict, changes, sent, sorted(failed))
    return FlattenReport(changes, "; ".join(failed.values()) if failed else None,
                         frozenset(plan.position_id for plan in targets))


def _located(row: Position, since: datetime) -> ClosePlan:
    """`close`'s located plan for the row, still to be decided on a fresh read."""
    return ClosePlan(row.id, row.symbol, row.side, row.status, "none", since, row.stop_loss,
                     row.take_profit, "active")


def _flatten_one(db: Database, broker: Broker, channel: Channels | None, located: ClosePlan,
                 clock: Clock) -> tuple[ClosePlan, ExitOutcome | None, str | None]:
    """(the plan, the close's outcome, or why nothing was sent)."""
    with exit_lock(db, located.position_id, wait=0) as lock:
        if not lock:  # a `close` of it is running: its own answer settles it
            return located, None, RUNNING
        try:
            plan = plan_located(db, broker, located, lock_held=True, clock=clock)
            return plan, execute_close(db, broker, channel, plan, clock=clock,
                                       reason=FLATTEN_RULE), None
        except (RefusedError, BrokerError) as err:
            return located, None, err.message


def _change(plan: ClosePlan, outcome: ExitOutcome | None, why: str | None) -> str:
    name = f"{plan.symbol} #{plan.position_id}"
    if outcome is None:
        return f"{name}: not flattened: {why}"
    return f"{name}: flattened before the close: " + {
        "closed": f"closed at market (order {outcome.close_order_id})",
        "closing": f"close order {outcome.close_order_id} working",
        "cancelled": "its unfilled entry cancelled",
        "cancelling": "its entry's cancel is pending",
        "already_closing": "a close is already working",
        "unknown": f"close sent, outcome unknown: {outcome.error}",
    }.get(outcome.state, f"{outcome.state}" + (f": {outcome.error}" if outcome.error else ""))


def _record(db: Database, channel: Channels | None, verdict: RuleVerdict,
            changes: tuple[str, ...], sent: list[int], failed: list[int]) -> None:
    """The flatten's event, and its one alert: for closes sent, or for a failure not yet
    alerted before this close (a retry that fails again each tick alerts once)."""
    subject = ("FLATTEN BEFORE CLOSE FAILED for some day trades" if failed
               else "Flattened the day trades before the close")
    body = (f"{verdict.message}.\n\n" + "\n".join(changes) + "\n\n"
            "Positions opened with --gtc are kept with their protection."
            + ("\nWhat failed is tried again at the next watch tick; `tradectl close SYMBOL` "
               "exits it now.\n" if failed else "\n"))
    close = verdict.figures["next_close"]  # a tripped flatten always has Alpaca's close
    since = datetime.fromisoformat(close) - timedelta(days=1)
    with db.transaction() as journal:
        alerted = {i for d in journal.event_details(FLATTEN_RULE, since=since)
                   if d and d.get("next_close") == close for i in d.get("failed", ())}
        journal.record(FLATTEN_RULE, f"{subject}: " + "; ".join(changes),
                       details={**verdict.figures, "flattened": sent, "failed": failed})
        if sent or set(failed) - alerted:
            queue_alert(journal, channel, FLATTEN_RULE, subject, body)
        journal.commit()


# -- the tick's side: the verdicts, the clock read, the views after a flatten ---------------

def day_rules_step(db: Database, broker: Broker | None, channel: Channels | None,
                   day: DayLimits, report: TickReport, state: BrokerState | None, *,
                   act: bool, clock: Clock) -> TickReport:
    """The tick's day rules; FLATTEN_BEFORE_CLOSE tripped: the watch that drives stops (`act`)
    exits the day trades, unless trading is stopped (the stop closed everything)."""
    report = replace(report, rules=(*report.rules,
                                    *day_rule_verdicts_for_tick(db, day, report, state)))
    flatten = next((v for v in report.rules if v.rule == FLATTEN_RULE), None)
    if flatten is None or flatten.passed or state is None or broker is None or not act \
            or report.cycle_status == "stopped":
        return report
    found = flatten_day_trades(db, broker, channel, flatten, clock=clock)
    if not found.changes:
        return report
    return replace(report, changes=report.changes + found.changes,
                   positions=refreshed(db, report.positions, found.touched),
                   protection_error=report.protection_error or found.error)


def day_rule_verdicts_for_tick(db: Database, day: DayLimits, report: TickReport,
                               state: BrokerState | None) -> list[RuleVerdict]:
    """The day rules on the tick's reads, as `status` judges them."""
    account = state.account if state is not None else None
    with db.read() as journal:
        return day_rule_verdicts(journal, day, now=report.at, account=account,
                                 clock=state.market_clock if state is not None else None,
                                 day_pnl=account.day_pnl if account is not None else None)


def market_clock(read: Future[MarketClock] | None) -> MarketClock | None:
    """Alpaca's clock read beside the tick's others; a failed read leaves the rules judged on
    it unknown this tick rather than failing the tick."""
    if read is None:
        return None
    try:
        return read.result()
    except BrokerError:
        return None


def refreshed(db: Database, views: tuple[PositionView, ...],
              touched: frozenset[int]) -> tuple[PositionView, ...]:
    """The tick's views, the rows a flatten acted on read again (with the tick's prices)."""
    with db.read() as journal:
        fresh = {row.id: position_view(row) for row in journal.positions_by_id(touched)}
    return tuple(replace(fresh[v.id], last_price=v.last_price, unrealized_pl=v.unrealized_pl)
                 if v.id in fresh else v for v in views)
