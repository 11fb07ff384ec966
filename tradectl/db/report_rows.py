"""The report's reads, as SQL text run on the database's own DB-API driver (`read_rows()` of
db/plain.py's PlainDatabase, or of db/session.py's Database): at 10,000 trades, importing
SQLAlchemy took longer than the reads. Money and times are read back as db/columns.py's types
read them (tests/db/test_report_rows.py keeps the columns in step with the models)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from tradectl.db.plain import Rows, sqlite_time, stored_money, stored_time

# A closed position as the report reads it, in this order: id, symbol, side, qty, filled_qty,
# filled_avg_price, exit_price, initial stop, realized_pl, close_reason, created_at, closed_at.
# A plain tuple: 10,000 of them are read per report.
ClosedRow = tuple[int, str, str, Decimal, Decimal | None, Decimal, Decimal, Decimal, Decimal,
                  str | None, datetime, datetime]

CLOSED_POSITIONS = (
    "SELECT id, symbol, side, qty, filled_qty, filled_avg_price, exit_price, stop_loss, "
    "realized_pl, close_reason, created_at, closed_at FROM positions "
    "WHERE status = 'closed' AND realized_pl IS NOT NULL AND filled_avg_price IS NOT NULL "
    "AND exit_price IS NOT NULL AND closed_at IS NOT NULL{period} ORDER BY closed_at, id")
# The stop as text, as the database writes it (SQLite's json_extract gives a number as one)
INITIAL_STOPS = (
    "SELECT position_id, {stop} FROM events WHERE kind = 'position_created' "
    "AND position_id BETWEEN ? AND ? ORDER BY id DESC")
STOP_TEXT = {"sqlite": "CAST(json_extract(details, '$.\"stop\"') AS VARCHAR)",
             "postgresql": "details ->> 'stop'"}
STOPS_PULLED = ("SELECT stopped_at FROM cycles WHERE stopped_at IS NOT NULL{period} "
                "ORDER BY stopped_at")


def closed_positions(rows: Rows, since: datetime | None,
                     until: datetime | None) -> list[ClosedRow]:
    """Positions that held shares and are closed with a realized P&L, closed in [since, until),
    in the order they closed, each with its initial stop: the one the position was opened with
    (its position_created event), whatever became of the bracket since.

    Two reads joined here by id: joined in SQL, PostgreSQL without statistics (a freshly filled
    table) planned a rescan of `events` per trade."""
    period, params = _period(rows, "closed_at", since, until)
    closed = rows.fetch(CLOSED_POSITIONS.format(period=period), params)
    if not closed:
        return []
    ids = [row[0] for row in closed]
    stops = _initial_stops(rows, min(ids), max(ids))
    money, time = stored_money, stored_time
    return [(pid, symbol, side, money(str(qty)), None if filled is None else money(str(filled)),
             money(str(entry)), money(str(exit_)),
             stops[pid] if pid in stops else money(str(stop)), money(str(pl)), reason,
             time(created), time(closed_at))
            for pid, symbol, side, qty, filled, entry, exit_, stop, pl, reason, created, closed_at
            in closed]  # the WHERE above leaves no None where ClosedRow types one


def _initial_stops(rows: Rows, first_id: int, last_id: int) -> dict[int, Decimal]:
    """The stop in each position_created event of the positions first_id..last_id (a
    position's first such event if it has several), read as text by the database."""
    query = INITIAL_STOPS.format(stop=STOP_TEXT[rows.dialect])
    # a position's first event is the last one into the dict
    return {position_id: Decimal(stop) for position_id, stop
            in rows.fetch(query, (first_id, last_id)) if isinstance(stop, str)}


def stops_pulled(rows: Rows, since: datetime | None, until: datetime | None) -> list[datetime]:
    """When each emergency stop (halt, or the loss limit) latched its cycle."""
    period, params = _period(rows, "stopped_at", since, until)
    return [stored_time(at) for (at,) in rows.fetch(STOPS_PULLED.format(period=period), params)]


def _period(rows: Rows, column: str, since: datetime | None,
            until: datetime | None) -> tuple[str, list[Any]]:
    """The WHERE terms for [since, until) on a time column, and their parameters as stored."""
    terms, params = "", []
    for bound, operator in ((since, ">="), (until, "<")):
        if bound is not None:
            terms += f" AND {column} {operator} ?"
            params.append(sqlite_time(bound) if rows.dialect == "sqlite" else bound)
    return terms, params
