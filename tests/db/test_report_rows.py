"""The report's read (db/report_rows.py, through services.report) on SQLite and Postgres: which
positions it takes, in what order, and each trade's initial stop, through SQLAlchemy's connection
and through the driver alone (db/plain.py); the columns it reads in step with the models; the
command imports no SQLAlchemy, and refuses or migrates a database as the other commands do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, insert

from tests.conftest import Cli, ScratchDatabases, closed_port
from tradectl.db import report_rows
from tradectl.db.columns import Money, UTCDateTime
from tradectl.db.models import HEAD_REVISION, Base, Cycle, Event, Position
from tradectl.db.plain import PlainDatabase, ReadsRows, open_plain
from tradectl.db.session import Database
from tradectl.errors import DatabaseError
from tradectl.services.report.report import trading_report

OPENED = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York


def position(pid: int, *, status: str = "closed", closed_after: timedelta | None = None,
             stop: str = "99", filled_qty: str | None = "10") -> dict[str, Any]:
    closed = OPENED + closed_after if closed_after is not None else None
    return {"id": pid, "cycle_id": 1, "symbol": "AAPL", "side": "buy", "qty": Decimal(12),
            "stop_loss": Decimal(stop), "take_profit": Decimal(110), "status": status,
            "client_order_id": f"tradectl-{pid}", "created_at": OPENED,
            "filled_qty": None if filled_qty is None else Decimal(filled_qty),
            "filled_avg_price": Decimal(100), "exit_price": Decimal(104) if closed else None,
            "realized_pl": Decimal(40) if closed else None, "closed_at": closed,
            "close_reason": "take_profit" if closed else None}


def created(pid: int, details: dict[str, Any] | None) -> dict[str, Any]:
    return {"created_at": OPENED, "cycle_id": 1, "position_id": pid, "kind": "position_created",
            "message": f"position #{pid} created", "details": details}


@pytest.fixture(params=["sqlalchemy", "driver"])
def reader(request: pytest.FixtureRequest, db: Database) -> Iterator[ReadsRows]:
    """The report's reads through SQLAlchemy's connection (Database, as the tests' commands get
    it), or the database's driver alone (PlainDatabase, as `tradectl report` opens it)."""
    if request.param == "sqlalchemy":
        yield db
        return
    plain = open_plain(db.url)
    assert isinstance(plain, PlainDatabase)
    yield plain
    plain.close()


