"""Database faults: a lock held past the busy timeout, Postgres dropping connections, Postgres
unreachable. Clear errors naming the database, and no half-written rows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import PG_ADMIN_URL, Cli, _empty_pg, _pg_connect, broker_env, count_rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db import session as db_session
from tradectl.db.models import Event, Position
from tradectl.db.session import Database
from tradectl.services.watch.watch import Watcher

OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")




def test_a_sqlite_lock_held_past_the_busy_timeout_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str
) -> None:
    Database(sqlite_url).upgrade()
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_MS", 300)
    cli = Cli(monkeypatch, tmp_path)
    cli.env["DATABASE_URL"] = sqlite_url
    holder = Database(sqlite_url)
    with holder.engine.connect() as connection:
        connection.execute(text("INSERT INTO cycles (status, started_at) "
                                "VALUES ('active', '2026-11-25 00:00:00')"))  # holds the lock
        result = cli(*OPEN)
        connection.rollback()
    holder.dispose()
    assert result.code == 5, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "database sqlite:///" in line and "locked" in line
    assert count_rows(sqlite_url, Position) == 0 and count_rows(sqlite_url, Event) == 0


def test_an_unreachable_postgres_names_the_database(cli: Cli) -> None:
    result = cli(*OPEN, env={"DATABASE_URL": "postgresql://trader:s3cret@127.0.0.1:1/tradectl"})
    assert result.code == 5
    (line,) = result.stderr.strip().splitlines()
    assert "127.0.0.1:1/tradectl" in line and "s3cret" not in line


def test_watch_survives_postgres_dropping_its_connections(
    _shared_pg_url: str, fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tradectl.broker.alpaca import AlpacaBroker

    _empty_pg(_shared_pg_url)
    trader = Cli(monkeypatch, tmp_path)
    trader.env.update(broker_env(fake), DATABASE_URL=_shared_pg_url)
    assert trader(*OPEN).code == 0
    db = Database(_shared_pg_url)
    broker = AlpacaBroker(api_key=fake.api_key, secret_key=fake.secret_key, base_url=fake.url,
                          data_url=fake.url)
    watcher = Watcher(db, broker, None, daily_loss_limit=Decimal(2000), drives_stops=False)
    assert watcher.tick().error is None
    name = _shared_pg_url.rsplit("/", 1)[1]
    with _pg_connect(PG_ADMIN_URL) as admin:  # drop every connection, as a restart would
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    result = watcher.tick()
    assert result.error is None and result.positions[0].status == "open"
    db.dispose()


@pytest.mark.parametrize("url", ["postgresql://u:pw@host:abc/db", "nosuchdb://x/y",
                                 "sqlite+nosuchdriver:///x.db"])
def test_an_unusable_database_url_is_bad_input_not_a_traceback(cli: Cli, url: str) -> None:
    for args in (OPEN, ("status",), ("watch", "--once"), ("halt", "--reason", "x")):
        result = cli(*args, env={"DATABASE_URL": url})
        assert result.code == 2, (args, result.output)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: DATABASE_URL") and "pw" not in line
