"""`tradectl open`: one bracket order."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app
from tradectl.cli.wiring import broker, check_database_url, database, fail, settings


@app.command("open")
def open_command(
    symbol: Annotated[str, typer.Argument(help="Ticker, e.g. AAPL.")],
    qty: Annotated[str, typer.Option("--qty", help="Whole shares.")],
    stop: Annotated[str, typer.Option("--stop", help="Stop-loss price.")],
    target: Annotated[str, typer.Option("--target", help="Take-profit price.")],
    entry: Annotated[
        str | None, typer.Option("--entry", help="Limit entry price (default: market).")
    ] = None,
    side: Annotated[str, typer.Option("--side", help="buy or sell.")] = "buy",
    gtc: Annotated[bool, typer.Option("--gtc", help="Good till cancelled (default: day).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Skip the live-mode confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Open a bracket position: entry, stop-loss and take-profit in one Alpaca order.

    Example: tradectl open AAPL --qty 1 --stop 145 --target 160
    """
    from tradectl import render
    from tradectl.render.open import open_outcome, order_preview
    from tradectl.risk import (
        BracketSpec,
        RiskLimits,
        parse_price,
        parse_qty,
        parse_side,
        parse_symbol,
    )

    spec = BracketSpec(
        symbol=parse_symbol(symbol),
        side=parse_side(side),
        qty=parse_qty(qty),
        stop=parse_price(stop, "--stop"),
        target=parse_price(target, "--target"),
        entry=parse_price(entry, "--entry") if entry is not None else None,
        time_in_force="gtc" if gtc else "day",
    )
    config = settings()
    live = config.trading_mode == "live"
    if live and not yes and not sys.stdin.isatty():
        fail("TRADING_MODE=live: pass --yes to confirm the order (no terminal to ask at)", 2)
    if (warning := config.key_mode_warning()) is not None:
        render.warning(warning)

    # The order of events is the latency budget: settings and the bracket's shape are checked
    # first (bad input sends nothing), then the pre-trade reads go out and SQLAlchemy is imported
    # and the database opened while they are in flight.
    check_database_url(config)
    adapter = broker(config)
    from tradectl.services.pre_trade import request_market_facts

    facts = request_market_facts(adapter, spec)
    from tradectl.services.open_position import OrderPreview, open_position

    def confirm(preview: OrderPreview) -> bool:
        render.stderr().print(order_preview(preview, config.trading_mode))
        return typer.confirm("Send this LIVE order?", default=False, err=True)

    outcome = open_position(
        database(config),
        adapter,
        RiskLimits(
            max_open_positions=config.max_open_positions,
            max_position_notional=config.max_position_notional,
            max_risk_per_trade=config.max_risk_per_trade,
            daily_loss_limit=config.daily_loss_limit,
        ),
        spec,
        facts=facts,
        confirm=confirm if live and not yes else None,
    )
    open_outcome(outcome, as_json)
    if outcome.broker_error is not None:
        fail(outcome.broker_error.message, outcome.broker_error.exit_code)


