"""Is a tracked position's stop working at Alpaca? The pure decision: a position, one read of
Alpaca's orders (an OrderBook), the last trade and the time in; a verdict out (protected or not,
the working stop and take-profit, and what to do about a gap). No I/O: `services/watch/rearm.py`
acts on the verdict in `watch`; `status`, `close` and `adjust` read it.

A stop protects the held shares when it is one of the position's own exit orders (its bracket's
legs, the OCO a restore placed, or what replaced either), on the exit side, in a working status,
and still covers the shares held.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tradectl.broker import BrokerPosition, Order
from tradectl.domain.states import ProtectionState
from tradectl.services.watch.reconcile import UNKNOWN_GRACE, Holding, OrderBook, exit_orders

# Statuses in which an order still stands at Alpaca (issue 13). `held` is a bracket leg waiting
# for its entry (or a stop Alpaca keeps held until it triggers); pending_replace is still the old
# order until its replacement is confirmed.
WORKING = frozenset({"new", "accepted", "held", "pending_new", "partially_filled",
                     "pending_replace"})
STOP_TYPES = frozenset({"stop", "stop_limit"})
LIMIT = frozenset({"limit"})
# After a restore Alpaca refused, the next try waits this long: a refusal does not clear itself
# within a tick, and every try is an order sent and an event logged.
RESTORE_RETRY = timedelta(seconds=60)
# How a failed close at market through the stop reads on the row (it waits RESTORE_RETRY too).
GAP_CLOSE_FAILED = "the close at market through the stop failed"
CLOCK_SKEW = timedelta(seconds=5)  # between this machine's clock and Alpaca's timestamps

PROTECTED, UNPROTECTED, CLOSING = (ProtectionState.PROTECTED, ProtectionState.UNPROTECTED,
                                   ProtectionState.CLOSING)
RESTORE, CLOSE_GAPPED = "restore", "close_gapped"


@dataclass(frozen=True)
class Verdict:
    """`state`: protected | unprotected | closing, or None when no shares are held. `action`:
    restore (send one OCO exit), close_gapped (the market is through the stop: close at market),
    or None. `reason` says why a position is unprotected, or what the action is for."""

    state: str | None
    held: Decimal = Decimal(0)
    stop: Order | None = None
    target: Order | None = None
    action: str | None = None
    reason: str | None = None
    restore: Order | None = None  # the restore's OCO (take-profit parent), as Alpaca shows it

    @property
    def protected(self) -> bool | None:
        return None if self.state is None else self.state == PROTECTED

    def view_fields(self) -> dict[str, Any]:
        """The PositionView fields this verdict sets."""
        fields: dict[str, Any] = {
            "protection": self.state, "protected": self.protected,
            "working_stop": self.stop.stop_price if self.stop else None,
            "working_target": self.target.limit_price if self.target else None,
            "stop_order_id": self.stop.id if self.stop else None,
            "target_order_id": self.target.id if self.target else None,
        }
        if self.state in (PROTECTED, UNPROTECTED):
            fields["protection_error"] = self.reason if self.state == UNPROTECTED else None
        return fields


def exit_side(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def account_shares(holding: BrokerPosition | None, side: str) -> Decimal:
    """The shares Alpaca holds in the symbol on the rows' side (a short is bought back)."""
    if holding is None:
        return Decimal(0)
    long = holding.qty > 0
    return abs(holding.qty) if long == (side == "buy") else Decimal(0)


def gapped_through(side: str, stop: Decimal, last_trade: Decimal) -> bool:
    """The market is at or beyond the stop: a long's last trade at or below it, a short's at or
    above it. A stop placed now would be refused, and its intent is to be out."""
    return last_trade <= stop if side == "buy" else last_trade >= stop


