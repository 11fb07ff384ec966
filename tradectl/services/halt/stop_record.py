"""What the emergency stop writes about each position once the broker has answered, and the
per-symbol report drawn from those rows. Only what Alpaca said is recorded: an entry becomes
`cancelled` when Alpaca says canceled (or expired/rejected), a position `closed` when its close
order shows a fill; anything Alpaca has not settled yet stays visibly in progress."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tradectl.broker import Order, SymbolOutcome
from tradectl.db.models import Position
from tradectl.domain.states import AlpacaStatusMark, PositionEvent, move
from tradectl.services.orders import ENTRY_DEAD, apply_exit_order
from tradectl.services.watch.reconcile import OrderBook

# Worst first: a symbol's state is the worst of its positions'.
SYMBOL_STATES = ("failed", "missing", "unknown", "cancelling", "no_order", "closing", "closed",
                 "cancelled", "closed_locally", "flat")
FAILED_STATES = frozenset({"failed", "missing", "unknown"})
Log = Callable[[Position, str, str], None]


@dataclass(frozen=True)
class SymbolReport:
    symbol: str
    state: str  # one of SYMBOL_STATES
    position_ids: tuple[int, ...] = ()
    external: bool = False
    close_order_id: str | None = None
    cancelled_orders: int = 0
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES


@dataclass(frozen=True)
class BrokerAnswers:
    """What the flatten learnt: per symbol the close's outcome, the orders read after it (None
    when that read failed), whether the broker could be used at all, and the entries whose
    cancel tradectl sent itself after the stop (order id -> error, None when accepted)."""

    outcomes: dict[str, SymbolOutcome]
    orders: list[Order] | None
    broker_error: str | None
    cancels_sent: dict[str, str | None]


def record_symbol(symbol: str, positions: list[Position], answers: BrokerAnswers,
                  book: OrderBook, log: Log, now: datetime) -> SymbolReport:
    """Record each tracked position of `symbol` and report the symbol as the rows now say."""
    outcome = answers.outcomes.get(symbol)
    close_error = _close_error(outcome, answers.broker_error)
    close = outcome.order if outcome is not None and outcome.order is not None else None
    if close is not None:
        close = book.by_id.get(close.id, close)
    states: list[tuple[str, str | None]] = []
    for position in positions:
        if not position.filled_qty and position.status not in ("open", "closing"):
            states.append(_record_entry(position, answers, book, close, log))
        else:
            states.append(_record_holding(position, close, close_error, book, log, now))
    if not positions:  # a position tradectl did not open
        states.append(("failed", close_error) if close_error else
                      ("flat", None) if close is None else
                      ("closed" if close.status == "filled" else "closing", None))
    state = min((s for s, _ in states), key=SYMBOL_STATES.index)
    error = next((e for s, e in states if s == state and e), None)
    exit_ids = {p.exit_order_id for p in positions if p.exit_order_id}
    return SymbolReport(
        symbol, state, tuple(p.id for p in positions), external=not positions,
        close_order_id=close.id if close is not None else min(exit_ids, default=None),
        error=error)


def _close_error(outcome: SymbolOutcome | None, broker_error: str | None) -> str | None:
    if outcome is None:
        return broker_error
    if not outcome.ok and outcome.http_status != 404:  # 404: nothing left to close
        return outcome.error or f"Alpaca {outcome.http_status}"
    return None


def _record_holding(position: Position, close: Order | None, close_error: str | None,
                    book: OrderBook, log: Log, now: datetime) -> tuple[str, str | None]:
    """A position that holds shares (or did): closed, closing, or why not."""
    if close_error is not None:
        position.alpaca_error = f"emergency stop: {close_error}"
        log(position, "close_failed", f"close failed, still open at the broker: {close_error}")
        return "failed", close_error
    if close is not None:
        position.alpaca_status = AlpacaStatusMark.CLOSED_BY_EMERGENCY_STOP.value
        position.close_reason = "emergency_stop"
        position.alpaca_error = None
        apply_exit_order(position, close, now)
        log(position, f"position_{position.status}", f"{position.status} by the emergency stop")
        return position.status, None
    earlier = book.by_id.get(position.exit_order_id) if position.exit_order_id else None
    if earlier is not None:  # closed by an earlier stop (one spooled without the database too)
        if apply_exit_order(position, earlier, now):
            log(position, f"position_{position.status}", "emergency close order "
                f"{'filled' if position.status == 'closed' else 'sent'}")
        return position.status, None
    if position.status == "closing" and position.exit_order_id:  # its close not in the read
        return position.status, None
    position.alpaca_error = "emergency stop: Alpaca holds no position in this symbol"
    log(position, "position_missing", "tracked as open but Alpaca holds no position; check it")
    return "missing", position.alpaca_error


def _record_entry(position: Position, answers: BrokerAnswers, book: OrderBook,
                  close: Order | None, log: Log) -> tuple[str, str | None]:
    """An entry not known to have filled: cancelled only when Alpaca says so."""
    entry = book.entry_of(position)
    if entry is None and (answers.orders is None or answers.broker_error):
        why = "could not read its entry order after the stop" + (
            f": {answers.broker_error}" if answers.broker_error else "")
        position.alpaca_error = f"emergency stop: {why}"
        if close is not None:  # if it filled, this close is its exit: the next sync decides
            position.exit_order_id, position.close_reason = close.id, "emergency_stop"
        log(position, "entry_unknown", f"entry order not settled: {why}")
        return "unknown", why
    if entry is None:  # the answer to its submit was lost, and Alpaca has no such order now
        log(position, "entry_not_found", "its order is not at Alpaca: nothing to cancel; an order "
            "that arrives late is seen by the next watch tick or halt")
        return "no_order", "the order whose answer was lost is not at Alpaca"
    if entry.status in ENTRY_DEAD:
        position.close_reason = "emergency_stop"
        log(position, "entry_cancelled", f"entry order {entry.status}: cancelled by the emergency "
            "stop" if entry.status != "rejected" else "entry order rejected")
        return "cancelled", None
    if entry.status == "pending_cancel":
        log(position, "entry_cancel_pending",
            "entry order pending_cancel at Alpaca: it may still fill; the next tick settles it")
        return "cancelling", "Alpaca: pending_cancel"
    if entry.id in answers.cancels_sent:
        error = answers.cancels_sent[entry.id]
        if error is not None:
            position.alpaca_error = f"emergency stop: cancelling the entry failed: {error}"
            log(position, "cancel_failed", f"entry order still {entry.status}: cancel failed: "
                f"{error}")
            return "failed", error
        log(position, "entry_cancel_sent", f"entry order still {entry.status} after the stop: "
            "cancel sent, not confirmed yet")
        return "cancelling", "cancel sent after the stop, not confirmed yet"
    position.alpaca_error = f"emergency stop: entry order still {entry.status}"
    log(position, "entry_still_working", f"entry order still {entry.status} after the stop")
    return "failed", position.alpaca_error


def cancelled_per_symbol(orders: list[Order], stopped_at: datetime) -> dict[str, int]:
    """Orders (legs included) cancelled since the stop latched, allowing for clock skew."""
    since = stopped_at - timedelta(seconds=5)
    counts: dict[str, int] = defaultdict(int)
    for order in OrderBook.of(orders).by_id.values():
        if order.status == "canceled" and order.canceled_at and order.canceled_at >= since:
            counts[order.symbol] += 1
    return counts


def mark_closed_locally(position: Position, log: Log, now: datetime) -> None:
    move(position, PositionEvent.CLOSED_LOCALLY)
    position.closed_at = now
    position.close_reason = "emergency_stop"
    log(position, "position_closed", "closed locally by the emergency stop (never at a broker)")
