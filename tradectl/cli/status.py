"""`tradectl status`: mode, cycle, positions, pending alerts and the account, on one screen."""

from __future__ import annotations

import typer

from tradectl.cli.app import JsonOption, app, context


@app.command("status")
def status_command(typer_ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show where trading stands: mode, cycle, positions and P&L, pending alerts, the account.

    The positions are those in the database: the live ones and the 10 most recent others. The
    account and the open positions' prices come from Alpaca when keys are set; if Alpaca cannot
    be read the view says so and the command still succeeds.

    Example: tradectl status --json
    """
    from tradectl.cli.pending_stops import finish_pending_stops
    from tradectl.render.status import status_report
    from tradectl.services.report.status import trading_status

    ctx = context(typer_ctx)
    finish_pending_stops(ctx)
    status_report(trading_status(ctx.database, ctx.broker, mode=ctx.settings.trading_mode,
                                 channel=ctx.channels, clock=ctx.clock,
                                 day=ctx.risk_limits.day,
                                 drawdown=ctx.settings.max_drawdown_from_peak), as_json)
