"""`day_peaks` on both backends: the peak only rises, exactly (money as Decimal), and two
writers racing on the day's first row both succeed, the higher peak kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

# the fixture: an empty database on each backend
from tests.db.test_db import empty_url as empty_url
from tradectl.db.session import Database

DAY = date(2026, 11, 30)
AT = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


@pytest.fixture
def db(empty_url: str) -> Iterator[Database]:
    database = Database(empty_url)
    database.upgrade()
    yield database
    database.dispose()


def raise_peak(db: Database, equity: str, source: str = "account") -> None:
    with db.transaction() as journal:
        journal.raise_day_peak(DAY, Decimal(equity), AT, source)
        journal.commit()


def peak(db: Database) -> tuple[Decimal, datetime] | None:
    with db.read() as journal:
        return journal.day_peak(DAY)


def test_the_peak_only_rises_and_reads_back_exactly(db: Database) -> None:
    assert peak(db) is None
    raise_peak(db, "100600.07", "history")
    raise_peak(db, "99999.99")  # as text on SQLite, "99999.99" > "100600.07": compared as money
    assert peak(db) == (Decimal("100600.07"), AT)
    raise_peak(db, "100600.08")
    assert peak(db) == (Decimal("100600.08"), AT)


def test_two_writers_of_the_days_first_peak_keep_the_higher(db: Database) -> None:
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(equity: str) -> None:
        try:
            start.wait(5)
            raise_peak(db, equity)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(e,)) for e in ("100500", "100700")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert peak(db) == (Decimal("100700"), AT)
