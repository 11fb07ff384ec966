"""`log`: the events audit log read back, newest first, narrowed to a symbol or a kind."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from tradectl.db.models import Event, Position
from tradectl.db.session import Database

DEFAULT_LIMIT = 50


def recent_events(
    db: Database, *, limit: int = DEFAULT_LIMIT, symbol: str | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """An event's symbol is its position's; events without a position (a refusal, a failed
    pre-trade read) carry it in their details."""
    query = select(Event, Position.symbol).outerjoin(Position, Event.position_id == Position.id)
    if kind is not None:
        query = query.where(Event.kind == kind)
    if symbol is not None:
        query = query.where(or_(
            Position.symbol == symbol,
            and_(Event.position_id.is_(None), Event.details["symbol"].as_string() == symbol),
        ))
    query = query.order_by(Event.created_at.desc(), Event.id.desc()).limit(limit)
    with db.transaction() as session:
        rows = session.execute(query).all()
    return [_event_view(event, position_symbol) for event, position_symbol in rows]


def _event_view(event: Event, position_symbol: str | None) -> dict[str, Any]:
    details = event.details or {}
    detail_symbol = details.get("symbol") if isinstance(details, dict) else None
    return {
        "id": event.id,
        "created_at": event.created_at,
        "kind": event.kind,
        "symbol": position_symbol or (detail_symbol if isinstance(detail_symbol, str) else None),
        "message": event.message,
        "cycle_id": event.cycle_id,
        "position_id": event.position_id,
        "details": event.details,
    }
