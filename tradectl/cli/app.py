"""The Typer application and its global options. Commands live in sibling modules."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl import __version__

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
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Open Alpaca bracket positions, watch the day's risk, pull the emergency stop."""
