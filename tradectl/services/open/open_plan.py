"""`open`'s plan: the pre-trade reads waited for (`quote_open`), then every risk rule judged on a
read of the database (`plan_open`). The plan holds the exact bracket POST (its client_order_id
made here), the rules' verdicts and the row it writes ahead; `open_position.execute_open` sends
and records exactly that, and `open --dry-run` shows it (`open_dry_run`) and sends nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Account, BracketRequest, Broker, BrokerPosition, BrokerRequest
from tradectl.broker import Clock as MarketClock
from tradectl.db.journal import Journal
from tradectl.db.models import Cycle
from tradectl.db.session import Database
from tradectl.domain.bracket import RiskSizing, check_bracket_against_base, size_by_risk
from tradectl.domain.calendar import trading_day_start
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.limits import Limit, limit_dollars, limit_text
from tradectl.domain.loss_limit import applicable_baseline
from tradectl.domain.money import price_text
from tradectl.domain.pre_trade import (
    BookState,
    RiskLimits,
    RuleCheck,
    pre_trade_checks,
    trade_exposure,
)
from tradectl.errors import BrokerError, CycleStoppedError, ExitCode, InputError, RefusedError
from tradectl.services.day_rules import day_rule_verdicts, rule_checks
from tradectl.services.dry_run import CLIENT_ORDER_ID_PLACEHOLDER, DryRun, OpenSummary
from tradectl.services.open.pre_trade import PreTradeReads
from tradectl.services.row_views import stopped_message
from tradectl.services.watch.reconcile import outcome_unknown


@dataclass(frozen=True)
class OpenQuote:
    """The order as it would go out, and what the risk checks will see."""

    spec: BracketRequest
    base_price: Decimal | None  # the limit entry, or the last trade for a market entry
    notional: Decimal
    risk: Decimal
    account: Account | None
    positions: tuple[BrokerPosition, ...] = ()
    sizing: RiskSizing | None = None  # `--risk`: how the quantity was found
    clock: MarketClock | None = None  # Alpaca's market clock, when a day rule needs it


@dataclass(frozen=True)
class OpenPlan:
    """What `open` will do, decided on one read of the database: POST `bracket` (`request`,
    None without a broker: the row is recorded locally), after writing ahead the pending row
    made from it and the `created` event; or nothing, when a rule refuses (`refusal`)."""

    quote: OpenQuote
    bracket: BracketRequest  # with the client_order_id the row is written ahead with
    request: BrokerRequest | None
    checks: tuple[RuleCheck, ...]
    refusal: RefusedError | None
    created: str  # the `position_created` event's message
    cycle_id: int | None
    cycle_status: str  # active | stopped | none (the first open starts one)
    unknown_symbols: tuple[str, ...] = ()  # rows whose order outcome is not known yet


def quote_open(db: Database | None, reads: PreTradeReads,
               risk_budget: Limit | None = None) -> OpenQuote:
    """Wait for the pre-trade reads and check the bracket against the market. With a
    `risk_budget` (`open --risk`: dollars, or a percentage of the equity read now) the quantity
    is sized from the price now known. A failed read is logged unless `db` is None (a dry run
    writes nothing)."""
    spec = reads.spec
    try:
        facts = reads.facts()
    except BrokerError as err:
        if db is not None:
            with db.transaction() as journal:  # nothing was sent; say why nothing was
                journal.record("broker_error", f"{spec.symbol}: pre-trade checks could not "
                               f"read Alpaca: {err.message}",
                               details={"http_status": err.status, **spec_details(spec)})
                journal.commit()
        raise
    if spec.entry is None and facts.base_price is not None:
        check_bracket_against_base(spec, facts.base_price, base_name="the last trade")
    sizing = None
    if risk_budget is not None:
        if facts.base_price is None:
            raise InputError("--risk needs a price to size the trade: pass --entry, or set "
                             "the Alpaca keys so that the last trade can be read")
        budget = limit_dollars(risk_budget,
                               facts.account.equity if facts.account is not None else None)
        if budget is None:
            raise InputError(f"--risk {limit_text(risk_budget)} is a share of the account's "
                             "equity: set the Alpaca keys, or pass dollars")
        sizing = size_by_risk(budget, facts.base_price, spec.stop)
        spec = replace(spec, qty=sizing.qty)
    notional, risk = trade_exposure(spec, facts.base_price)
    return OpenQuote(spec, facts.base_price, notional, risk, facts.account, facts.positions,
                     sizing, facts.clock)


def plan_open(db: Database, broker: Broker | None, limits: RiskLimits,
              quote: OpenQuote, *, clock: Clock = SYSTEM_CLOCK) -> OpenPlan:
    """Reads only (one read transaction); nothing is sent."""
    with db.read() as journal:
        cycle = journal.latest_cycle()
        checks, refusal = judge_open(journal, cycle, quote, limits,
                                     broker_backed=broker is not None, now=clock.now())
        unknown = sorted({p.symbol for p in journal.live_positions() if outcome_unknown(p)})
        cycle_id, cycle_status = (cycle.id, cycle.status) if cycle else (None, "none")
    bracket = replace(quote.spec, client_order_id=f"tradectl-{uuid.uuid4().hex}")
    request = broker.bracket_order_request(bracket) if broker is not None else None
    return OpenPlan(quote, bracket, request, tuple(checks), refusal, created_message(bracket),
                    cycle_id, cycle_status, tuple(unknown))


def judge_open(journal: Journal, cycle: Cycle | None, quote: OpenQuote, limits: RiskLimits, *,
               broker_backed: bool,
               now: datetime) -> tuple[list[RuleCheck], RefusedError | None]:
    """Every rule's verdict on the quote (the stopped cycle first), and the refusal the first
    failed rule makes, if any. Reads only: the plan judges, and the write-ahead judges again
    under the trading gate."""
    book = _book(journal, cycle, quote, broker_backed, now)
    checks = pre_trade_checks(quote.spec, quote.base_price, book, limits,
                              quote.sizing.budget if quote.sizing else None)
    checks += rule_checks(day_rule_verdicts(journal, limits.day, now=now,
                                            account=quote.account, clock=quote.clock,
                                            day_pnl=book.day_pnl))
    if cycle is not None and cycle.status != "active":
        message = stopped_message(cycle)
        return ([RuleCheck("cycle_stopped", False, message, {"cycle_id": str(cycle.id)}),
                 *checks],
                CycleStoppedError(message, rule="cycle_stopped",
                                  figures={"cycle_id": str(cycle.id)},
                                  hint="`tradectl resume --reason ...`"))
    state = f"cycle {cycle.id} is active" if cycle else "no cycle yet: the first one starts now"
    checks.insert(0, RuleCheck("cycle_stopped", True, state,
                               {"cycle_id": str(cycle.id)} if cycle else {}))
    failed = next((c for c in checks if not c.passed), None)
    if failed is None:
        return checks, None
    return checks, RefusedError(f"refused by {failed.rule}: {failed.message}", rule=failed.rule,
                                figures=failed.figures)


def _book(journal: Journal, cycle: Cycle | None, quote: OpenQuote,
          broker_backed: bool, now: datetime) -> BookState:
    """A broker-backed open counts the rows sent to a broker and the broker's own positions;
    an open without keys counts the rows recorded locally."""
    live = [p for p in journal.live_positions()
            if (p.alpaca_status != "alpaca_disabled") == broker_backed]
    account = quote.account
    if account is not None:
        day_pnl: Decimal | None = account.day_pnl
    else:  # no broker: the day's realized P&L from our own records is all we know
        day_pnl = journal.realized_pl_since(trading_day_start(now))
    tracked = {p.symbol for p in live}
    return BookState(
        open_symbols=frozenset(p.symbol for p in live if not outcome_unknown(p)),
        open_count=len(live),
        day_pnl=day_pnl,
        buying_power=account.buying_power if account is not None else None,
        unknown_symbols=frozenset(p.symbol for p in live if outcome_unknown(p)),
        untracked=tuple((p.symbol, abs(p.qty)) for p in quote.positions
                        if p.symbol not in tracked),
        loss_baseline=applicable_baseline(cycle.loss_baseline, cycle.baseline_at, now)
        if cycle is not None else None,
        day_start_equity=account.last_equity if account is not None else None,
    )


def created_message(spec: BracketRequest) -> str:
    entry = f"limit {price_text(spec.entry)}" if spec.entry is not None else "at market"
    return (f"{spec.side} {spec.qty} {spec.symbol} {entry}, stop {price_text(spec.stop)}, "
            f"target {price_text(spec.target)}")


def spec_details(spec: BracketRequest) -> dict[str, object]:
    return {"symbol": spec.symbol, "side": spec.side, "qty": spec.qty, "stop": spec.stop,
            "target": spec.target, "entry": spec.entry, "time_in_force": spec.time_in_force}


def open_dry_run(plan: OpenPlan, *, trading_mode: str) -> DryRun[OpenSummary]:
    """The plan as `--dry-run` shows it. The client_order_id is shown as a placeholder: a
    real open plans again and makes its own."""
    quote, spec, account = plan.quote, plan.bracket, plan.quote.account
    notes = []
    requests: tuple[BrokerRequest, ...] = ()
    if plan.request is None:
        notes.append("Alpaca is not configured: no order would be sent; the position would be "
                     "recorded locally")
    else:
        body = {**(plan.request.body or {}), "client_order_id": CLIENT_ORDER_ID_PLACEHOLDER}
        requests = (replace(plan.request, body=body),)
        if plan.unknown_symbols:
            notes.append(f"orders of unknown outcome ({', '.join(plan.unknown_symbols)}): the "
                         "real open first settles them from Alpaca's orders, which may lift "
                         "their symbol's refusal")
    base_source = ("--entry" if spec.entry is not None else "the last trade"
                   if quote.base_price is not None else "none: no broker to read the last "
                   "trade (the worst case the bracket allows is assumed)")
    summary = OpenSummary(
        spec.symbol, spec.side, spec.qty, spec.entry, spec.stop, spec.target,
        spec.time_in_force, quote.base_price, base_source, quote.notional, quote.risk,
        quote.sizing, account.equity if account else None,
        account.buying_power if account else None, account.day_pnl if account else None,
        len(quote.positions) if account else None, plan.cycle_id, plan.cycle_status)
    refusal = plan.refusal
    return DryRun("open", trading_mode, summary, plan.checks, requests,
                  refusal=refusal.message if refusal else None, notes=tuple(notes),
                  exit_code=refusal.exit_code if refusal else ExitCode.OK)
