"""Direct ORM access for tests that seed or inspect rows the product only writes through its
unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from tradectl.db.session import Database


@contextmanager
def orm_session(db: Database) -> Iterator[Session]:
    """A session committed when the block ends (rolled back on an error)."""
    with db._sessions() as session, session.begin():
        yield session
