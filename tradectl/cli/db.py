"""`tradectl db ...`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, context, db_app


@db_app.command("upgrade")
def db_upgrade(
    typer_ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    as_json: JsonOption = False,
) -> None:
    """Apply pending migrations. Example: tradectl db upgrade"""
    from tradectl.db.models import HEAD_REVISION
    from tradectl.db.url import masked_url
    from tradectl.render.db import schema_report

    ctx = context(typer_ctx)
    db = ctx.database_as_is
    before = db.schema_revision()
    db.upgrade(revision)
    schema_report(masked_url(ctx.settings.database_url), db.schema_revision(), HEAD_REVISION,
                  as_json, upgraded_from=before, upgraded=True)


@db_app.command("current")
def db_current(typer_ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the schema revision of the database. Example: tradectl db current"""
    from tradectl.db.models import HEAD_REVISION
    from tradectl.db.url import masked_url
    from tradectl.render.db import schema_report

    ctx = context(typer_ctx)
    revision = ctx.database_as_is.schema_revision()
    schema_report(masked_url(ctx.settings.database_url), revision, HEAD_REVISION, as_json)
