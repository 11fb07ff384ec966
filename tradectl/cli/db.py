"""`tradectl db ...`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import db_app
from tradectl.cli.wiring import database, settings


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply pending migrations. Example: tradectl db upgrade"""
    from tradectl.db.url import masked_url

    config = settings()
    db = database(config, ensure_schema=False)
    before = db.schema_revision()
    db.upgrade(revision)
    typer.echo(f"{masked_url(config.database_url)}: {before or 'empty'} -> {db.schema_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database. Example: tradectl db current"""
    from tradectl.db.models import HEAD_REVISION
    from tradectl.db.url import masked_url

    config = settings()
    revision = database(config, ensure_schema=False).schema_revision()
    state = "up to date" if revision == HEAD_REVISION else f"behind {HEAD_REVISION}"
    typer.echo(f"{masked_url(config.database_url)}: {revision or 'empty'} ({state})")


