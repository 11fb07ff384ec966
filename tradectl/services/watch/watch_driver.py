"""Who drives `watch`'s automatic stops (the loss-limit stop, restoring protection): the one
`watch` that holds the database's driver lock. Every other `watch` stands by and tries for the
lock on every tick, so one takes over within an interval of the driver being gone (exited,
killed, or its database session lost); a driver that finds its lock gone takes it back, or
stands by if another took it. Two never drive at once while the database answers.

A driver that cannot check its lock (its database unreachable) keeps driving: the loss-limit
stop needs no database, and no other `watch` can take the lock through a database that is down.
"""

from __future__ import annotations

from typing import Literal

from tradectl.db.locks import NamedLock
from tradectl.errors import DatabaseError

Role = Literal["driver", "standby", "read_only"]


class DriverSeat:
    """This watch's role. Without a lock the role is fixed (`--read-only`, or a test's driver)."""

    def __init__(self, lock: NamedLock | None, *, drives: bool) -> None:
        self.lock = lock
        self.drives = bool(lock) if lock is not None else drives
        self._notes: list[str] = []

    @property
    def role(self) -> Role:
        if self.drives:
            return "driver"
        return "standby" if self.lock is not None else "read_only"

    @property
    def driver(self) -> str | None:
        """Who drives, when this one stands by and the holder is known ("pid 4242 on host-a")."""
        return self.lock.holder if self.lock is not None and not self.drives else None

    def check(self) -> list[str]:
        """Once a tick, the database's back-off or not (the lock has a connection of its own):
        the driver verifies its lock, a stand-by tries for it. Returns what changed, to show
        and record."""
        lock = self.lock
        if lock is not None:
            try:
                if self.drives:
                    self._verify(lock)
                elif lock.acquire(0):
                    self.drives = True
                    self._notes.append("this `tradectl watch` took over driving automatic stops "
                                       "(the driver before it is gone)")
            except DatabaseError:
                pass  # unknown: keep the role; nobody takes the lock through a dead database
        notes, self._notes = self._notes, []
        return notes

    def confirm(self) -> bool:
        """Checked again right before pulling a stop or restoring protection. A lock that cannot
        be checked (the database is down) still counts: no other `watch` can take it meanwhile."""
        if self.lock is None or not self.drives:
            return self.drives
        try:
            self._verify(self.lock)
        except DatabaseError:
            return True
        return self.drives

    def _verify(self, lock: NamedLock) -> None:
        if lock.verify():
            return
        if lock.reacquire():
            self._notes.append("the driver lock was lost (database restart?) and taken back")
            return
        self.drives = False
        self._notes.append(f"another `tradectl watch` ({lock.holder or 'holder unknown'}) took "
                           "the driver lock: this one stands by, does not pull the emergency "
                           "stop, and takes over if that one stops")
