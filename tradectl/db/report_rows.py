"""The report's reads, through SQLAlchemy Core without the ORM (`Database.read_rows()`): at
10,000 trades, importing the ORM and building its objects cost more than the reads.

The columns read are named here as lightweight tables; the tables are defined in models.py
(tests/db/test_report_rows.py keeps the two in step)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from sqlalchemy import JSON, Integer, String, column, select, table

from tradectl.db.columns import Money, UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

positions = table(
    "positions", column("id", Integer), column("symbol", String), column("side", String),
    column("qty", Money()), column("filled_qty", Money()), column("filled_avg_price", Money()),
    column("exit_price", Money()), column("stop_loss", Money()), column("realized_pl", Money()),
    column("status", String), column("close_reason", String), column("created_at", UTCDateTime()),
    column("closed_at", UTCDateTime()))
events = table("events", column("id", Integer), column("position_id", Integer),
               column("kind", String), column("details", JSON))
cycles = table("cycles", column("stopped_at", UTCDateTime()))

# A closed position as the report reads it, in this order: id, symbol, side, qty, filled_qty,
# filled_avg_price, exit_price, initial stop, realized_pl, close_reason, created_at, closed_at.
# A plain tuple: 10,000 of them are read per report.
ClosedRow = tuple[int, str, str, Decimal, Decimal | None, Decimal, Decimal, Decimal, Decimal,
                  str | None, datetime, datetime]


def closed_positions(connection: Connection, since: datetime | None,
                     until: datetime | None) -> list[ClosedRow]:
    """Positions that held shares and are closed with a realized P&L, closed in [since, until),
    in the order they closed, each with its initial stop: the one the position was opened with
    (its position_created event), whatever became of the bracket since.

    Two reads joined here by id: joined in SQL, PostgreSQL without statistics (a freshly filled
    table) planned a rescan of `events` per trade."""
    p = positions.c
    query = select(p.id, p.symbol, p.side, p.qty, p.filled_qty, p.filled_avg_price,
                   p.exit_price, p.stop_loss, p.realized_pl, p.close_reason, p.created_at,
                   p.closed_at).where(
        p.status == "closed", p.realized_pl.is_not(None), p.filled_avg_price.is_not(None),
        p.exit_price.is_not(None), p.closed_at.is_not(None))
    if since is not None:
        query = query.where(p.closed_at >= since)
    if until is not None:
        query = query.where(p.closed_at < until)
    closed = connection.execute(query.order_by(p.closed_at, p.id)).all()
    if not closed:
        return []
    ids = [row[0] for row in closed]
    stops = _initial_stops(connection, min(ids), max(ids))
    rows = [(pid, symbol, side, qty, filled, entry, exit_, stops.get(pid, stop), pl, reason,
             created, closed_at)
            for pid, symbol, side, qty, filled, entry, exit_, stop, pl, reason, created, closed_at
            in closed]
    return cast("list[ClosedRow]", rows)  # the WHERE above leaves no None where it types one


def _initial_stops(connection: Connection, first_id: int, last_id: int) -> dict[int, Decimal]:
    """The stop in each position_created event of the positions first_id..last_id (a
    position's first such event if it has several), read as text by the database."""
    e = events.c
    query = (select(e.position_id, e.details["stop"].as_string())
             .where(e.kind == "position_created", e.position_id.between(first_id, last_id))
             .order_by(e.id.desc()))  # a position's first event is the last one into the dict
    return {position_id: Decimal(stop) for position_id, stop in connection.execute(query).all()
            if isinstance(stop, str)}


def stops_pulled(connection: Connection, since: datetime | None,
                 until: datetime | None) -> list[datetime]:
    """When each emergency stop (halt, or the loss limit) latched its cycle."""
    stopped_at = cycles.c.stopped_at
    query = select(stopped_at).where(stopped_at.is_not(None))
    if since is not None:
        query = query.where(stopped_at >= since)
    if until is not None:
        query = query.where(stopped_at < until)
    return [at for at in connection.scalars(query.order_by(stopped_at)) if at is not None]
