"""`tradectl check-alpaca`: can tradectl trade? Every check with its likely cause and fix."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app, context


@app.command("check-alpaca")
def check_alpaca_command(
    typer_ctx: typer.Context,
    symbol: Annotated[
        str, typer.Option("--symbol", help="Symbol whose latest trade is read.")
    ] = "AAPL",
    as_json: JsonOption = False,
) -> None:
    """Check the settings, the Alpaca account, the market clock, market data and the database.

    Read-only: never sends an order. Exit 0 when every check passes (warnings allowed), 2 for a
    configuration error, 4 when an Alpaca check fails (missing keys included), 5 when only the
    database check fails.

    Example: tradectl check-alpaca --symbol MSFT
    """
    from tradectl.domain.bracket import parse_symbol
    from tradectl.errors import ConfigError
    from tradectl.render.check import check_report
    from tradectl.services.check.check_alpaca import check_alpaca, configuration_failed

    ticker = parse_symbol(symbol)
    ctx = context(typer_ctx)
    try:
        config = ctx.settings
    except ConfigError as err:  # reported as the first check, with its likely cause
        report = configuration_failed(err, ctx.env_file)
    else:
        report = check_alpaca(config, ctx.broker, env_file=ctx.env_file, symbol=ticker)
    check_report(report, as_json)
    raise typer.Exit(report.exit_code)
