"""PostgreSQL's named lock: a session advisory lock on a connection of its own, checkable while
held (a server restart silently frees it), naming its holder to the processes that wait."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradectl.db.locks import NamedLock, holder_text, this_process
from tradectl.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Dialect

log = logging.getLogger(__name__)

# The lock's own connection must notice a dead or unreachable server in seconds, not in the
# kernel's default two hours: libpq's connect timeout, keepalives and unacknowledged-send limit.
LOCK_CONNECT_TIMEOUT = 5
LOCK_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
                   "keepalives_count": 3, "tcp_user_timeout": 15_000}
# The server side likewise drops a lock connection whose client vanished (it frees the lock).
SERVER_KEEPALIVES = ("SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 3",
                     "SET tcp_keepalives_count = 3")
# How long reacquire() waits for the server to end our own orphaned backend.
ORPHAN_EXIT_WAIT = 5.0


class AdvisoryLock(NamedLock):
    """PostgreSQL: a session advisory lock on a connection of its own (not from the pool). The
    server frees it when that connection ends: the process died, or the server restarted."""

    def __init__(self, name: str, url: URL, dialect: Dialect,
                 describe_error: Callable[[BaseException], DatabaseError]) -> None:
        super().__init__(name)
        self.key = zlib.crc32(f"tradectl:{name}".encode())
        self._url, self._dialect, self._describe_error = url, dialect, describe_error
        self._connection: Any = None
        self._backend: tuple[int, datetime] | None = None  # (pid, start) of the holding session
        self._application = f"tradectl lock {name}: "

    def _connect(self) -> Any:
        dbapi = self._dialect.loaded_dbapi
        cargs, cparams = self._dialect.create_connect_args(self._url)
        cparams.setdefault("connect_timeout", LOCK_CONNECT_TIMEOUT)
        # Its holder's name, read by the processes that wait (pg_stat_activity)
        cparams.setdefault("application_name", f"{self._application}{this_process()}"[:63])
        if self._dialect.driver in ("psycopg", "psycopg2"):  # libpq parameters
            for option, value in LOCK_KEEPALIVES.items():
                cparams.setdefault(option, value)
        try:
            connection = dbapi.connect(*cargs, **cparams)
        except (dbapi.Error, OSError) as err:
            raise self._describe_error(err) from None
        connection.autocommit = True
        return connection

    def _query(self, sql: str, *params: Any) -> Any:
        """The first row's first column (None for a statement without rows)."""
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, params or None)
            row = cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()
        return row[0] if row else None

    def _try_acquire(self) -> bool:
        dbapi = self._dialect.loaded_dbapi
        if self._connection is None:
            self._connection = self._connect()
        try:
            if not self._query("SELECT pg_try_advisory_lock(%s)", self.key):
                self.holder = self._holder_name()
                return False
            self.held = True
            for setting in SERVER_KEEPALIVES:
                self._query(setting)
            self._backend = (self._query("SELECT pg_backend_pid()"),
                             self._query("SELECT backend_start FROM pg_stat_activity "
                                         "WHERE pid = pg_backend_pid()"))
        except (dbapi.Error, OSError) as err:
            self.release()
            raise self._describe_error(err) from None
        return True

    # Our session holds the key, granted, in this database.
    _HOLDS = ("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
              "AND pid = pg_backend_pid() AND objsubid = 1 "
              "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
              "AND ((classid::bigint << 32) | objid::bigint) = %s)")

    def verify(self) -> bool:
        if not self.held or self._connection is None or self._connection.closed:
            self.held = False
            return False
        try:
            self.held = bool(self._query(self._HOLDS, self.key))
        except Exception as err:  # any database error: not verified
            log.debug("verifying lock %s: %s", self.name, err)
            self.held = False
        return self.held

    def _take_back(self) -> bool:
        # The server may still hold it for the connection we lost (a half-open TCP link, which it
        # notices only when its keepalives give up): end that session of ours, then take it.
        orphan = self._backend
        holder = self._holder()
        if orphan is None or holder is None or holder[:2] != orphan:
            return False
        try:
            self._query("SELECT pg_terminate_backend(%s)", orphan[0])
        except Exception as err:
            log.debug("ending our orphaned lock session %s: %s", orphan[0], err)
            return False
        return self.acquire(ORPHAN_EXIT_WAIT)

    def _holder_name(self) -> str | None:
        holder = self._holder()
        name = holder[2] if holder is not None else ""
        return holder_text(name.removeprefix(self._application)) \
            if name.startswith(self._application) else None

    def _holder(self) -> tuple[int, datetime, str] | None:
        """The session holding the key (pid, start, application name), or None if none or
        unknown."""
        cursor = self._connection.cursor()
        try:
            cursor.execute(
                "SELECT a.pid, a.backend_start, a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.objsubid = 1 AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s", (self.key,))
            row = cursor.fetchone()
        except Exception as err:
            log.debug("finding the holder of lock %s: %s", self.name, err)
            return None
        finally:
            cursor.close()
        return (row[0], row[1], row[2] or "") if row else None

    def release(self) -> None:
        connection, self._connection = self._connection, None
        held, self.held = self.held, False
        if connection is None:
            return
        try:
            if held and not connection.closed:
                cursor = connection.cursor()
                cursor.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                cursor.close()
        except Exception as err:  # a dead connection: the server has freed it already
            log.debug("releasing lock %s: %s", self.name, err)
        finally:
            try:
                connection.close()
            except Exception as err:
                log.debug("closing the connection of lock %s: %s", self.name, err)
