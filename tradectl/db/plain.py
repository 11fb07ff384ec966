"""The database through its own DB-API driver (stdlib `sqlite3`, psycopg), without SQLAlchemy:
`report` reads 10,000 trades in less time than `import sqlalchemy.orm` takes (issue 31).

Also what the SQLAlchemy layer shares with it, so both read and fail alike: the schema's head
revision, money and times as stored, and a driver's error as a DatabaseError.

`open_plain()` opens a database already at the head revision, from the URL forms it reads the way
SQLAlchemy does; anything else (a SQLite file still to create or migrate, a query option, another
backend, an empty PostgreSQL database) is left to the full layer (db/session.py), which creates,
migrates or refuses as it always has."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from tradectl.errors import DatabaseError
from tradectl.masks import masked_url, scrubbed

# Head of the migration chain. Start-up compares it with the stored revision without importing
# Alembic; tests/db/test_db.py checks it against alembic/versions.
HEAD_REVISION = "0009"

SQLITE_BUSY_TIMEOUT_S = 10.0  # as db/session.py's engine waits for a writer's lock
PG_CONNECT_TIMEOUT_S = 5

# `[driver]://[userinfo@]host...`: the PostgreSQL forms normalize_url (db/url.py) reads as psycopg's
_PG_URL = re.compile(r"(?:postgres|postgresql|postgresql\+psycopg)://(?P<rest>[^@]*@?[^@]*)")
_PG_PORT = re.compile(r"^(?:[^@/]*@)?[^@/:?]*(?::(?P<port>[^/?]*))?")
_SQLITE_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?%#]+)")


@lru_cache(maxsize=1 << 14)  # a book repeats its prices: `watch` reads every row every tick
def stored_money(text: str) -> Decimal:
    """A stored amount (SQLite: its decimal text; PostgreSQL: NUMERIC(20, 6)) read back exactly.
    Keyed by text, not by Decimal: -0 == 0, and the sign must come back as it went in. Drops the
    trailing zeros NUMERIC(20, 6) pads with, so 145 reads back as 145."""
    exact = Decimal(text)
    return exact.quantize(Decimal(1)) if exact == exact.to_integral() else exact.normalize()


def stored_time(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime: SQLite keeps it as zone-less UTC text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_time(value: datetime) -> str:
    """An aware datetime as SQLite stores it (SQLAlchemy's text form), for comparisons."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def describe_db_error(url: str, err: BaseException) -> DatabaseError:
    """A database fault in one line naming the database (masked), the driver's own words."""
    orig = getattr(err, "orig", None) or err
    first_line = scrubbed((str(orig).strip().splitlines() or [type(orig).__name__])[0], url)
    hint = None
    if "locked" in first_line:
        hint = "another tradectl process holds the database; try again"
    return DatabaseError(f"database {masked_url(url)}: {first_line}", hint=hint)


def schema_behind(url: str, revision: str | None) -> DatabaseError:
    return DatabaseError(
        f"database {masked_url(url)} is at schema revision {revision or 'none'}, "
        f"tradectl needs {HEAD_REVISION}",
        hint="run `tradectl db upgrade`",
    )


def driver_errors() -> tuple[type[BaseException], ...]:
    """The DB-API error classes of the drivers loaded (psycopg's only if it was imported)."""
    import sqlite3

    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)


class Rows:
    """Reads on one DB-API connection, the SQL written once with `?` placeholders."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self.connection = connection
        self.dialect = dialect

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect != "sqlite":
            sql = sql.replace("?", "%s")  # psycopg's placeholder; no `?` is ever literal here
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def revision(self) -> str | None:
        """The stored Alembic revision (None: no alembic_version table)."""
        exists = ("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                  if self.dialect == "sqlite" else
                  "SELECT 1 WHERE to_regclass('alembic_version') IS NOT NULL")
        if not self.fetch(exists):
            return None
        found = self.fetch("SELECT version_num FROM alembic_version")
        return str(found[0][0]) if found else None


class ReadsRows(Protocol):
    """What `report` reads from: this module's PlainDatabase, or db/session.py's Database."""

    def read_rows(self) -> AbstractContextManager[Rows]: ...


class PlainDatabase:
    """A database at the head revision, on one connection of its own driver, for reads only."""

    def __init__(self, url: str, connection: Any, dialect: str, path: Path | None) -> None:
        self.url = url
        self.dialect = dialect
        self.path = path
        self._connection = connection

    def files(self) -> list[Path]:
        """A SQLite database's files that exist (the database, its -wal and -shm)."""
        if self.path is None:
            return []
        path = self.path
        return [p for p in (path, path.with_name(f"{path.name}-wal"),
                            path.with_name(f"{path.name}-shm")) if p.exists()]

    @contextmanager
    def read_rows(self) -> Iterator[Rows]:
        """One read transaction (on SQLite a deferred BEGIN: no write lock), rolled back."""
        with self._errors():
            if self.dialect == "sqlite":
                self._connection.execute("BEGIN")
            try:
                yield Rows(self._connection, self.dialect)
            finally:
                self._connection.rollback()

    def close(self) -> None:
        self._connection.close()

    dispose = close

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except driver_errors() as err:
            raise describe_db_error(self.url, err) from None


def open_plain(url: str) -> PlainDatabase | None:
    """The database DATABASE_URL names, opened with its own driver, if it is one this module
    reads as SQLAlchemy would and its schema is at the head revision. None: leave it to the full
    layer. A PostgreSQL database at another revision is refused here as the full layer does; an
    unreachable one is the same DatabaseError."""
    if (sqlite := _SQLITE_FILE.fullmatch(url)) is not None:
        path = Path(sqlite["path"])
        if path.name == ":memory:" or path.name.startswith("file:") or not path.is_file():
            return None  # to create (privately) and migrate, or not a file: the full layer
        return _checked(url, *_open_sqlite(path), path)
    if (pg := _PG_URL.fullmatch(url)) is None:
        return None
    port = _PG_PORT.match(pg["rest"])
    if port is None or not (port["port"] or "0").isdigit():
        return None  # SQLAlchemy says what is wrong with it (ConfigError)
    try:
        import psycopg
    except ImportError:
        return None  # the full layer says which driver to install
    try:
        connection = psycopg.connect(f"postgresql://{pg['rest']}",
                                     connect_timeout=PG_CONNECT_TIMEOUT_S)
    except psycopg.ProgrammingError:
        return None  # a conninfo libpq reads otherwise than SQLAlchemy: the full layer
    except psycopg.Error as err:
        raise describe_db_error(url, err) from None
    return _checked(url, connection, "postgresql", None)


def _open_sqlite(path: Path) -> tuple[Any, str]:
    import sqlite3

    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    return connection, "sqlite"


def _checked(url: str, connection: Any, dialect: str, path: Path | None) -> PlainDatabase | None:
    db = PlainDatabase(url, connection, dialect, path)
    try:
        with db.read_rows() as rows:
            revision = rows.revision()
    except DatabaseError:
        db.close()
        raise
    if revision == HEAD_REVISION:
        return db
    db.close()
    if dialect == "postgresql" and revision is not None:
        raise schema_behind(url, revision)
    return None  # SQLite is migrated on the fly, an empty PostgreSQL database too
