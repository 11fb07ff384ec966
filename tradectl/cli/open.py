"""`tradectl open`: one bracket order."""

from __future__ import annotations

import sys
from typing import Annotated
from urllib.parse import urlsplit

import typer

from tradectl.cli.app import JsonOption, app, context
from tradectl.cli.dry_run import DryRunOption


@app.command("open")
def open_command(
    typer_ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Ticker, e.g. AAPL.")],
    stop: Annotated[str, typer.Option("--stop", help="Stop-loss price.")],
    target: Annotated[str, typer.Option("--target", help="Take-profit price.")],
    qty: Annotated[str | None, typer.Option("--qty", help="Whole shares.")] = None,
    risk: Annotated[str | None, typer.Option(
        "--risk", help="Dollars to risk instead of --qty (or 0.5% of the equity): the most "
        "whole shares whose qty x |price - stop| fits.")] = None,
    entry: Annotated[
        str | None, typer.Option("--entry", help="Limit entry price (default: market).")
    ] = None,
    side: Annotated[str, typer.Option("--side", help="buy or sell.")] = "buy",
    gtc: Annotated[bool, typer.Option("--gtc", help="Good till cancelled (default: day).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Skip the live-mode confirmation.")] = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Open a bracket position: entry, stop-loss and take-profit in one Alpaca order.

    Examples: tradectl open AAPL --qty 1 --stop 145 --target 160;
    tradectl open AAPL --risk 200 --stop 145 --target 160
    """
    from tradectl import render
    from tradectl.broker import BracketRequest
    from tradectl.domain.bracket import parse_qty, parse_side, parse_symbol
    from tradectl.domain.money import parse_price, parse_risk_budget
    from tradectl.errors import Aborted, InputError
    from tradectl.render.open import open_outcome, order_preview

    if (qty is None) == (risk is None):
        raise InputError("pass either --qty (shares) or --risk (dollars), not "
                         + ("both" if qty is not None else "neither"))
    risk_budget = parse_risk_budget(risk) if risk is not None else None
    spec = BracketRequest(
        symbol=parse_symbol(symbol),
        side=parse_side(side),
        qty=parse_qty(qty) if qty is not None else 0,  # 0: sized by --risk once priced
        stop=parse_price(stop, "--stop"),
        target=parse_price(target, "--target"),
        entry=parse_price(entry, "--entry") if entry is not None else None,
        time_in_force="gtc" if gtc else "day",
    )
    ctx = context(typer_ctx)
    config = ctx.settings  # the mode follows the endpoint: Alpaca's live host is live
    confirm = config.trading_mode == "live" and not yes and not dry_run
    if confirm and not sys.stdin.isatty():
        host = urlsplit(config.alpaca_base_url).hostname
        raise InputError(f"live mode (real money, orders to {host}): pass --yes to confirm the "
                         "order (no terminal to ask at)")
    if (warning := config.key_mode_warning()) is not None:
        render.warning(warning)

    # The order of events is the latency budget: settings and the bracket's shape are checked
    # first (bad input sends nothing), then the pre-trade reads go out and SQLAlchemy is imported
    # and the database opened while they are in flight.
    ctx.check_database_url()
    adapter = ctx.broker
    from tradectl.services.open.pre_trade import send_pre_trade_reads

    reads = send_pre_trade_reads(
        adapter, spec, market_clock=config.no_new_entries_before_close is not None)
    from tradectl.services.open.open_position import place_open, quote_open

    db = ctx.dry_run_database if dry_run else ctx.database
    if dry_run:
        from tradectl.cli.dry_run import show
        from tradectl.services.open.open_plan import open_dry_run, plan_open

        plan = plan_open(db, adapter, ctx.risk_limits, quote_open(None, reads, risk_budget),
                         clock=ctx.clock)
        show(open_dry_run(plan, trading_mode=config.trading_mode), as_json)
    from tradectl.cli.pending_stops import finish_pending_stops

    finish_pending_stops(ctx)  # a stop killed mid-flight: completed, latched
    quote = quote_open(db, reads, risk_budget)
    if confirm:
        render.stderr().print(order_preview(quote, config.trading_mode))
        if not typer.confirm("Send this LIVE order?", default=False, err=True):
            raise Aborted("not confirmed: nothing was written or sent")
    outcome = place_open(db, adapter, ctx.risk_limits, quote, clock=ctx.clock)
    open_outcome(outcome, as_json, quote.sizing)
    failure = outcome.broker_error
    if failure is not None and as_json:  # its document says so already: one object only
        render.error(failure.message, failure.hint)
        raise typer.Exit(failure.exit_code)
    if failure is not None:
        raise failure
