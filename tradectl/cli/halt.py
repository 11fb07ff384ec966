"""`tradectl halt` (the emergency stop) and `tradectl resume`."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app
from tradectl.cli.dry_run import DryRunOption
from tradectl.cli.wiring import (
    alert_channels,
    broker,
    database,
    gate_wait,
    settings,
    stop_spool,
)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why: recorded and e-mailed.")]


@app.command("halt")
def halt_command(reason: ReasonOption, dry_run: DryRunOption = False,
                 as_json: JsonOption = False) -> None:
    """EMERGENCY STOP: block new entries, cancel every order, close every position, alert.

    With --dry-run: what would be cancelled and closed, from a live read; nothing is done.

    Example: tradectl halt --reason "news: trading halted on AAPL"
    """
    from tradectl.errors import DatabaseError, InputError

    if not reason.strip():
        raise InputError("--reason must not be empty: say why trading is stopped")
    from tradectl.cli.early_halt import take

    # Flatten first: the stop is written ahead (a small fsynced file) and the close-all is on
    # the wire before the database layer is imported (before Typer, from the executable); the
    # latch is written meanwhile.
    begun = None if dry_run else take(reason)
    config = begun.config if begun is not None else settings()
    adapter = begun.broker if begun is not None else broker(config)
    start = begun.start if begun is not None else None
    spool = stop_spool(config)
    if adapter is not None and not dry_run and start is None:
        from tradectl.services.first_close import start_stop

        start = start_stop(adapter, spool, reason)
    try:
        db = database(config, dry_run=dry_run)
    except DatabaseError:  # the stop does not depend on the database: it says so and goes on
        db = database(config, ensure_schema=False)
    if dry_run:
        from tradectl.cli.dry_run import show
        from tradectl.services.halt_plan import halt_dry_run, plan_halt

        plan = plan_halt(db, adapter, alert_channels(config), reason, spool=spool)
        show(halt_dry_run(plan, trading_mode=config.trading_mode), as_json)
    from tradectl.render.halt import halt_report
    from tradectl.services.emergency_stop import emergency_stop

    report = emergency_stop(db, adapter, alert_channels(config), reason, spool=spool,
                            gate_wait=gate_wait(config), start=start)
    halt_report(report, as_json)
    raise typer.Exit(report.exit_code)


@app.command("resume")
def resume_command(
    reason: ReasonOption,
    force: Annotated[
        bool, typer.Option("--force", help="Resume even if the day's loss is past the limit.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a new trading cycle after an emergency stop.

    Example: tradectl resume --reason "reviewed positions, new day"
    """
    from tradectl.render.halt import resume_report
    from tradectl.services.resume import resume_trading

    config = settings()
    report = resume_trading(
        database(config), broker(config), alert_channels(config), reason,
        daily_loss_limit=config.daily_loss_limit, force=force,
    )
    resume_report(report, as_json)
