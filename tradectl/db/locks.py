"""Named cross-process locks: one holder per database at a time, freed by the server or the kernel
when the holder dies, and checkable while held (a server restart silently frees a session lock).

`Database.lock(name, wait=...)` is the entry point; it yields one of the locks below.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradectl.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Dialect

log = logging.getLogger(__name__)

LOCK_POLL = 0.05
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

_process_locks: dict[str, threading.Lock] = {}
_process_holders: dict[str, str] = {}


def this_process() -> str:
    """How a holder is named to the processes it keeps waiting: "pid 4242 on host-a" (the pid
    first: PostgreSQL cuts an application_name at 63 bytes)."""
    host = "".join(c for c in socket.gethostname() if c.isascii() and c.isprintable())
    return f"pid {os.getpid()} on {host or 'unknown host'}"


def _holder_text(raw: str) -> str | None:
    text = "".join(c for c in raw.strip() if c.isprintable())[:120]
    return text or None


class NamedLock(ABC):
    """A lock one process holds at a time. Truthy while held.

    `held` is what was last acquired or verified. `verify()` asks the server or the file system
    whether the lock is still ours; `reacquire()` tries once, without waiting, to get back a lost
    one. `release()` is best-effort: it never raises, so it never hides the error that ended the
    block holding the lock.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False
        # Who holds it, as last seen by a failed attempt ("pid 4242 on host-a"); None: unknown.
        self.holder: str | None = None

    def __bool__(self) -> bool:
        return self.held

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} held={self.held}>"

    def acquire(self, wait: float) -> bool:
        """Try until held or `wait` seconds have passed (0: try once)."""
        deadline = time.monotonic() + wait
        while not self._try_acquire():
            if time.monotonic() >= deadline:
                self.release()  # nothing held: do not keep a connection or descriptor open
                return False
            time.sleep(LOCK_POLL)
        return True

    def reacquire(self) -> bool:
        """Get a lost lock back now: True if ours again, False if another process holds it.
        On PostgreSQL an unreachable server raises DatabaseError (neither answer is known)."""
        if self.verify():
            return True
        self.release()
        if self._try_acquire() or self._take_back():
            return True
        self.release()
        return False

    def _take_back(self) -> bool:
        """After a failed attempt: get the lock from a holder known to be this process's own."""
        return False

    @abstractmethod
    def verify(self) -> bool:
        """Whether this process still holds the lock; updates `held`."""

    @abstractmethod
    def release(self) -> None:
        """Let go of the lock and its resources; never raises."""

    @abstractmethod
    def _try_acquire(self) -> bool:
        """One attempt; sets `held`."""


@contextmanager
def holding(lock: NamedLock, wait: float) -> Iterator[NamedLock]:
    """The lock, acquired (or not, after `wait` seconds) for the block, released after it."""
    lock.acquire(wait)
    try:
        yield lock
    finally:
        lock.release()


class ProcessLock(NamedLock):
    """In-memory SQLite: a lock shared by the threads of this process only."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._lock = _process_locks.setdefault(name, threading.Lock())

    def _try_acquire(self) -> bool:
        if not self.held:
            self.held = self._lock.acquire(blocking=False)
            if self.held:
                _process_holders[self.name] = f"{this_process()} (this process)"
        self.holder = None if self.held else _process_holders.get(self.name)
        return self.held

    def verify(self) -> bool:
        return self.held

    def release(self) -> None:
        if self.held:
            self.held = False
            self._lock.release()


class FileLock(NamedLock):
    """SQLite: `flock` on a file beside the database. The kernel frees it when the process dies.

    The file is never deleted by tradectl; if someone deletes or replaces it, another process can
    lock the new file, so a lock is ours only while the path still names the inode we locked.
    """

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path
        self._fd: int | None = None

    def _try_acquire(self) -> bool:
        import fcntl

        for _ in range(3):  # the file replaced between open and flock: lock the new one
            if self._fd is None:
                try:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                except OSError as err:
                    raise DatabaseError(f"cannot open the lock file {self.path}: "
                                        f"{err.strerror or err}") from None
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.holder = self._written()
                return False
            self.held = True
            if self.verify():
                self._write(this_process())
                return True
            self.release()
        return False

    def _write(self, holder: str) -> None:
        """The holder's name in the file, for the processes that wait (only the holder writes)."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{holder}\n".encode(), 0)
        except OSError as err:  # a full disk: the lock holds all the same
            log.debug("naming the holder in %s: %s", self.path, err)

    def _written(self) -> str | None:
        assert self._fd is not None
        try:
            return _holder_text(os.pread(self._fd, 256, 0).decode("utf-8", "replace"))
        except OSError as err:
            log.debug("reading the holder of %s: %s", self.path, err)
            return None

    def verify(self) -> bool:
        if self.held and self._fd is not None:
            try:
                ours, named = os.fstat(self._fd), os.stat(self.path)
                self.held = (ours.st_dev, ours.st_ino) == (named.st_dev, named.st_ino)
            except OSError:
                self.held = False
        return self.held

    def release(self) -> None:
        self.held = False
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)  # frees the flock
            except OSError as err:
                log.debug("closing lock file %s: %s", self.path, err)


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
        return _holder_text(name.removeprefix(self._application)) \
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
