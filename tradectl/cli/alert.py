"""`tradectl alert test`: does an alert reach you? One test alert to every configured channel."""

from __future__ import annotations

import typer

from tradectl.cli.app import JsonOption, app, context

alert_app = typer.Typer(help="Alert channels: e-mail and webhook.", no_args_is_help=True)
app.add_typer(alert_app, name="alert")


@alert_app.command("test")
def alert_test_command(typer_ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Send a test alert to every configured channel (e-mail, webhook) and say what happened.

    Nothing is written to the database and no order is involved. Exit 0 when every channel took
    it, 2 when no channel is configured, 4 when a channel did not take it.

    Example: tradectl alert test
    """
    from tradectl.render.alert import alert_test_report
    from tradectl.services.alerts import send_test_alert

    ctx = context(typer_ctx)
    report = send_test_alert(ctx.channels, trading_mode=ctx.settings.trading_mode)
    alert_test_report(report, as_json)
    raise typer.Exit(report.exit_code)
