"""The Typer application, its global options, and the one Context every command is handed
(defined in cli/context.py). Commands live in sibling modules."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl import __version__
from tradectl.cli.context import Context

__all__ = ["Context", "JsonOption", "app", "context", "db_app"]


def context(typer_ctx: typer.Context) -> Context:
    """The Context of this run, as the root command made it (or as a test handed it in)."""
    return typer_ctx.ensure_object(Context)


app = typer.Typer(
    name="tradectl",
    help="Open Alpaca bracket positions, watch the day's risk, pull the emergency stop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: apply or inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tradectl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    typer_ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Open Alpaca bracket positions, watch the day's risk, pull the emergency stop."""
    del version  # answered by its eager callback
    context(typer_ctx)  # one per run, its parts built on first use
