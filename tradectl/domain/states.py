"""A position's lifecycle: its states, the protection verdict's states, and every move a
position may make, in one table. The values are the strings stored in the database and printed
by `--json` (a contract): `PositionState.OPEN == "open"` holds."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from tradectl.errors import IllegalTransition


class PositionState(StrEnum):
    PENDING = "pending"  # the entry is working, or its outcome is not known yet
    OPEN = "open"  # shares held (filled_qty < qty: a partial fill)
    CLOSING = "closing"  # a close order is working
    CLOSED = "closed"
    CANCELLED = "cancelled"  # Alpaca cancelled (or expired) the entry before it filled
    REJECTED = "rejected"  # Alpaca said no
    FAILED = "failed"  # the entry never reached Alpaca


LIVE_STATES = frozenset({PositionState.PENDING, PositionState.OPEN, PositionState.CLOSING})


class PositionEvent(StrEnum):
    """What happens to a position: the only way its state changes."""

    ENTRY_FILLED = "entry_filled"  # Alpaca's orders show the entry (partly) filled
    RECORDED_LOCALLY = "recorded_locally"  # no broker configured: held as recorded
    ENTRY_CANCELLED = "entry_cancelled"  # cancelled or expired unfilled
    ENTRY_REJECTED = "entry_rejected"  # refused by Alpaca, at the submit or later
    NEVER_PLACED = "never_placed"  # refused connection, or not in Alpaca's orders in time
    CLOSE_SENT = "close_sent"  # a close at market written ahead, or seen working at Alpaca
    CLOSE_FAILED = "close_failed"  # the close was refused, not sent, or never reached Alpaca
    EXITED = "exited"  # the last shares exited (a leg, a close, a sale outside tradectl)
    CLOSED_LOCALLY = "closed_locally"  # a row never at a broker, or the stop without one


_S, _E = PositionState, PositionEvent
TRANSITIONS: Mapping[tuple[PositionState, PositionEvent], PositionState] = {
    (_S.PENDING, _E.ENTRY_FILLED): _S.OPEN,
    (_S.PENDING, _E.RECORDED_LOCALLY): _S.OPEN,
    (_S.PENDING, _E.ENTRY_CANCELLED): _S.CANCELLED,
    (_S.PENDING, _E.ENTRY_REJECTED): _S.REJECTED,
    (_S.PENDING, _E.NEVER_PLACED): _S.FAILED,
    (_S.PENDING, _E.CLOSED_LOCALLY): _S.CLOSED,
    (_S.OPEN, _E.CLOSE_SENT): _S.CLOSING,
    (_S.OPEN, _E.EXITED): _S.CLOSED,
    (_S.OPEN, _E.CLOSED_LOCALLY): _S.CLOSED,
    (_S.CLOSING, _E.CLOSE_FAILED): _S.OPEN,
    (_S.CLOSING, _E.EXITED): _S.CLOSED,
    (_S.CLOSING, _E.CLOSED_LOCALLY): _S.CLOSED,
}


def advance(current: str, event: PositionEvent) -> PositionState:
    """The state a position in `current` moves to on `event`; IllegalTransition if none."""
    try:
        return TRANSITIONS[(PositionState(current), event)]
    except (KeyError, ValueError):
        raise IllegalTransition(current, event) from None


class Stateful(Protocol):
    status: str


def move(position: Stateful, event: PositionEvent) -> PositionState:
    """Move a position (a row) on `event`: the one place a position's state is written."""
    new = advance(position.status, event)
    position.status = new.value  # the plain string: what the column stores
    return new


class ProtectionState(StrEnum):
    """The protection verdict (services/protection.py), judged afresh from Alpaca's orders
    every time: it is not stored, so it has no moves of its own. Its one trace on the row is
    `unprotected_since` (set when a gap starts, cleared when a stop works again)."""

    PROTECTED = "protected"  # a working stop covers the held shares
    UNPROTECTED = "unprotected"
    CLOSING = "closing"  # closing at market: nothing is restored


class CycleState(StrEnum):
    """A trading cycle: active until the emergency stop latches it; `resume` starts another."""

    ACTIVE = "active"
    STOPPED = "stopped"


class AlpacaStatusMark(StrEnum):
    """What tradectl itself writes in `alpaca_status` where Alpaca's own order status is not
    the answer (Alpaca's statuses are stored as Alpaca sends them)."""

    UNKNOWN = "unknown"  # the answer to the submit was lost: settled from Alpaca's orders
    ERROR = "error"
    LOCAL_ONLY = "alpaca_disabled"  # recorded without a broker
    CLOSED_BY_EMERGENCY_STOP = "closed_by_emergency_stop"
