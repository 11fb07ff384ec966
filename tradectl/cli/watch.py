"""`tradectl watch`: the foreground risk loop."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app
from tradectl.cli.wiring import broker, database, settings, smtp_settings

MAX_BACKOFF_SECONDS = 300.0


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

    from tradectl.errors import InputError, RefusedError
    from tradectl.render.watch import WatchDisplay
    from tradectl.services.watch import Watcher

    gc.enable()  # a long-running loop needs the collector (main() switches it off for speed)
    config = settings()
    period = interval if interval is not None else config.watch_interval
    if not 0 < period <= 86400:
        raise InputError(f"--interval must be between 0 and 86400 seconds, got {period}")
    db = database(config)
    with db.lock("watch-driver", wait=0) as driver:
        if not driver and not read_only:
            raise RefusedError(
                "another `tradectl watch` already drives automatic stops for this database",
                rule="one_watch_driver", hint="run this one with --read-only to only look",
            )
        watcher = Watcher(db, broker(config), smtp_settings(config),
                          daily_loss_limit=config.daily_loss_limit, drives_stops=driver)
        # A long-running loop needs the collector (the executable starts with it off), but not
        # to rescan the imports on every full collection: freeze what exists now.
        gc.freeze()
        gc.enable()
        display = WatchDisplay(
            mode=config.trading_mode, limit=config.daily_loss_limit, interval=period,
            as_json=as_json, live=sys.stdout.isatty() and not as_json, drives_stops=driver,
            broker_enabled=config.alpaca_enabled,
        )
        code = 0
        delay = period
        try:
            with display:
                while True:
                    result = watcher.tick()
                    display.show(result, next_in=None if once else delay)
                    if once:
                        failed = result.error or (result.stop and result.stop.exit_code)
                        code = 4 if failed else 0
                        break
                    # back off while Alpaca rate-limits us; back to normal once it answers
                    delay = min(delay * 2, MAX_BACKOFF_SECONDS) if result.rate_limited else period
                    time.sleep(delay)
        except KeyboardInterrupt:
            code = 0  # Ctrl-C leaves cleanly and never triggers a stop
    raise typer.Exit(code)
