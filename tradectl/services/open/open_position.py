"""`tradectl open`: plan then execute. `open_plan.quote_open` waits for the pre-trade reads and
checks the bracket against the market (the caller may confirm the quote); `place_open` settles
rows of unknown outcome, plans (`open_plan.plan_open`: the rules, the exact POST, the row) and
executes the plan: under the trading gate the rules are judged again as the row is written
ahead (a plan is a decision on a snapshot: what changed since refuses, and says so), one submit,
the answer recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradectl.broker import Broker, Order
from tradectl.db.models import Position
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.pre_trade import RiskLimits
from tradectl.domain.states import AlpacaStatusMark, PositionEvent, PositionState, move
from tradectl.errors import (
    BrokerError,
    BrokerTimeout,
    BrokerUnreachable,
    DatabaseError,
    InputError,
    RefusedError,
)
from tradectl.services.gate import trading_gate
from tradectl.services.open.open_plan import (  # noqa: F401  (quote_open: re-exported)
    OpenPlan,
    OpenQuote,
    judge_open,
    plan_open,
    quote_open,
    spec_details,
)
from tradectl.services.orders import apply_entry_order
from tradectl.services.row_views import position_view
from tradectl.services.watch.reconcile import (
    UNKNOWN,
    outcome_unknown,
    settle_unknown_orders,
    write_outcome_unknown,
)
from tradectl.views import PositionView

CHANGED = "the book changed since the plan was made"


@dataclass(frozen=True)
class OpenOutcome:
    position: PositionView
    broker_error: BrokerError | None = None
    warnings: tuple[str, ...] = ()


def place_open(db: Database, broker: Broker | None, limits: RiskLimits,
               quote: OpenQuote, *, clock: Clock = SYSTEM_CLOCK) -> OpenOutcome:
    """The real `open`: `execute_open(plan_open(...))`, once unknown outcomes are settled."""
    if broker is not None:
        _settle_unknown_orders(db, broker, clock)
    return execute_open(db, broker, limits, plan_open(db, broker, limits, quote, clock=clock),
                        clock=clock)


def execute_open(db: Database, broker: Broker | None, limits: RiskLimits,
                 plan: OpenPlan, *, clock: Clock = SYSTEM_CLOCK) -> OpenOutcome:
    """Write the plan's row ahead and send the plan's bracket, once; record the answer."""
    if (plan.request is None) != (broker is None):
        raise ValueError("the plan was made for another broker")
    # The gate makes "check the cycle, then submit" one step against a concurrent halt: once the
    # halt's latch has committed, no open can still be on its way to the broker.
    with trading_gate(db):
        position_id = _write_ahead(db, plan, limits, broker_backed=broker is not None,
                                   clock=clock)
        if broker is None:
            return _record_without_broker(db, position_id)
        try:
            order = broker.submit_bracket(plan.bracket)
        except BrokerError as err:
            if not write_outcome_unknown(err):
                return _record_failure(db, position_id, err, clock)
            _record_unknown(db, position_id, err)  # a lost answer: the order may exist
            lost = err
        else:
            return _record_order(db, position_id, order, clock)
    return _look_up_lost_answer(db, broker, position_id, plan.bracket.client_order_id, lost,
                                clock)


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


def _write_ahead(db: Database, plan: OpenPlan, limits: RiskLimits, *,
                 broker_backed: bool, clock: Clock) -> int:
    """Refuse (and log why) or store the plan's pending row, committed before any order is
    sent. The rules are judged again here, under the gate: the plan's refusal stands, and a
    rule that fails now refuses what the plan allowed."""
    spec, quote = plan.bracket, plan.quote
    if spec.qty <= 0:  # `--risk` sizes it in quote_open; nothing may go out unsized
        raise InputError(f"no quantity for {spec.symbol}: pass --qty or --risk")
    with db.transaction() as journal:
        cycle = journal.current_cycle()
        _, now = judge_open(journal, cycle, quote, limits, broker_backed=broker_backed,
                            now=clock.now())
        refusal = plan.refusal or _changed(now)
        if refusal is not None:
            journal.record("refused", f"{spec.symbol}: {refusal.message}", cycle_id=cycle.id,
                           details={"rule": refusal.rule, "figures": refusal.figures,
                                    **spec_details(spec)})
            journal.commit()
            raise refusal
        position = journal.add_position(Position(
            cycle_id=cycle.id, symbol=spec.symbol, side=spec.side, qty=Decimal(spec.qty),
            entry_price=spec.entry, stop_loss=spec.stop, take_profit=spec.target,
            time_in_force=spec.time_in_force, status=PositionState.PENDING.value,
            client_order_id=spec.client_order_id))
        journal.record("position_created", plan.created, cycle_id=cycle.id,
                       position_id=position.id,
                       details={**spec_details(spec), "base_price": quote.base_price,
                                "risk_budget": quote.sizing.budget if quote.sizing else None})
        journal.commit()
        return position.id


def _changed(refusal: RefusedError | None) -> RefusedError | None:
    """A refusal the plan did not see: the same rule and figures, saying what changed."""
    if refusal is None:
        return None
    return type(refusal)(f"{refusal.message} ({CHANGED})", rule=refusal.rule,
                         figures=refusal.figures, hint=refusal.hint)


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
