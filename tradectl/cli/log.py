"""`tradectl log`: the audit log of events, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app, context


@app.command("log")
def log_command(
    typer_ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Most events shown.")
    ] = 50,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Only events about this symbol.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only events of this kind, e.g. refused.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log: every decision tradectl took, newest first.

    Example: tradectl log --symbol AAPL --kind order_submitted --limit 20
    """
    from tradectl.db.journal import EVENT_KINDS
    from tradectl.domain.bracket import parse_symbol
    from tradectl.errors import InputError
    from tradectl.render.log import event_log
    from tradectl.services.report.audit_log import recent_events

    ticker = parse_symbol(symbol) if symbol is not None else None
    if kind is not None and kind not in EVENT_KINDS:
        raise InputError(f"--kind {kind!r} is not a kind of event; the kinds are: "
                         f"{', '.join(sorted(EVENT_KINDS))}")
    db = context(typer_ctx).database
    event_log(recent_events(db, limit=limit, symbol=ticker, kind=kind), as_json)
