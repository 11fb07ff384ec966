"""`open --dry-run`: the open up to the order's submit. The pre-trade reads and the quote are the
real command's own; the rules are judged by the same `judge_open` on a read-only view of the
database; the order is described by the broker adapter exactly as it would be POSTed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tradectl.broker import Broker, BrokerRequest
from tradectl.db.session import Database
from tradectl.domain.bracket import RiskSizing
from tradectl.domain.money import Money, Price
from tradectl.domain.pre_trade import RiskLimits
from tradectl.errors import ExitCode
from tradectl.services.dry_run import CLIENT_ORDER_ID_PLACEHOLDER, DryRun
from tradectl.services.open_position import OpenQuote, judge_open
from tradectl.services.reconcile import outcome_unknown


@dataclass(frozen=True)
class OpenPlan:
    """The bracket that would go out, the figures the rules judged, and where they came from."""

    symbol: str
    side: str
    qty: int
    entry: Price | None  # None: at market
    stop: Price
    target: Price
    time_in_force: str
    base_price: Price | None
    base_source: str  # "--entry", "the last trade", or why there is none
    notional: Money
    risk: Money
    sizing: RiskSizing | None
    equity: Money | None
    buying_power: Money | None
    day_pnl: Money | None
    broker_positions: int | None  # positions the broker holds; None without a broker
    cycle_id: int | None
    cycle_status: str  # active | stopped | none (the first open starts one)


def preview_open(db: Database, broker: Broker | None, limits: RiskLimits, quote: OpenQuote, *,
                 trading_mode: str) -> DryRun[OpenPlan]:
    """Nothing is written (a read transaction) and nothing is sent."""
    with db.read() as journal:
        cycle = journal.latest_cycle()
        checks, refusal = judge_open(journal, cycle, quote, limits,
                                     broker_backed=broker is not None)
        unknown = sorted({p.symbol for p in journal.live_positions() if outcome_unknown(p)})
        cycle_id, cycle_status = (cycle.id, cycle.status) if cycle else (None, "none")
    spec, account = quote.spec, quote.account
    notes = []
    requests: tuple[BrokerRequest, ...] = ()
    if broker is None:
        notes.append("Alpaca is not configured: no order would be sent; the position would be "
                     "recorded locally")
    else:
        requests = (broker.bracket_order_request(
            replace(spec, client_order_id=CLIENT_ORDER_ID_PLACEHOLDER)),)
    if unknown and broker is not None:
        notes.append(f"orders of unknown outcome ({', '.join(unknown)}): the real open first "
                     "settles them from Alpaca's orders, which may lift their symbol's refusal")
    base_source = ("--entry" if spec.entry is not None else "the last trade"
                   if quote.base_price is not None else "none: no broker to read the last "
                   "trade (the worst case the bracket allows is assumed)")
    plan = OpenPlan(
        spec.symbol, spec.side, spec.qty, spec.entry, spec.stop, spec.target,
        spec.time_in_force, quote.base_price, base_source, quote.notional, quote.risk,
        quote.sizing, account.equity if account else None,
        account.buying_power if account else None, account.day_pnl if account else None,
        len(quote.positions) if account else None, cycle_id, cycle_status)
    return DryRun("open", trading_mode, plan, tuple(checks), requests,
                  refusal=refusal.message if refusal else None, notes=tuple(notes),
                  exit_code=refusal.exit_code if refusal else ExitCode.OK)
