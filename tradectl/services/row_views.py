"""The journal's rows as the frozen views that leave a service (tradectl.views). Here, not in
`db`, so the database layer knows nothing of what render draws (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from tradectl.db.journal import Journal, position_values
from tradectl.db.models import Alert, Cycle, Event, Position
from tradectl.views import AlertView, CycleView, EventView, PositionView


def position_view(position: Position, **market: Any) -> PositionView:
    """A row as a frozen view; `market` adds the broker's mark (last_price, unrealized_pl)."""
    return PositionView(**position_values(position), **market)


def cycle_view(cycle: Cycle) -> CycleView:
    return CycleView(cycle.id, cycle.status, cycle.started_at, cycle.stopped_at,
                     cycle.stop_reason, cycle.loss_baseline, cycle.baseline_at)


def event_view(event: Event, position_symbol: str | None) -> EventView:
    details = event.details if isinstance(event.details, dict) else None
    detail_symbol = details.get("symbol") if details else None
    return EventView(
        id=event.id, created_at=event.created_at, kind=event.kind,
        symbol=position_symbol or (detail_symbol if isinstance(detail_symbol, str) else None),
        message=event.message, cycle_id=event.cycle_id, position_id=event.position_id,
        details=event.details,
    )


def recent_events(journal: Journal, limit: int, *, symbol: str | None = None,
                  kind: str | None = None) -> list[EventView]:
    """Newest first. An event's symbol is its position's; events without a position (a
    refusal, a failed pre-trade read) carry it in their details."""
    return [event_view(event, position_symbol) for event, position_symbol
            in journal.recent_events(limit, symbol=symbol, kind=kind)]


def alert_view(alert: Alert) -> AlertView:
    return AlertView(alert.id, alert.created_at, alert.subject, alert.status, alert.attempts,
                     alert.last_error, alert.channel)


def stopped_message(cycle: Cycle | CycleView) -> str:
    when = cycle.stopped_at.strftime("%Y-%m-%d %H:%M:%S UTC") if cycle.stopped_at else "?"
    return f"trading is stopped since {when}: {cycle.stop_reason or 'no reason given'}"
