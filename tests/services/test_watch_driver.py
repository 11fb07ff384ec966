"""Who drives `watch`'s stops (services/watch/watch_driver.py), on process locks: a stand-by
takes over when the driver lets go, a driver that lost its lock to another stands by, and one
that cannot check its lock (the database unreachable) keeps driving and keeps a stand-by
standing by."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradectl.db.locks import NamedLock, ProcessLock
from tradectl.errors import DatabaseError
from tradectl.services.watch.watch_driver import DriverSeat


@pytest.fixture
def name(request: pytest.FixtureRequest) -> Iterator[str]:
    yield f"seat-{request.node.name}"


def test_a_stand_by_takes_over_when_the_driver_lets_go_and_the_old_one_stands_by(
    name: str,
) -> None:
    first, second = ProcessLock(name), ProcessLock(name)
    assert first.acquire(0) and not second.acquire(0)
    driver, standby = DriverSeat(first, drives=True), DriverSeat(second, drives=True)
    assert (driver.role, standby.role) == ("driver", "standby")
    assert standby.driver is not None and "(this process)" in standby.driver
    assert driver.driver is None
    assert standby.check() == [] and standby.role == "standby"

    first.release()  # the driver's lock is gone (its session lost)
    (took,) = standby.check()
    assert "took over" in took and standby.role == "driver" and standby.confirm()
    (gave,) = driver.check()
    assert "stands by" in gave and driver.role == "standby" and not driver.confirm()
    second.release()


class Unreachable(NamedLock):
    """A held lock whose server stopped answering."""

    def __init__(self) -> None:
        super().__init__("unreachable")
        self.held = True

    def verify(self) -> bool:
        self.held = False
        return False

    def reacquire(self) -> bool:
        raise DatabaseError("database unreachable")

    def _try_acquire(self) -> bool:
        raise DatabaseError("database unreachable")

    def release(self) -> None:
        self.held = False


def test_without_its_database_the_driver_keeps_driving_and_a_stand_by_stands_by() -> None:
    driver = DriverSeat(Unreachable(), drives=True)
    assert driver.check() == [] and driver.role == "driver" and driver.confirm()
    lock = Unreachable()
    lock.held = False
    standby = DriverSeat(lock, drives=False)
    assert standby.check() == [] and standby.role == "standby"


def test_without_a_lock_the_role_is_fixed() -> None:
    assert DriverSeat(None, drives=False).role == "read_only"
    assert DriverSeat(None, drives=True).check() == []
    assert DriverSeat(None, drives=True).confirm()
