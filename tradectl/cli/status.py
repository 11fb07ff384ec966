"""`tradectl status`: mode, cycle, positions, pending alerts and the account, on one screen."""

from __future__ import annotations

from tradectl.cli.app import JsonOption, app
from tradectl.cli.wiring import broker, database, day_limits, settings


@app.command("status")
def status_command(as_json: JsonOption = False) -> None:
    """Show where trading stands: mode, cycle, positions and P&L, pending alerts, the account.

    The positions are those in the database: the live ones and the 10 most recent others. The
    account and the open positions' prices come from Alpaca when keys are set; if Alpaca cannot
    be read the view says so and the command still succeeds.

    Example: tradectl status --json
    """
    from tradectl.cli.pending_stops import finish_pending_stops
    from tradectl.cli.wiring import alert_channels
    from tradectl.render.status import status_report
    from tradectl.services.status import trading_status

    config = settings()
    db, adapter = database(config), broker(config)
    finish_pending_stops(config, db, adapter)
    status_report(trading_status(db, adapter, mode=config.trading_mode,
                                 channel=alert_channels(config), day=day_limits(config)),
                  as_json)
