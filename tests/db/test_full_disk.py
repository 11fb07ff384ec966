"""A full disk under a SQLite database (tests/support/disk.py): a clear DatabaseError, nothing
half-written, and the database works again once there is room."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.disk import full_disk
from tradectl.db.session import Database
from tradectl.errors import DatabaseError


def test_a_write_on_a_full_disk_is_a_database_error_and_works_again_after() -> None:
    with full_disk("4M") as disk:
        db = Database(f"sqlite:///{disk.path / 'tradectl.db'}")
        db.upgrade()
        disk.fill()
        with pytest.raises(DatabaseError, match="disk is full"), db.transaction() as session:
            session.execute(text("INSERT INTO events (kind, message, created_at) "
                                 "VALUES ('note', :m, '2026-11-25')"), {"m": "x" * 200_000})
        disk.free()
        with db.transaction() as session:
            session.execute(text("INSERT INTO events (kind, message, created_at) "
                                 "VALUES ('note', 'room again', '2026-11-25')"))
        with db.transaction() as session:
            assert session.execute(text("SELECT message FROM events")).scalars().all() == [
                "room again"]
        db.dispose()
