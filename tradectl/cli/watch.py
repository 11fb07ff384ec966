"""`tradectl watch`: the foreground risk loop. The watch service decides; this draws and sleeps."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app
from tradectl.cli.wiring import (
    alert_channel,
    broker,
    database,
    gate_wait,
    settings,
    stop_spool,
)


@app.command("watch")
def watch_command(
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between ticks (WATCH_INTERVAL).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Never pull the emergency stop; just show.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Watch the day's P&L; sync fills; pull the emergency stop at the daily loss limit.

    Example: tradectl watch --interval 30
    """
    import gc

    from tradectl.errors import ExitCode, InputError
    from tradectl.render.watch import WatchDisplay
    from tradectl.services.watch import watching

    config = settings()
    period = interval if interval is not None else config.watch_interval
    if not 0 < period <= 86400:
        raise InputError(f"--interval must be between 0 and 86400 seconds, got {period}")
    db = database(config)
    code = ExitCode.OK
    with watching(db, broker(config), alert_channel(config),
                  daily_loss_limit=config.daily_loss_limit, interval=period,
                  read_only=read_only, spool=stop_spool(config),
                  gate_wait=gate_wait(config)) as watcher:
        # A long-running loop needs the collector (the executable starts with it off), but not
        # to rescan the imports on every full collection: freeze what exists now.
        gc.freeze()
        gc.enable()
        display = WatchDisplay(
            mode=config.trading_mode, limit=config.daily_loss_limit, interval=period,
            as_json=as_json, live=sys.stdout.isatty() and not as_json,
            drives_stops=watcher.drives_stops, broker_enabled=config.alpaca_enabled,
        )
        try:
            with display:
                while True:
                    report = watcher.tick()
                    if once:
                        display.show(report, next_in=None)
                        code = report.exit_code
                        break
                    delay = watcher.next_delay(report)
                    display.show(report, next_in=delay)
                    time.sleep(delay)
        except KeyboardInterrupt:
            code = ExitCode.OK  # Ctrl-C leaves cleanly and never triggers a stop
    raise typer.Exit(code)
