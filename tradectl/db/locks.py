"""Named cross-process locks: one holder per database at a time, freed by the server or the kernel
when the holder dies, and checkable while held (a server restart silently frees a session lock).

`Database.lock(name, wait=...)` is the entry point; it yields one of the locks below, or on
PostgreSQL an advisory lock (db/advisory_lock.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tradectl.errors import DatabaseError

log = logging.getLogger(__name__)

LOCK_POLL = 0.05

_process_locks: dict[str, threading.Lock] = {}
_process_holders: dict[str, str] = {}


def this_process() -> str:
    """How a holder is named to the processes it keeps waiting: "pid 4242 on host-a" (the pid
    first: PostgreSQL cuts an application_name at 63 bytes)."""
    host = "".join(c for c in socket.gethostname() if c.isascii() and c.isprintable())
    return f"pid {os.getpid()} on {host or 'unknown host'}"


def holder_text(raw: str) -> str | None:
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
            return holder_text(os.pread(self._fd, 256, 0).decode("utf-8", "replace"))
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