def protection_verdict(position: Holding, book: OrderBook, *, last_trade: Decimal | None,
                       broker_holds: bool, restore_blocked: str | None, now: datetime,
                       account_qty: Decimal | None = None) -> Verdict:
    """`broker_holds`: Alpaca holds a position in the symbol; `account_qty` its shares there
    when known (the held shares are never more: a sale by hand leaves fewer). `restore_blocked`:
    why nothing may be restored now (the cycle is stopped, REARM_PROTECTION is off), None when
    it may."""
    exits = exit_orders(position, book)
    stop, target = _working(exits, position, STOP_TYPES), _working(exits, position, LIMIT)
    restore = _restore_of(position, book)
    held = (position.filled_qty or Decimal(0)) - sum((o.filled_qty for o in exits), Decimal(0)) \
        - (position.outside_qty or Decimal(0))
    if account_qty is not None:
        held = min(held, account_qty)
    if (position.alpaca_status == "alpaca_disabled" or position.status not in ("open", "closing")
            or held <= 0 or not broker_holds):
        return Verdict(None, max(held, Decimal(0)), stop, target, restore=restore)
    if position.status == "closing":
        return Verdict(CLOSING, held, stop, target, restore=restore,
                       reason="closing at market: nothing is restored")
    if stop is not None and stop.qty is not None and stop.qty - stop.filled_qty >= held:
        return Verdict(PROTECTED, held, stop, target, restore=restore)
    unprotected = Verdict(UNPROTECTED, held, stop, target, restore=restore,
                          reason=_missing(stop, held))
    sent = position.restore_sent_at
    if position.restore_client_order_id and restore is None and sent is not None \
            and now - sent < UNKNOWN_GRACE:  # never sent twice: Alpaca's orders settle it
        return _with(unprotected, reason=position.protection_error or
                     "the restore's outcome is not known yet: settled from Alpaca's orders")
    if restore_blocked is not None:
        return _with(unprotected, reason=f"{unprotected.reason}; {restore_blocked}")
    error = position.protection_error or ""
    if last_trade is not None and gapped_through(position.side, position.stop_loss, last_trade):
        # Not held back by a refused restore (the market at the stop is one reason for it);
        # only a close that failed waits before it is sent again.
        tried = position.exit_sent_at
        if error.startswith(GAP_CLOSE_FAILED) and tried is not None \
                and now - tried < RESTORE_RETRY:
            return _with(unprotected, reason=error)
        return _with(unprotected, action=CLOSE_GAPPED,
                     reason=f"gapped through the stop {position.stop_loss} (last trade "
                            f"{last_trade})")
    if position.unprotected_since is not None and position.restore_client_order_id is None \
            and sent is not None and now - sent < RESTORE_RETRY:
        return _with(unprotected, reason=error or unprotected.reason)
    return _with(unprotected, action=RESTORE)


def _with(verdict: Verdict, **changes: Any) -> Verdict:
    return replace(verdict, **changes)


def working_exits(position: Holding, book: OrderBook) -> tuple[Order | None, Order | None]:
    """The position's working stop and take-profit at Alpaca (None where there is none)."""
    exits = exit_orders(position, book)
    return _working(exits, position, STOP_TYPES), _working(exits, position, LIMIT)


def _working(exits: list[Order], position: Holding, types: frozenset[str]) -> Order | None:
    """The working exit order of these types; the one recorded on the row first."""
    working = [o for o in exits if o.type in types and o.status in WORKING]
    recorded = {position.stop_order_id, position.target_order_id}
    return next((o for o in working if o.id in recorded), working[0] if working else None)


def _restore_of(position: Holding, book: OrderBook) -> Order | None:
    found = (book.by_client_id.get(position.restore_client_order_id or "")
             or book.by_id.get(position.restore_order_id or ""))
    return (book.latest(found.id) or found) if found is not None else None


def _missing(stop: Order | None, held: Decimal) -> str:
    if stop is None:
        return "no stop order working at Alpaca"
    remaining = (stop.qty or Decimal(0)) - stop.filled_qty
    return f"the working stop covers {remaining:f} of {held:f} shares held"


@dataclass(frozen=True)
class CancelTarget:
    """An order to cancel and the group it belongs to (its bracket's entry, its OCO's parent,
    or itself): read back whole, with its legs, when the cancel fails."""

    order: Order
    group: str


def cancel_targets(position: Holding, book: OrderBook) -> list[CancelTarget]:
    """What to cancel so the position's shares are free to close: one working order per group
    (Alpaca cancels the rest of a bracket or an OCO with it). An entry still working goes
    itself, its legs with it."""
    entry = book.entry_of(position)
    groups: dict[str, str] = {}
    if entry is not None:
        groups.update((leg.id, entry.id) for leg in entry.legs)
    restore = _restore_of(position, book)
    if restore is not None:
        groups.update((o.id, restore.id) for o in (restore, *restore.legs))
    targets: dict[str, CancelTarget] = {}
    if entry is not None and entry.status in WORKING:
        targets[entry.id] = CancelTarget(entry, entry.id)
    for order in exit_orders(position, book):
        if order.status in WORKING:
            group = groups.get(order.id, order.id)
            targets.setdefault(group, CancelTarget(order, group))
    return list(targets.values())


def lost_close(position: Holding, orders: list[Order], taken: set[str]) -> Order | None:
    """The close at market tradectl sent for this position but whose answer was lost: a plain
    market order on the exit side in the symbol, submitted since it was sent, that no tracked
    position claims. DELETE /v2/positions/{symbol} takes no client_order_id, so this is how
    Alpaca's orders settle it."""
    sent = position.exit_sent_at
    if sent is None:
        return None
    since = sent - CLOCK_SKEW
    side = exit_side(position.side)
    return next((o for o in orders if o.symbol == position.symbol and o.side == side
                 and o.type == "market" and not o.legs and o.order_class in ("", "simple")
                 and o.id not in taken and o.submitted_at is not None
                 and o.submitted_at >= since), None)