def seed_trades(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(insert(Cycle), [{"id": 1, "status": "active", "started_at": OPENED}])
        connection.execute(insert(Position), [
            position(1, closed_after=timedelta(hours=3)),  # its stop was moved from 95 to 99
            position(2, closed_after=timedelta(hours=1), filled_qty=None),  # no event: stop_loss
            position(3, closed_after=timedelta(hours=2)),  # two events: the first one's stop
            position(4, status="open"),
            position(5, closed_after=timedelta(days=3)),  # after --until
            position(6, closed_after=timedelta(hours=4)),  # a stop written as a number
        ])
        connection.execute(insert(Event), [
            created(1, {"stop": "95", "qty": "10"}), created(3, {"stop": "96.5"}),
            created(3, {"stop": "90"}), created(4, {"stop": "97"}), created(5, {"stop": "98"}),
            created(6, {"stop": 94}),
            {**created(1, {"stop": "1"}), "kind": "position_synced"},
        ])


def test_closed_trades_in_closing_order_each_with_the_stop_it_opened_with(
    db: Database, reader: ReadsRows
) -> None:
    seed_trades(db)
    report = trading_report(reader, since=date(2026, 11, 2), until=date(2026, 11, 3),
                            now=OPENED + timedelta(days=5))

    trades = [row.trade for row in report.trades]
    assert [(t.position_id, t.initial_stop, t.qty) for t in trades] == [
        (2, Decimal(99), Decimal(12)), (3, Decimal("96.5"), Decimal(10)),
        (1, Decimal(95), Decimal(10)), (6, Decimal(94), Decimal(10))]
    assert [row.r_multiple for row in report.trades] == [
        Decimal("3.33"), Decimal("1.14"), Decimal("0.80"), Decimal("0.67")]


def test_no_closed_trades(reader: ReadsRows) -> None:
    report = trading_report(reader, since=None, until=None, now=OPENED)
    assert report.trades == () and report.days == ()


# each column the report's SQL reads, and the type db/plain.py reads it back as
READ: dict[str, dict[str, type | None]] = {
    "positions": {"id": None, "symbol": None, "side": None, "qty": Money,
                  "filled_qty": Money, "filled_avg_price": Money, "exit_price": Money,
                  "stop_loss": Money, "realized_pl": Money, "status": None,
                  "close_reason": None, "created_at": UTCDateTime, "closed_at": UTCDateTime},
    "events": {"id": None, "position_id": None, "kind": None, "details": JSON},
    "cycles": {"stopped_at": UTCDateTime},
}


def test_the_report_reads_the_models_columns_as_their_types_store_them() -> None:
    sql = " ".join([report_rows.CLOSED_POSITIONS, report_rows.INITIAL_STOPS,
                    report_rows.STOPS_PULLED, *report_rows.STOP_TEXT.values()])
    for table, columns in READ.items():
        model = Base.metadata.tables[table]
        for name, kind in columns.items():
            assert name in sql
            assert kind is None or type(model.columns[name].type) is kind, (table, name)


def report_process(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`tradectl report --json` in a fresh interpreter, which says on stderr, at exit, which
    modules of SQLAlchemy and Alembic it imported."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'alembic')), file=sys.stderr))\n"
            "from tradectl.cli import main\n"
            "main(['report', '--json'])\n")
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": url,
           "XDG_CONFIG_HOME": str(cwd / "config"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60, check=False)


def test_the_report_command_imports_no_sqlalchemy(db: Database, tmp_path: Path) -> None:
    seed_trades(db)
    done = report_process(db.url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(report_json_trades(done.stdout)) == 5
    assert done.stderr.strip().splitlines()[-1] == "[]"


def report_json_trades(stdout: str) -> list[Any]:
    import json

    trades: list[Any] = json.loads(stdout)["trades"]
    return trades


def test_report_on_a_sqlite_file_still_to_create_makes_and_migrates_it(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    done = report_process(f"sqlite:///{path}", tmp_path)
    assert done.returncode == 0, done.stderr
    assert report_json_trades(done.stdout) == []
    assert path.stat().st_mode & 0o777 == 0o600
    assert Database(f"sqlite:///{path}").schema_revision() == HEAD_REVISION


def test_report_refuses_a_postgres_database_behind_the_head_revision(
    scratch_pg: ScratchDatabases, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = scratch_pg.create()
    try:
        db = Database(url)
        db.upgrade("0002")
        with pytest.raises(DatabaseError) as by_the_other_commands:
            db.ensure_schema()
        db.dispose()
        result = Cli(monkeypatch, tmp_path)("report", env={"DATABASE_URL": url})
        done = report_process(url, tmp_path)
    finally:
        scratch_pg.drop(url)
    error = by_the_other_commands.value
    assert result.code == 5 and done.returncode == 5
    assert result.stderr.splitlines() == [f"error: {error.message} (run `tradectl db upgrade`)"]
    assert done.stderr.strip().splitlines()[-1] == "[]"  # refused without SQLAlchemy


def test_report_on_an_unreachable_postgres_is_the_same_database_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"postgresql://trader:s3cret@127.0.0.1:{closed_port()}/tradectl"
    with pytest.raises(DatabaseError) as by_the_other_commands:
        Database(url).ensure_schema()
    result = Cli(monkeypatch, tmp_path)("report", env={"DATABASE_URL": url})
    assert result.code == 5
    assert result.stderr.splitlines() == [f"error: {by_the_other_commands.value.message}"]
    assert "s3cret" not in result.stderr
