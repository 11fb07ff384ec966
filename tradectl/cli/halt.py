"""`tradectl halt` (the emergency stop) and `tradectl resume`."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app, context
from tradectl.cli.dry_run import DryRunOption

ReasonOption = Annotated[str, typer.Option("--reason", help="Why: recorded and e-mailed.")]


@app.command("halt")
def halt_command(typer_ctx: typer.Context, reason: ReasonOption, dry_run: DryRunOption = False,
                 as_json: JsonOption = False) -> None:
    """EMERGENCY STOP: block new entries, cancel every order, close every position, alert.

    With --dry-run: what would be cancelled and closed, from a live read; nothing is done.

    Example: tradectl halt --reason "news: trading halted on AAPL"
    """
    from tradectl.errors import InputError

    if not reason.strip():
        raise InputError("--reason must not be empty: say why trading is stopped")
    if not dry_run:  # the stop itself (a plain `halt --reason R` runs it without Typer)
        from tradectl.cli.early_halt import halt_now

        raise typer.Exit(halt_now(context(typer_ctx), reason, as_json))
    ctx = context(typer_ctx)
    adapter, spool = ctx.broker, ctx.spool
    db = ctx.stop_database(dry_run=True)  # a database fault is reported, the plan goes on
    from tradectl.cli.dry_run import show
    from tradectl.services.halt.halt_plan import halt_dry_run, plan_halt

    plan = plan_halt(db, adapter, ctx.channels, reason, spool=spool)
    show(halt_dry_run(plan, trading_mode=ctx.settings.trading_mode), as_json)


@app.command("resume")
def resume_command(
    typer_ctx: typer.Context,
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
    from tradectl.services.halt.resume import resume_trading

    ctx = context(typer_ctx)
    report = resume_trading(ctx.database, ctx.broker, ctx.channels, reason,
                            daily_loss_limit=ctx.settings.daily_loss_limit, force=force,
                            clock=ctx.clock)
    resume_report(report, as_json)
