"""The unit of work: what a transaction hands a service. Named reads and writes over one session,
and, with report_rows.py (the report's Core reads), the only place outside the models that writes
SQLAlchemy queries.

Commits are explicit: leaving `Database.transaction()` without `journal.commit()` rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, insert, inspect, or_, select, update
from sqlalchemy.orm import Session

from tradectl.db.models import (
    LIVE_POSITION_STATUSES,
    Alert,
    Cycle,
    DayPeak,
    Event,
    Position,
    utcnow,
)

# Every kind of event tradectl records: `log --kind` accepts these (a test keeps the list in step
# with the code).
EVENT_KINDS = frozenset({
    "account_reading_discarded", "adjust_failed", "adjust_requested", "adjust_unknown",
    "adjusted", "alert_failed", "alert_skipped", "bracket_leg_ended", "broker_error",
    "cancel_failed", "close_failed", "close_requested", "close_unknown", "cycle_resumed",
    "cycle_started", "emergency_stop", "emergency_stop_complete", "emergency_stop_recorded",
    "flatten_before_close",  # watch exited the day trades (FLATTEN_BEFORE_CLOSE)
    "entry_cancel_pending",
    "entry_cancel_sent", "entry_cancelled", "entry_not_found", "entry_still_working",
    "entry_unknown", "exit_moved", "external_closed", "gapped_through_stop", "loss_warning",
    "order_submitted",
    "order_unknown", "outside_exit", "position_closed", "position_closing", "position_created",
    "position_missing", "position_open", "position_pending", "position_synced", "protected",
    "protection_failed", "protection_restored", "protection_restoring", "protection_unknown",
    "recorded_locally", "refused", "trade_updates_refused", "unprotected", "watch_driver",
    "watch_fault",
})

# How far before the oldest live position an orders read begins (clock skew, submit latency).
ORDERS_WINDOW_MARGIN = timedelta(minutes=1)


class Journal:
    def __init__(self, session: Session) -> None:
        self._session = session

    def commit(self) -> None:
        self._session.commit()

    def flush(self) -> None:
        self._session.flush()

    # -- cycles ----------------------------------------------------------------------------

    def latest_cycle(self) -> Cycle | None:
        return self._session.scalars(select(Cycle).order_by(Cycle.id.desc()).limit(1)).first()

    def current_cycle(self) -> Cycle:
        """The latest cycle, or the first one (active) when nothing has traded yet."""
        cycle = self.latest_cycle()
        if cycle is None:
            cycle = self.start_cycle()
            self.record("cycle_started", "first trading cycle started", cycle_id=cycle.id)
        return cycle

    def start_cycle(self) -> Cycle:
        cycle = Cycle(status="active")
        self._session.add(cycle)
        self._session.flush()
        return cycle

    # -- positions -------------------------------------------------------------------------

    def position(self, position_id: int) -> Position:
        return self._session.get_one(Position, position_id)

    def position_for_update(self, position_id: int) -> Position:
        """The row, locked until the transaction ends (Postgres; SQLite's BEGIN IMMEDIATE
        already serializes writers): a decision taken on it is not raced by another process."""
        return self._session.scalars(
            select(Position).where(Position.id == position_id).with_for_update()).one()

    def positions_by_id(self, ids: Iterable[int], *, for_update: bool = False
                        ) -> list[Position]:
        query = select(Position).where(Position.id.in_(list(ids))).order_by(Position.id)
        return list(self._session.scalars(query.with_for_update() if for_update else query))

    def add_position(self, position: Position) -> Position:
        self._session.add(position)
        self._session.flush()
        return position

    def live_positions(self) -> list[Position]:
        """Positions that may still hold or be about to hold shares, in any cycle."""
        return list(self._session.scalars(
            select(Position).where(Position.status.in_(LIVE_POSITION_STATUSES))
            .order_by(Position.id)))

    def finished_positions(self, limit: int) -> list[Position]:
        """The most recent positions that are over, newest first."""
        return list(self._session.scalars(
            select(Position).where(Position.status.not_in(LIVE_POSITION_STATUSES))
            .order_by(Position.id.desc()).limit(limit)))

    def orders_window_start(self, at: datetime | None = None) -> datetime:
        """Where a read of recent orders must begin so that every live position's orders are in
        it: a margin before the oldest live position (or before `at`, default now)."""
        oldest = self._session.scalars(
            select(Position.created_at).where(Position.status.in_(LIVE_POSITION_STATUSES))
            .order_by(Position.created_at).limit(1)).first()
        start = at or utcnow()
        return (min(oldest, start) if oldest else start) - ORDERS_WINDOW_MARGIN

    def tracked_order_ids(self) -> set[str]:
        """The broker orders of every live position: its entry, its close if one was sent, and
        the exit orders protecting it."""
        rows = self._session.execute(
            select(Position.alpaca_order_id, Position.exit_order_id, Position.stop_order_id,
                   Position.target_order_id, Position.restore_order_id)
            .where(Position.status.in_(LIVE_POSITION_STATUSES)))
        return {order_id for row in rows for order_id in row if order_id}

    def realized_pl_since(self, since: datetime) -> Decimal:
        """Realized P&L of positions closed since `since`, summed exactly in Python (SQLite keeps
        money as text)."""
        values = self._session.scalars(select(Position.realized_pl).where(
            Position.closed_at >= since, Position.realized_pl.is_not(None)))
        return sum((v for v in values if v is not None), Decimal(0))

    def entries_since(self, since: datetime) -> int:
        """Entries sent (or recorded locally) since `since`: every position created since then
        but those whose entry Alpaca rejected or never received."""
        rows = self._session.scalars(select(Position.id).where(
            Position.created_at >= since, Position.status.not_in(("rejected", "failed"))))
        return len(rows.all())

    def latest_closed_trades(self, limit: int) -> list[tuple[datetime, Decimal]]:
        """(closed_at, realized_pl) of the `limit` trades closed last, newest first."""
        rows = self._session.execute(
            select(Position.closed_at, Position.realized_pl)
            .where(Position.closed_at.is_not(None), Position.realized_pl.is_not(None))
            .order_by(Position.closed_at.desc(), Position.id.desc()).limit(limit))
        return [(closed_at, pnl) for closed_at, pnl in rows if closed_at and pnl is not None]

    # -- events ----------------------------------------------------------------------------

    def record(
        self, kind: str, message: str, *, cycle_id: int | None = None,
        position_id: int | None = None, details: dict[str, Any] | None = None,
    ) -> None:
        self._session.add(Event(**event_row(kind, message, cycle_id=cycle_id,
                                            position_id=position_id, details=details)))

    def record_many(self, rows: list[dict[str, Any]]) -> None:
        """Many events (`event_row`s) in one statement: the ORM inserts one row per statement on
        SQLite, where it cannot batch inserts whose new ids it must read back."""
        if rows:
            self._session.execute(insert(Event), rows)

    def initial_stop(self, position_id: int) -> Decimal | None:
        """The stop the position was opened with (its first position_created event)."""
        details = self._session.scalars(
            select(Event.details).where(Event.kind == "position_created",
                                        Event.position_id == position_id)
            .order_by(Event.id).limit(1)).first()
        stop = details.get("stop") if isinstance(details, dict) else None
        return Decimal(str(stop)) if isinstance(stop, str | int | float) else None

    def event_details(self, kind: str, *, since: datetime) -> list[dict[str, Any] | None]:
        """The details of every `kind` event since `since`."""
        return list(self._session.scalars(
            select(Event.details).where(Event.kind == kind, Event.created_at >= since)))

    def recent_events(
        self, limit: int, *, symbol: str | None = None, kind: str | None = None,
    ) -> list[tuple[Event, str | None]]:
        """Newest first, each with its position's symbol (None without a position: a refusal or
        a failed pre-trade read carries it in its details), narrowed to a symbol or a kind."""
        query = select(Event, Position.symbol).outerjoin(Position,
                                                         Event.position_id == Position.id)
        if kind is not None:
            query = query.where(Event.kind == kind)
        if symbol is not None:
            query = query.where(or_(
                Position.symbol == symbol,
                and_(Event.position_id.is_(None), Event.details["symbol"].as_string() == symbol),
            ))
        query = query.order_by(Event.created_at.desc(), Event.id.desc()).limit(limit)
        return [(event, symbol) for event, symbol in self._session.execute(query)]

    # -- the alerts outbox -----------------------------------------------------------------

    def queue_alert(self, kind: str, subject: str, body: str, *, channel: str, recipients: str,
                    cycle_id: int | None, facts: dict[str, Any] | None = None) -> None:
        self._session.add(Alert(kind=kind, channel=channel, subject=subject, body=body,
                                facts=_jsonable(facts) if facts else None, cycle_id=cycle_id,
                                recipients=recipients, status="pending", attempts=0))

    def pending_alerts(self, channel: str | None = None) -> list[Alert]:
        """Every channel's pending alerts, or one channel's; oldest first."""
        query = select(Alert).where(Alert.status == "pending")
        if channel is not None:
            query = query.where(Alert.channel == channel)
        return list(self._session.scalars(query.order_by(Alert.id)))

    def claim_alerts(self, channel: str, now: datetime, lease: timedelta) -> list[Alert]:
        """A channel's pending alerts nobody is sending (or whose sender outlived its lease),
        oldest first, claimed until `now + lease`; each claim counts as an attempt."""
        claimable = (Alert.status == "pending") & (Alert.channel == channel) & (
            Alert.claimed_until.is_(None) | (Alert.claimed_until < now))
        alerts = list(self._session.scalars(
            select(Alert).where(claimable).order_by(Alert.id).with_for_update(skip_locked=True)))
        for alert in alerts:
            alert.claimed_until, alert.attempts = now + lease, alert.attempts + 1
        return alerts

    def alerts_sent(self, ids: Iterable[int], at: datetime) -> None:
        ids = list(ids)
        if ids:
            self._session.execute(update(Alert).where(Alert.id.in_(ids)).values(
                status="sent", sent_at=at, last_error=None, claimed_until=None))

    def alerts_not_sent(self, ids: Iterable[int], error: str) -> None:
        ids = list(ids)
        if ids:
            self._session.execute(update(Alert).where(Alert.id.in_(ids)).values(
                last_error=error, claimed_until=None))


    # -- the day's peak equity ---------------------------------------------------------------

    def day_peak(self, day: date) -> tuple[Decimal, datetime] | None:
        """(peak equity, when) recorded for the New York trading day `day`, if any."""
        row = self._session.get(DayPeak, day)
        return None if row is None else (row.peak_equity, row.peak_at)

    def raise_day_peak(self, day: date, equity: Decimal, at: datetime, source: str) -> None:
        """Keep `equity` as the day's peak unless a higher one is recorded. The row is locked
        first (a second `watch` may write the same day): the higher of the two stays."""
        values = {"trading_day": day, "peak_equity": equity, "peak_at": at, "source": source}
        dialect = self._session.get_bind().dialect.name
        if dialect == "postgresql":  # the day's first peak: a second writer's waits, no error
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self._session.execute(pg_insert(DayPeak).values(**values)
                                  .on_conflict_do_nothing(index_elements=["trading_day"]))
        elif dialect == "sqlite":  # BEGIN IMMEDIATE already serialises the writers
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._session.execute(sqlite_insert(DayPeak).values(**values)
                                  .on_conflict_do_nothing(index_elements=["trading_day"]))
        row = self._session.scalars(select(DayPeak).where(DayPeak.trading_day == day)
                                    .with_for_update()).first()
        if row is None:
            self._session.add(DayPeak(**values))
        elif row.peak_equity < equity:  # compared as Decimals: SQLite keeps money as text
            row.peak_equity, row.peak_at, row.source = equity, at, source


def event_row(
    kind: str, message: str, *, cycle_id: int | None = None, position_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"kind": kind, "message": message, "cycle_id": cycle_id, "position_id": position_id,
            "details": _jsonable(details) if details else None}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | datetime):
        return str(value)
    return value


# -- a row's values ---------------------------------------------------------------------------

_POSITION_FIELDS = (
    "id", "cycle_id", "symbol", "side", "qty", "entry_price", "stop_loss", "take_profit",
    "time_in_force", "status", "client_order_id", "alpaca_order_id", "alpaca_status",
    "alpaca_error", "filled_qty", "filled_avg_price", "exit_price", "realized_pl", "created_at",
    "closed_at", "close_reason", "stop_order_id", "target_order_id", "unprotected_since",
    "protection_error", "restore_client_order_id", "restore_order_id", "restore_sent_at",
    "exit_order_id", "exit_sent_at", "outside_qty", "outside_pl",
)


def loaded_values(position: Position) -> dict[str, Any]:
    """The columns of a row already loaded, read without the ORM's descriptors: a tick that
    looks at a few columns of every live position reads them from here (a miss is not loaded:
    use the attribute)."""
    return inspect(position).dict


def position_values(position: Position) -> dict[str, Any]:
    """A position's columns by name, what its frozen view holds (services.row_views)."""
    # Straight from the instance's dict of loaded values: `watch` builds a view of every position
    # every tick, and going through the ORM's descriptor for each field cost a third as much as
    # loading the row. getattr for a value not loaded, which also loads it.
    loaded = inspect(position).dict
    return {name: loaded[name] if name in loaded else getattr(position, name)
            for name in _POSITION_FIELDS}
