"""The database layer on SQLite and Postgres: migrations, exact money, UTC times, locks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from tests.conftest import ScratchDatabases
from tests.support.db import orm_session
from tradectl.db.models import HEAD_REVISION, Base, Cycle, Position
from tradectl.db.session import Database, migrations_dir
from tradectl.db.url import masked_url
from tradectl.errors import DatabaseError


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty (unmigrated) database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    scratch: ScratchDatabases = request.getfixturevalue("scratch_pg")
    url = scratch.create()
    yield url
    scratch.drop(url)


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_upgrade_from_empty_to_head_and_back(empty_url: str) -> None:
    db = Database(empty_url)
    assert db.schema_revision() is None
    db.upgrade()
    assert db.schema_revision() == HEAD_REVISION
    assert {"cycles", "positions", "events"} <= set(inspect(db.engine).get_table_names())
    db.downgrade("base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    db.dispose()


def test_models_and_migrations_agree(empty_url: str) -> None:
    """What `alembic check` does: autogenerate against the migrated schema finds nothing."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(empty_url)
    db.upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    db.dispose()


def test_ensure_schema_migrates_sqlite_by_itself(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.ensure_schema()
    assert db.schema_revision() == HEAD_REVISION
    db.downgrade("0002")  # an older SQLite database is brought up to date too
    db.ensure_schema()
    assert db.schema_revision() == HEAD_REVISION
    db.dispose()


@pytest.mark.postgres
def test_an_empty_postgres_database_gets_its_schema_an_older_one_waits(
    scratch_pg: ScratchDatabases,
) -> None:
    url = scratch_pg.create()
    try:
        db = Database(url)
        db.ensure_schema()  # no tables at all: nothing to lose
        assert db.schema_revision() == HEAD_REVISION
        db.downgrade("0002")
        with pytest.raises(DatabaseError, match="tradectl needs") as raised:
            db.ensure_schema()  # an older revision: its owner chooses when to migrate
        assert raised.value.hint == "run `tradectl db upgrade`"
        db.dispose()
    finally:
        scratch_pg.drop(url)


def test_sqlite_uses_wal_and_a_busy_timeout(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        busy_timeout = connection.execute(text("PRAGMA busy_timeout")).scalar()
        assert busy_timeout is not None and busy_timeout >= 5000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_money_round_trips_exactly(db: Database) -> None:
    awkward = Decimal("123456789.123456")  # more digits than a float keeps exactly
    with orm_session(db) as session:
        cycle = Cycle(status="active")
        session.add(cycle)
        session.flush()
        session.add(Position(
            cycle_id=cycle.id, symbol="AAPL", side="buy", qty=Decimal(3), stop_loss=Decimal("0.1"),
            take_profit=Decimal("0.3"), status="open", client_order_id="c1",
            realized_pl=awkward, filled_avg_price=Decimal("0.0001"),
        ))
    with orm_session(db) as session:
        position = session.scalars(select(Position)).one()
        assert position.realized_pl == awkward
        assert position.filled_avg_price == Decimal("0.0001")
        three = position.stop_loss * 3
        assert three - position.take_profit == 0  # exact, unlike 0.1 * 3 - 0.3 in floats
        assert position.created_at.tzinfo is not None
        assert abs(position.created_at - datetime.now(UTC)).total_seconds() < 60


def test_money_refuses_floats(db: Database) -> None:
    with pytest.raises(Exception, match="finite Decimal"), orm_session(db) as session:
        session.add(Cycle(status="active"))
        session.flush()
        session.add(Position(cycle_id=1, symbol="A", side="buy", qty=1.5,
                             stop_loss=Decimal(1), take_profit=Decimal(2), status="open",
                             client_order_id="c2"))
        session.flush()


def test_a_lock_is_held_by_one_holder_at_a_time(db: Database) -> None:
    events: list[str] = []
    with db.lock("cycle", wait=1) as first:
        assert first

        def contender() -> None:
            other = Database(db.url)
            with other.lock("cycle", wait=0) as second:
                events.append(f"immediate:{bool(second)}")
            with other.lock("cycle", wait=5) as third:
                events.append(f"waited:{bool(third)}")
            other.dispose()

        thread = threading.Thread(target=contender)
        thread.start()
        time.sleep(0.3)
        events.append("released")
    thread.join(10)
    assert events == ["immediate:False", "released", "waited:True"]


def test_unreachable_postgres_is_a_clear_database_error() -> None:
    db = Database("postgresql://nobody:pw@127.0.0.1:1/nothing")
    with pytest.raises(DatabaseError) as raised:
        db.schema_revision()
    message = str(raised.value)
    assert "127.0.0.1:1" in message and "pw" not in message and "\n" not in message


def test_masked_url_hides_the_password() -> None:
    assert "secret" not in masked_url("postgresql://u:secret@h/db")
