"""A full disk under a SQLite database (tests/support/disk.py): a clear DatabaseError, nothing
half-written, and the database works again once there is room."""

from __future__ import annotations

import pytest

from tests.support.disk import full_disk
from tradectl.db.session import Database
from tradectl.errors import DatabaseError


def test_a_write_on_a_full_disk_is_a_database_error_and_works_again_after() -> None:
    with full_disk("4M") as disk:
        db = Database(f"sqlite:///{disk.path / 'tradectl.db'}")
        db.upgrade()
        disk.fill()
        with pytest.raises(DatabaseError, match="disk is full"), db.transaction() as journal:
            journal.record("note", "x" * 200_000)
            journal.commit()
        disk.free()
        with db.transaction() as journal:
            journal.record("note", "room again")
            journal.commit()
        with db.read() as journal:
            assert [e.message for e, _ in journal.recent_events(10)] == ["room again"]
        db.dispose()
