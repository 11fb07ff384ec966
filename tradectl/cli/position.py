"""`tradectl close` and `tradectl adjust`: one position's life after `open`, without pulling the
emergency stop on the whole account."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app, context
from tradectl.cli.dry_run import DryRunOption

PositionArgument = Annotated[
    str, typer.Argument(metavar="SYMBOL|POSITION_ID", help="A symbol (AAPL) or an id (12).")]


@app.command("close")
def close_command(typer_ctx: typer.Context, position: PositionArgument,
                  dry_run: DryRunOption = False, as_json: JsonOption = False) -> None:
    """Exit one position now: cancel its stop and take-profit, close its shares at market.

    An unfilled entry is cancelled instead. Allowed while trading is stopped; other positions
    and their stops are left alone. With --dry-run: the requests it would send; nothing is done.

    Example: tradectl close AAPL
    """
    from tradectl.render.position import close_report
    from tradectl.services.position.close_position import close_position

    ctx = context(typer_ctx)
    if dry_run:
        from tradectl.cli.dry_run import show
        from tradectl.services.position.close_plan import close_dry_run, plan_close

        plan = plan_close(ctx.dry_run_database, ctx.broker, position, clock=ctx.clock)
        show(close_dry_run(plan, trading_mode=ctx.settings.trading_mode), as_json)
    from tradectl.cli.pending_stops import finish_pending_stops

    finish_pending_stops(ctx)
    outcome = close_position(ctx.database, ctx.broker, ctx.channels, position, clock=ctx.clock)
    close_report(outcome, as_json)
    raise typer.Exit(outcome.exit_code)


@app.command("adjust")
def adjust_command(
    typer_ctx: typer.Context,
    position: PositionArgument,
    stop: Annotated[str | None, typer.Option("--stop", help="New stop-loss price.")] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="New take-profit price.")] = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Move a position's working stop and/or take-profit in place.

    Alpaca replaces the order, so the shares are never without cover. The new prices are checked
    against the last trade before anything is sent. With --dry-run: the checks and the requests
    it would send; nothing is done.

    Example: tradectl adjust AAPL --stop 148
    """
    from tradectl.domain.money import parse_price
    from tradectl.render.position import adjust_report
    from tradectl.services.position.adjust import adjust_position

    new_stop = parse_price(stop, "--stop") if stop is not None else None
    new_target = parse_price(target, "--target") if target is not None else None
    ctx = context(typer_ctx)
    if dry_run:
        from tradectl.cli.dry_run import show
        from tradectl.services.position.adjust_plan import adjust_dry_run, plan_adjust

        planned = plan_adjust(ctx.dry_run_database, ctx.broker, position, stop=new_stop,
                              target=new_target, clock=ctx.clock)
        show(adjust_dry_run(planned, trading_mode=ctx.settings.trading_mode), as_json)
    report = adjust_position(ctx.database, ctx.broker, position, stop=new_stop,
                             target=new_target, clock=ctx.clock)
    adjust_report(report, as_json)
    raise typer.Exit(report.exit_code)
