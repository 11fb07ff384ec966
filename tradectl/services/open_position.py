"""Open a bracket position: validate, check risk, write ahead, submit once, record truthfully."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradectl.broker import Account, BracketRequest, Broker, Order
from tradectl.db.models import Cycle, Position, utcnow
from tradectl.db.session import Database
from tradectl.errors import (
    BrokerError,
    BrokerTimeout,
    BrokerUnreachable,
    CycleStoppedError,
    RefusedError,
    TradectlError,
)
from tradectl.risk import (
    BookState,
    BracketSpec,
    RiskLimits,
    check_bracket_against_base,
    pre_trade_refusal,
    trade_exposure,
)
from tradectl.services.journal import (
    latest_cycle,
    live_positions,
    position_view,
    realized_pl_since,
    record_event,
    stopped_message,
    trading_day_start,
    trading_gate,
)
from tradectl.services.orders import apply_entry_order
from tradectl.services.pre_trade import MarketFacts, request_market_facts


class Aborted(TradectlError):
    """The user declined at the confirmation prompt. Nothing was written or sent."""


@dataclass(frozen=True)
class OrderPreview:
    """What the user confirms in live mode, and what the risk checks saw."""

    spec: BracketSpec
    base_price: Decimal | None
    notional: Decimal
    risk: Decimal


@dataclass
class OpenOutcome:
    position: dict[str, Any]
    broker_error: BrokerError | None = None
    warnings: list[str] = field(default_factory=list)


def open_position(
    db: Database,
    broker: Broker | None,
    limits: RiskLimits,
    spec: BracketSpec,
    *,
    facts: Callable[[], MarketFacts] | None = None,
    confirm: Callable[[OrderPreview], bool] | None = None,
) -> OpenOutcome:
    """`facts` are the pre-trade reads if the caller already sent them (`request_market_facts`,
    which also checked the bracket's shape); otherwise they are sent here."""
    if facts is None:
        facts = request_market_facts(broker, spec)
    try:
        market = facts()
    except BrokerError as err:
        with db.transaction() as session:  # nothing was sent; say why nothing was
            record_event(session, "broker_error",
                         f"{spec.symbol}: pre-trade checks could not read Alpaca: {err.message}",
                         details={"http_status": err.status, **_spec_details(spec)})
        raise
    base, account = market.base_price, market.account
    if spec.entry is None and base is not None:
        check_bracket_against_base(spec, base, base_name="the last trade")
    notional, risk = trade_exposure(spec, base)
    if confirm is not None and not confirm(OrderPreview(spec, base, notional, risk)):
        raise Aborted("not confirmed: nothing was written or sent")

    # The gate makes "check the cycle, then submit" one step against a concurrent halt: once the
    # halt's latch has committed, no open can still be on its way to the broker.
    with trading_gate(db):
        position_id, client_order_id = _write_ahead(db, spec, base, account, limits)
        if broker is None:
            return _record_without_broker(db, position_id)
        request = BracketRequest(
            symbol=spec.symbol, side=spec.side, qty=spec.qty, stop=spec.stop,
            target=spec.target, entry=spec.entry, time_in_force=spec.time_in_force,
            client_order_id=client_order_id,
        )
        try:
            order: Order | None = broker.submit_bracket(request)
        except BrokerTimeout as err:
            order = _settle_unknown(db, broker, position_id, request.client_order_id, err)
            if order is None:
                return _outcome(db, position_id, err)
        except BrokerError as err:
            return _record_failure(db, position_id, err)
        assert order is not None
        return _record_order(db, position_id, order)


def _active_cycle(db_session: Any) -> Cycle:
    cycle = latest_cycle(db_session)
    if cycle is None:
        cycle = Cycle(status="active")
        db_session.add(cycle)
        db_session.flush()
        record_event(db_session, "cycle_started", "first trading cycle started", cycle_id=cycle.id)
    return cycle


def _write_ahead(
    db: Database,
    spec: BracketSpec,
    base: Decimal | None,
    account: Account | None,
    limits: RiskLimits,
) -> tuple[int, str]:
    """Refuse (and log why) or store the pending position, committed before any order is sent."""
    refusal: RefusedError | None = None
    with db.transaction() as session:
        cycle = _active_cycle(session)
        if cycle.status != "active":
            refusal = CycleStoppedError(
                stopped_message(cycle), rule="cycle_stopped",
                figures={"cycle_id": str(cycle.id)}, hint="`tradectl resume --reason ...`",
            )
        else:
            verdict = pre_trade_refusal(spec, base, _book(session, account), limits)
            if verdict is not None:
                refusal = RefusedError(
                    f"refused by {verdict.rule}: {verdict.message}",
                    rule=verdict.rule, figures=verdict.figures,
                )
        if refusal is not None:
            record_event(
                session, "refused", f"{spec.symbol}: {refusal.message}", cycle_id=cycle.id,
                details={"rule": refusal.rule, "figures": refusal.figures, **_spec_details(spec)},
            )
        else:
            position = Position(
                cycle_id=cycle.id, symbol=spec.symbol, side=spec.side, qty=Decimal(spec.qty),
                entry_price=spec.entry, stop_loss=spec.stop, take_profit=spec.target,
                time_in_force=spec.time_in_force, status="pending",
                client_order_id=f"tradectl-{uuid.uuid4().hex}",
            )
            session.add(position)
            session.flush()
            entry = f"limit {spec.entry}" if spec.entry is not None else "at market"
            record_event(
                session, "position_created",
                f"{spec.side} {spec.qty} {spec.symbol} {entry}, stop {spec.stop}, "
                f"target {spec.target}",
                cycle_id=cycle.id, position_id=position.id,
                details={**_spec_details(spec), "base_price": base},
            )
            return position.id, position.client_order_id
    assert refusal is not None
    raise refusal


def _book(session: Any, account: Account | None) -> BookState:
    live = live_positions(session)
    if account is not None:
        day_pnl: Decimal | None = account.day_pnl
    else:  # no broker: the day's realized P&L from our own records is all we know
        day_pnl = realized_pl_since(session, trading_day_start(utcnow()))
    return BookState(
        open_symbols=frozenset(p.symbol for p in live),
        open_count=len(live),
        day_pnl=day_pnl,
        buying_power=account.buying_power if account is not None else None,
    )


def _spec_details(spec: BracketSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol, "side": spec.side, "qty": spec.qty, "stop": spec.stop,
        "target": spec.target, "entry": spec.entry, "time_in_force": spec.time_in_force,
    }


def _record_without_broker(db: Database, position_id: int) -> OpenOutcome:
    with db.transaction() as session:
        position = session.get_one(Position, position_id)
        position.status = "open"
        position.alpaca_status = "alpaca_disabled"
        record_event(
            session, "recorded_locally",
            f"{position.symbol}: Alpaca is not configured; position recorded, no order sent",
            cycle_id=position.cycle_id, position_id=position.id,
        )
        view = position_view(position)
    return OpenOutcome(
        view,
        warnings=["Alpaca is not configured (set ALPACA_API_KEY and ALPACA_SECRET_KEY): "
                  "the position is recorded locally and no order was sent"],
    )


def _record_order(db: Database, position_id: int, order: Order) -> OpenOutcome:
    with db.transaction() as session:
        position = session.get_one(Position, position_id)
        apply_entry_order(position, order)
        position.alpaca_error = None
        record_event(
            session, "order_submitted",
            f"{position.symbol}: bracket order {order.id} accepted by Alpaca ({order.status})",
            cycle_id=position.cycle_id, position_id=position.id,
            details={"alpaca_order_id": order.id, "alpaca_status": order.status,
                     "legs": [leg.id for leg in order.legs]},
        )
        return OpenOutcome(position_view(position))


def _record_failure(db: Database, position_id: int, err: BrokerError) -> OpenOutcome:
    """Alpaca said no (rejected) or was never reached (failed): either way no order exists."""
    with db.transaction() as session:
        position = session.get_one(Position, position_id)
        position.status = "failed" if isinstance(err, BrokerUnreachable) else "rejected"
        position.alpaca_status = "error"
        position.alpaca_error = err.message
        position.closed_at = utcnow()
        record_event(
            session, "broker_error", f"{position.symbol}: {err.message}",
            cycle_id=position.cycle_id, position_id=position.id,
            details={"http_status": err.status, "alpaca_code": err.code},
        )
    return _outcome(db, position_id, err)


def _settle_unknown(
    db: Database, broker: Broker, position_id: int, client_order_id: str, err: BrokerTimeout
) -> Order | None:
    """The POST may or may not have reached Alpaca. Never re-send it: ask by client_order_id.

    Returns the order if Alpaca has it; otherwise records what is known and returns None.
    """
    try:
        order = broker.find_order_by_client_id(client_order_id)
    except BrokerError as lookup_err:
        with db.transaction() as session:
            position = session.get_one(Position, position_id)
            position.alpaca_status = "error"
            position.alpaca_error = (
                f"outcome unknown: {err.message}; the look-up by client_order_id failed too "
                f"({lookup_err.message}); `tradectl watch` settles it"
            )
            record_event(session, "broker_error", f"{position.symbol}: {position.alpaca_error}",
                         cycle_id=position.cycle_id, position_id=position.id)
        return None
    if order is not None:
        return order
    _record_failure(db, position_id, BrokerUnreachable(
        f"{err.message}; Alpaca has no order {client_order_id}, so none was placed"))
    return None


def _outcome(db: Database, position_id: int, err: BrokerError) -> OpenOutcome:
    with db.transaction() as session:
        return OpenOutcome(position_view(session.get_one(Position, position_id)), broker_error=err)
