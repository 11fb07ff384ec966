"""`tradectl watch`: the foreground risk loop. The watch service decides; this draws and sleeps."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tradectl.cli.app import Context, JsonOption, app, context

if TYPE_CHECKING:
    from tradectl.errors import ExitCode


@app.command("watch")
def watch_command(
    typer_ctx: typer.Context,
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between ticks (WATCH_INTERVAL).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Never pull the emergency stop; just show.")
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Do not follow Alpaca's trade-updates stream "
                           "(ALPACA_STREAM=false): fills are seen at the next tick.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Watch the day's P&L; sync fills; pull the emergency stop at the daily loss limit.

    Example: tradectl watch --interval 30
    """
    import signal

    from tradectl.errors import ExitCode, InputError

    ctx = context(typer_ctx)
    period = interval if interval is not None else ctx.settings.watch_interval
    if not 0 < period <= 86400:
        raise InputError(f"--interval must be more than 0 and at most 86400 seconds, "
                         f"got {period:g}")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: Ctrl-C
    try:
        code = _loop(ctx, period, once=once, read_only=read_only, as_json=as_json,
                     stream=not (once or no_stream))
    except KeyboardInterrupt:
        code = ExitCode.OK  # Ctrl-C leaves cleanly in every state and never triggers a stop
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)


def _loop(ctx: Context, period: float, *, once: bool, read_only: bool,
          as_json: bool, stream: bool) -> ExitCode:
    import gc
    from contextlib import nullcontext

    from tradectl.render.watch import WatchDisplay
    from tradectl.services.watch.watch import watching

    config = ctx.settings
    updates = ctx.trade_updates() if stream else None
    # The stream starts once this watch may run (it holds the driver lock or only looks) and
    # connects while the first tick reads the broker; it is stopped on the way out.
    with watching(ctx.database, ctx.broker, ctx.channels,
                  daily_loss_limit=config.daily_loss_limit, interval=period,
                  read_only=read_only, spool=ctx.spool, gate_wait=ctx.gate_wait,
                  rearm_protection=config.rearm_protection,
                  stream_down_interval=config.watch_stream_down_interval,
                  clock=ctx.clock, day=ctx.risk_limits.day,
                  drawdown=config.max_drawdown_from_peak,
                  alert_fills=config.alert_fills) as watcher, \
            updates or nullcontext():
        # A long-running loop needs the collector (the executable starts with it off), but not
        # to rescan the imports on every full collection: freeze what exists now.
        gc.freeze()
        gc.enable()
        display = WatchDisplay(
            mode=config.trading_mode, limit=config.daily_loss_limit, interval=period,
            as_json=as_json, live=sys.stdout.isatty() and not as_json,
            broker_enabled=config.alpaca_enabled,
        )
        with display:
            while True:
                # the stream's state before the tick's reads: connected after it, a tick at once
                seen = updates.status() if updates is not None else None
                report = watcher.tick()
                status = updates.status() if updates is not None else None
                if once:
                    display.show(report, next_in=None, stream=status)
                    return report.exit_code
                delay = watcher.next_delay(report, status)
                display.show(report, next_in=delay, stream=status)
                for update in watcher.between_ticks(delay, updates, seen):  # queue or sleep
                    display.show_stream(update)


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt
