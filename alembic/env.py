"""Alembic environment: metadata from tradectl.db.models; the connection from tradectl (when
`tradectl db upgrade` runs it) or a URL from DATABASE_URL / alembic.ini (the alembic CLI)."""

from __future__ import annotations

import os

from sqlalchemy.engine import Connection

from alembic import context
from tradectl.db.models import Base

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DATABASE_URL (or sqlalchemy.url in alembic.ini)")
    from tradectl.db.session import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
            connection.commit()
    finally:
        engine.dispose()


main()
