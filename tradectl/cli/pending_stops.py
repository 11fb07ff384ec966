"""Emergency stops left in the spool are finished by the next command that runs (`status`,
`close`, `open`; `watch` and `halt` do it themselves): a `halt` killed mid-flight is completed
from Alpaca's orders, a stop made without the database is recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from tradectl.cli.app import Context


def finish_pending_stops(ctx: Context) -> None:
    """Each stop finished gets a line on stderr (stdout stays the command's own)."""
    db, adapter, spool = ctx.database, ctx.broker, ctx.spool
    if spool is None or not spool.has_pending():
        return
    from tradectl.errors import DatabaseError
    from tradectl.services.halt.offline_stop import complete_offline_stops

    try:
        lines = complete_offline_stops(db, spool, adapter, ctx.channels, clock=ctx.clock)
    except DatabaseError as err:  # the command itself meets the same fault and says so
        typer.echo(f"tradectl: a spooled emergency stop waits for the database: {err.message}",
                   err=True)
        return
    for line in lines:
        typer.echo(f"tradectl: {line}", err=True)
