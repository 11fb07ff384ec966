"""Open a bracket position in two steps with a value between them: `quote_open` (the pre-trade
reads, the bracket against the market, the trade's exposure), then `place_open` (risk rules,
write-ahead, one submit, the answer recorded). The caller may confirm the quote in between.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradectl.broker import Account, BracketRequest, Broker, BrokerPosition, Order
from tradectl.db.journal import Journal
from tradectl.db.models import Cycle, Position
from tradectl.db.session import Database
from tradectl.domain.bracket import RiskSizing, check_bracket_against_base, size_by_risk
from tradectl.domain.calendar import trading_day_start
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.loss_limit import applicable_baseline
from tradectl.domain.money import price_text
from tradectl.domain.pre_trade import (
    BookState,
    RiskLimits,
    RuleCheck,
    pre_trade_checks,
    trade_exposure,
)
from tradectl.domain.states import AlpacaStatusMark, PositionEvent, PositionState, move
from tradectl.errors import (
    BrokerError,
    BrokerTimeout,
    BrokerUnreachable,
    CycleStoppedError,
    DatabaseError,
    InputError,
    RefusedError,
)
from tradectl.services.gate import trading_gate
from tradectl.services.orders import apply_entry_order
from tradectl.services.pre_trade import PreTradeReads
from tradectl.services.reconcile import (
    UNKNOWN,
    outcome_unknown,
    settle_unknown_orders,
    write_outcome_unknown,
)
from tradectl.services.row_views import position_view, stopped_message
from tradectl.views import PositionView


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


@dataclass(frozen=True)
class OpenOutcome:
    position: PositionView
    broker_error: BrokerError | None = None
    warnings: tuple[str, ...] = ()


def quote_open(db: Database | None, reads: PreTradeReads,
               risk_budget: Decimal | None = None) -> OpenQuote:
    """Wait for the pre-trade reads and check the bracket against the market. With a
    `risk_budget` (`open --risk`) the quantity is sized from the price now known. A failed read
    is logged unless `db` is None (a dry run writes nothing)."""
    spec = reads.spec
    try:
        facts = reads.facts()
    except BrokerError as err:
        if db is not None:
            with db.transaction() as journal:  # nothing was sent; say why nothing was
                journal.record("broker_error", f"{spec.symbol}: pre-trade checks could not "
                               f"read Alpaca: {err.message}",
                               details={"http_status": err.status, **_spec_details(spec)})
                journal.commit()
        raise
    if spec.entry is None and facts.base_price is not None:
        check_bracket_against_base(spec, facts.base_price, base_name="the last trade")
    sizing = None
    if risk_budget is not None:
        if facts.base_price is None:
            raise InputError("--risk needs a price to size the trade: pass --entry, or set "
                             "the Alpaca keys so that the last trade can be read")
        sizing = size_by_risk(risk_budget, facts.base_price, spec.stop)
        spec = replace(spec, qty=sizing.qty)
    notional, risk = trade_exposure(spec, facts.base_price)
    return OpenQuote(spec, facts.base_price, notional, risk, facts.account, facts.positions,
                     sizing)


def place_open(db: Database, broker: Broker | None, limits: RiskLimits,
               quote: OpenQuote, *, clock: Clock = SYSTEM_CLOCK) -> OpenOutcome:
    if broker is not None:
        _settle_unknown_orders(db, broker, clock)
    # The gate makes "check the cycle, then submit" one step against a concurrent halt: once the
    # halt's latch has committed, no open can still be on its way to the broker.
    with trading_gate(db):
        position_id, request = _write_ahead(db, quote, limits, broker_backed=broker is not None,
                                            clock=clock)
        if broker is None:
            return _record_without_broker(db, position_id)
        try:
            order = broker.submit_bracket(request)
        except BrokerError as err:
            if not write_outcome_unknown(err):
                return _record_failure(db, position_id, err, clock)
            _record_unknown(db, position_id, err)  # a lost answer: the order may exist
            lost = err
        else:
            return _record_order(db, position_id, order, clock)
    return _look_up_lost_answer(db, broker, position_id, request.client_order_id, lost, clock)


def _settle_unknown_orders(db: Database, broker: Broker, clock: Clock) -> None:
    """Rows whose order outcome is unknown are settled from Alpaca's orders before the risk
    rules look at the book (one read, only when there are such rows)."""
    with db.read() as journal:
        if not any(outcome_unknown(p) for p in journal.live_positions()):
            return
        since = journal.orders_window_start()
    try:
        orders = broker.list_orders(status="all", after=since)
    except BrokerError:
        return  # still unknown: the rules refuse the symbol
    settle_unknown_orders(db, orders, clock.now())


def _write_ahead(db: Database, quote: OpenQuote, limits: RiskLimits,
                 *, broker_backed: bool, clock: Clock) -> tuple[int, BracketRequest]:
    """Refuse (and log why) or store the pending position, committed before any order is sent."""
    spec = quote.spec
    if spec.qty <= 0:  # `--risk` sizes it in quote_open; nothing may go out unsized
        raise InputError(f"no quantity for {spec.symbol}: pass --qty or --risk")
    with db.transaction() as journal:
        cycle = journal.current_cycle()
        _, refusal = judge_open(journal, cycle, quote, limits, broker_backed=broker_backed,
                                clock=clock)
        if refusal is not None:
            journal.record("refused", f"{spec.symbol}: {refusal.message}", cycle_id=cycle.id,
                           details={"rule": refusal.rule, "figures": refusal.figures,
                                    **_spec_details(spec)})
            journal.commit()
            raise refusal
        request = replace(spec, client_order_id=f"tradectl-{uuid.uuid4().hex}")
        position = journal.add_position(Position(
            cycle_id=cycle.id, symbol=spec.symbol, side=spec.side, qty=Decimal(spec.qty),
            entry_price=spec.entry, stop_loss=spec.stop, take_profit=spec.target,
            time_in_force=spec.time_in_force, status=PositionState.PENDING.value,
            client_order_id=request.client_order_id))
        entry = f"limit {price_text(spec.entry)}" if spec.entry is not None else "at market"
        journal.record("position_created",
                       f"{spec.side} {spec.qty} {spec.symbol} {entry}, stop "
                       f"{price_text(spec.stop)}, target {price_text(spec.target)}",
                       cycle_id=cycle.id, position_id=position.id,
                       details={**_spec_details(spec), "base_price": quote.base_price,
                                "risk_budget": quote.sizing.budget if quote.sizing else None})
        journal.commit()
        return position.id, request


def judge_open(journal: Journal, cycle: Cycle | None, quote: OpenQuote, limits: RiskLimits, *,
               broker_backed: bool,
               clock: Clock = SYSTEM_CLOCK) -> tuple[list[RuleCheck], RefusedError | None]:
    """Every rule's verdict on the quote (the stopped cycle first), and the refusal the first
    failed rule makes, if any. Reads only: `open` and its dry run judge alike."""
    checks = pre_trade_checks(quote.spec, quote.base_price,
                              _book(journal, cycle, quote, broker_backed, clock.now()), limits,
                              quote.sizing.budget if quote.sizing else None)
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
    )


def _spec_details(spec: BracketRequest) -> dict[str, Any]:
    return {"symbol": spec.symbol, "side": spec.side, "qty": spec.qty, "stop": spec.stop,
            "target": spec.target, "entry": spec.entry, "time_in_force": spec.time_in_force}


def _record_without_broker(db: Database, position_id: int) -> OpenOutcome:
    with db.transaction() as journal:
        position = journal.position(position_id)
        move(position, PositionEvent.RECORDED_LOCALLY)
        position.alpaca_status = AlpacaStatusMark.LOCAL_ONLY.value
        journal.record("recorded_locally",
                       f"{position.symbol}: Alpaca is not configured; position recorded, "
                       "no order sent", cycle_id=position.cycle_id, position_id=position.id)
        journal.commit()
        view = position_view(position)
    return OpenOutcome(view, warnings=(
        "Alpaca is not configured (set ALPACA_API_KEY and ALPACA_SECRET_KEY): the position is "
        "recorded locally and no order was sent",))


def _record_order(db: Database, position_id: int, order: Order, clock: Clock,
                  warnings: tuple[str, ...] = ()) -> OpenOutcome:
    try:
        with db.transaction() as journal:
            position = journal.position(position_id)
            apply_entry_order(position, order, clock.now())
            position.alpaca_error = None
            journal.record(
                "order_submitted",
                f"{position.symbol}: bracket order {order.id} accepted by Alpaca ({order.status})",
                cycle_id=position.cycle_id, position_id=position.id,
                details={"alpaca_order_id": order.id, "alpaca_status": order.status,
                         "legs": [leg.id for leg in order.legs]})
            journal.commit()
            return OpenOutcome(position_view(position), warnings=warnings)
    except DatabaseError as err:
        raise DatabaseError(f"order {order.id} accepted by Alpaca; the record failed "
                            f"({err.message}): the next `tradectl watch` tick records it",
                            hint=err.hint) from None


def _record_failure(db: Database, position_id: int, err: BrokerError,
                    clock: Clock) -> OpenOutcome:
    """Alpaca said no (rejected) or was never reached (failed): either way no order exists."""
    with db.transaction() as journal:
        position = journal.position(position_id)
        move(position, PositionEvent.NEVER_PLACED if isinstance(err, BrokerUnreachable)
             else PositionEvent.ENTRY_REJECTED)
        position.alpaca_status, position.alpaca_error = AlpacaStatusMark.ERROR.value, err.message
        position.closed_at = clock.now()
        journal.record("broker_error", f"{position.symbol}: {err.message}",
                       cycle_id=position.cycle_id, position_id=position.id,
                       details={"http_status": err.status, "alpaca_code": err.code})
        journal.commit()
        return OpenOutcome(position_view(position), broker_error=err)


def _record_unknown(db: Database, position_id: int, err: BrokerError) -> None:
    """The submit may or may not have reached Alpaca: the row stays pending, visibly unknown."""
    try:
        with db.transaction() as journal:
            position = journal.position(position_id)
            position.alpaca_status = UNKNOWN
            position.alpaca_error = (f"outcome unknown: {err.message}; settled from Alpaca's "
                                     "orders by the next watch tick, status, halt or open")
            journal.record("order_unknown", f"{position.symbol}: {position.alpaca_error}",
                           cycle_id=position.cycle_id, position_id=position.id,
                           details={"client_order_id": position.client_order_id})
            journal.commit()
    except DatabaseError as db_err:
        raise DatabaseError(f"the order's outcome is unknown ({err.message}) and the record "
                            f"failed ({db_err.message}): the next `tradectl watch` tick settles "
                            "it from Alpaca's orders", hint=db_err.hint) from None


def _look_up_lost_answer(db: Database, broker: Broker, position_id: int, client_order_id: str,
                         err: BrokerError, clock: Clock) -> OpenOutcome:
    """Never re-send the order: ask for it by client_order_id once. Found -> recorded like an
    answer; not found (yet) or the look-up failed -> it stays unknown, exit 4."""
    try:
        order = broker.find_order_by_client_id(client_order_id)
    except BrokerError:
        order = None
    if order is not None:
        return _record_order(db, position_id, order, clock, warnings=(
            f"Alpaca's answer was lost ({err.message}); the order was found by its "
            "client_order_id",))
    with db.read() as journal:
        view = position_view(journal.position(position_id))
    unknown = BrokerTimeout(f"{err.message}; the order's outcome is unknown: `tradectl watch` "
                            "or `tradectl status` settles it from Alpaca's orders",
                            status=err.status, hint=err.hint)
    return OpenOutcome(view, broker_error=unknown)
