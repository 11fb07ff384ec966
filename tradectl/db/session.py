"""Engine, transactions, cross-process locks and migrations.

SQLite gets WAL, a busy timeout, foreign keys and `BEGIN IMMEDIATE` transactions (a read that
turns into a write never fails half-way), so `watch` and `open` can run side by side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from tradectl.db.advisory_lock import AdvisoryLock
from tradectl.db.locks import FileLock, NamedLock, ProcessLock, holding
from tradectl.db.plain import HEAD_REVISION, Rows, describe_db_error, driver_errors, schema_behind
from tradectl.db.url import masked_url, normalize_url, unusable_url, usable_url
from tradectl.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.orm import Session, sessionmaker

    from tradectl.db.journal import Journal

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY = "tradectl_read_only"  # execution option: a SQLite transaction that takes no write lock


def _sqlite_path(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite DATABASE_URL names (None: another backend, or in memory)."""
    parsed = usable_url(url)
    return _sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None


def make_engine(url: str, *, create_private: bool = False) -> Engine:
    parsed = usable_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url, _sqlite_path(parsed), create_private)
    try:
        return _make_engine(parsed)
    except (ArgumentError, ValueError) as err:  # e.g. a query argument the driver rejects
        raise unusable_url(url, err) from None


def _prepare_sqlite_file(url: str, path: Path | None, create_private: bool) -> None:
    """A SQLite database is created private wherever it is (file 0600: it holds the trading
    record; SQLite gives its -wal and -shm files the database file's mode), and tradectl's own
    default one in a 0700 directory. A DATABASE_URL naming a directory that does not exist is a
    mistake (a typo would start an empty record elsewhere), not something to create."""
    if path is None:
        return
    if create_private:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise ConfigError(f"DATABASE_URL ({masked_url(url)}): the directory {path.parent} does "
                          "not exist; create it, or fix the path")
    if not path.exists():
        # a read-only or full disk: SQLite says so, as a DatabaseError, when it is used
        with suppress(OSError):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def sqlite_files(url: str) -> list[Path]:
    """A SQLite database's files that exist (the database, its -wal and -shm); none for
    another database."""
    try:
        parsed = normalize_url(url)
    except Exception:
        return []
    path = _sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is None:
        return []
    return [p for p in (path, path.with_name(f"{path.name}-wal"),
                        path.with_name(f"{path.name}-shm")) if p.exists()]


def _make_engine(parsed: URL) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions begin in _begin below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            read_only = connection.get_execution_options().get(READ_ONLY, False)
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})


class Database:
    """One database: its engine, short transactions, named locks and schema migrations."""

    def __init__(self, url: str, *, create_private: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, create_private=create_private)
        self.dialect = self.engine.dialect.name

    @cached_property
    def _sessions(self) -> sessionmaker[Session]:
        # The ORM is imported when a command first needs it: `report` reads through Core alone.
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()

    close = dispose

    @contextmanager
    def transaction(self) -> Iterator[Journal]:
        """A unit of work: named reads and writes, committed only by `journal.commit()`; leaving
        the block without it rolls back. Database faults become DatabaseError. On SQLite the
        transaction takes the write lock at once (BEGIN IMMEDIATE): keep it short, and never
        wait on the network inside it."""
        with self._unit_of_work(read_only=False) as journal:
            yield journal

    @contextmanager
    def read(self) -> Iterator[Journal]:
        """A unit of work that only reads: on SQLite it takes no write lock, so readers (`status`,
        `log`) never hold up a writer such as the emergency stop's latch. Nothing it changes on
        a row is ever written (no autoflush; the end rolls back): a dry run judges with the
        real command's own functions, which bring a row in line with Alpaca's orders."""
        with self._unit_of_work(read_only=True) as journal:
            yield journal

    @contextmanager
    def _unit_of_work(self, *, read_only: bool) -> Iterator[Journal]:
        from tradectl.db.journal import Journal

        with self._database_errors(), self._sessions() as session:
            if read_only:
                session.autoflush = False
                session.connection(execution_options={READ_ONLY: True})
            yield Journal(session)
            # closing the session rolls back what was not committed (and, unlike rollback(),
            # leaves the loaded objects readable)

    @contextmanager
    def read_rows(self) -> Iterator[Rows]:
        """Plain rows read on the driver's own connection, as db/plain.py reads them (the report,
        db/report_rows.py): like read(), no write lock on SQLite, and nothing kept (the end
        rolls back)."""
        with self._database_errors(), self.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True}).begin()
            try:
                yield Rows(connection.connection.driver_connection, self.dialect)
            except driver_errors() as err:
                raise describe_db_error(self.url, err) from None

    @contextmanager
    def _database_errors(self) -> Iterator[None]:
        """Database faults as DatabaseError."""
        try:
            yield
        except (DBAPIError, SQLAlchemyError) as err:
            if isinstance(err, DBAPIError) or "connect" in str(err):
                raise describe_db_error(self.url, err) from None
            raise

    # -- cross-process locks ---------------------------------------------------------------

    @contextmanager
    def lock(self, name: str, *, wait: float) -> Iterator[NamedLock]:
        """A named lock held by this process until the block ends, freed by the OS or the
        database if the process dies. Yields a `NamedLock` (tradectl/db/locks.py), falsy if it
        could not be had within `wait` seconds; `verify()` and `reacquire()` check it while held.

        Postgres: a session advisory lock on a dedicated connection. SQLite: flock on a file
        beside the database. In-memory SQLite: a process-local lock.
        """
        with holding(self._named_lock(name), wait) as held:
            yield held

    def _named_lock(self, name: str) -> NamedLock:
        if self.dialect == "postgresql":
            return AdvisoryLock(name, self.engine.url, self.engine.dialect,
                                partial(describe_db_error, self.url))
        path = _sqlite_path(normalize_url(self.url))
        if path is None:
            return ProcessLock(name)
        return FileLock(name, path.with_name(f"{path.name}.{name}.lock"))

    # -- schema ----------------------------------------------------------------------------

    def _empty(self) -> bool:
        try:
            with self.engine.connect() as connection:
                return not inspect(connection).get_table_names()
        except DBAPIError as err:
            raise describe_db_error(self.url, err) from None

    def schema_revision(self) -> str | None:
        """The stored Alembic revision, read without importing Alembic."""
        try:
            with self.engine.connect() as connection:
                if not inspect(connection).has_table("alembic_version"):
                    return None
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError as err:
            raise describe_db_error(self.url, err) from None

    def ensure_schema(self) -> None:
        """The schema at the head revision: SQLite is migrated on the fly, and so is an empty
        PostgreSQL database (no tables at all: nothing to lose); a PostgreSQL database at an
        older revision waits for `tradectl db upgrade`, run when its owner chooses."""
        revision = self.schema_revision()
        if revision == HEAD_REVISION:
            return
        if self.dialect == "sqlite" or (revision is None and self._empty()):
            self.upgrade()
            return
        raise schema_behind(self.url, revision)

    def upgrade(self, revision: str = "head") -> None:
        from alembic import command

        self._run_alembic(command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        from alembic import command

        self._run_alembic(command.downgrade, revision)

    def _run_alembic(self, action: Any, revision: str) -> None:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(migrations_dir()))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                action(config, revision)
        except DBAPIError as err:
            raise describe_db_error(self.url, err) from None


def migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package (wheel), or the source tree's alembic/."""
    package_dir = Path(__file__).resolve().parent.parent
    shipped = package_dir / "_alembic"
    return shipped if shipped.is_dir() else package_dir.parent / "alembic"
