"""The audit log and the read-side views of positions shared by every use case."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, inspect, select
from sqlalchemy.orm import Session

from tradectl.db.models import LIVE_POSITION_STATUSES, Cycle, Event, Position, utcnow
from tradectl.db.session import Database
from tradectl.errors import DatabaseError

MARKET_TZ = ZoneInfo("America/New_York")
# How long open, halt and resume wait for the trading gate (held by another one's critical step).
GATE_WAIT_SECONDS = 30.0


@contextmanager
def trading_gate(db: Database) -> Iterator[None]:
    """The cross-process lock that makes "read the cycle, then act" one step: `open` holds it
    from the cycle check through submitting, `halt` to latch, `resume` to start a cycle."""
    with db.lock("cycle", wait=GATE_WAIT_SECONDS) as held:
        if not held:
            raise DatabaseError(f"another tradectl process has held the trading gate for "
                                f"{GATE_WAIT_SECONDS:.0f}s; try again")
        yield


def record_event(
    session: Session,
    kind: str,
    message: str,
    *,
    cycle_id: int | None = None,
    position_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    event = Event(**event_row(kind, message, cycle_id=cycle_id, position_id=position_id,
                              details=details))
    session.add(event)
    return event


def event_row(
    kind: str,
    message: str,
    *,
    cycle_id: int | None = None,
    position_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"kind": kind, "message": message, "cycle_id": cycle_id, "position_id": position_id,
            "details": _jsonable(details) if details else None}


def record_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Many events (`event_row`s) in one statement: the ORM inserts one row per statement on
    SQLite, where it cannot batch inserts whose new ids it must read back."""
    if rows:
        session.execute(insert(Event), rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | datetime):
        return str(value)
    return value


def latest_cycle(session: Session) -> Cycle | None:
    return session.scalars(select(Cycle).order_by(Cycle.id.desc()).limit(1)).first()


def live_positions(session: Session) -> list[Position]:
    """Positions that may still hold or be about to hold shares, in any cycle."""
    return list(
        session.scalars(
            select(Position).where(Position.status.in_(LIVE_POSITION_STATUSES)).order_by(Position.id)
        )
    )


def orders_window_start(session: Session, at: datetime | None = None) -> datetime:
    """Where a read of recent orders must begin: a minute before the oldest live position (or
    `at`, default now), so that every live position's orders are in it."""
    oldest = session.scalars(
        select(Position.created_at).where(Position.status.in_(LIVE_POSITION_STATUSES))
        .order_by(Position.created_at).limit(1)
    ).first()
    start = at or utcnow()
    return min(oldest, start) - timedelta(minutes=1) if oldest else start - timedelta(minutes=1)


def tracked_order_ids(session: Session) -> set[str]:
    """The broker orders of every live position: its entry, and its close if one was sent."""
    rows = session.execute(
        select(Position.alpaca_order_id, Position.exit_order_id)
        .where(Position.status.in_(LIVE_POSITION_STATUSES))
    )
    return {order_id for row in rows for order_id in row if order_id}


def trading_day_start(now: datetime) -> datetime:
    """Midnight in New York, the US market's day, for `now`."""
    local = now.astimezone(MARKET_TZ)
    return datetime.combine(local.date(), time(0), tzinfo=MARKET_TZ)


def realized_pl_since(session: Session, since: datetime) -> Decimal:
    """Sum of realized P&L of positions closed since `since`, summed exactly in Python (SQLite
    keeps money as text)."""
    values = session.scalars(
        select(Position.realized_pl).where(
            Position.closed_at >= since, Position.realized_pl.is_not(None)
        )
    )
    return sum((v for v in values if v is not None), Decimal(0))


POSITION_VIEW_FIELDS = (
    "id", "cycle_id", "symbol", "side", "qty", "entry_price", "stop_loss", "take_profit",
    "time_in_force", "status", "client_order_id", "alpaca_order_id", "alpaca_status",
    "alpaca_error", "filled_qty", "filled_avg_price", "exit_price", "realized_pl", "created_at",
    "closed_at", "close_reason",
)


def position_view(position: Position) -> dict[str, Any]:
    """A position as plain values for output (JSON or tables)."""
    # Straight from the instance's dict of loaded values: `watch` builds a view of every position
    # every tick, and going through the ORM's descriptor for each field cost a third as much as
    # loading the row. getattr for a value not loaded, which also loads it.
    loaded = inspect(position).dict
    return {name: loaded[name] if name in loaded else getattr(position, name)
            for name in POSITION_VIEW_FIELDS}


def stopped_message(cycle: Cycle) -> str:
    when = cycle.stopped_at.strftime("%Y-%m-%d %H:%M:%S UTC") if cycle.stopped_at else "?"
    return f"trading is stopped since {when}: {cycle.stop_reason or 'no reason given'}"
