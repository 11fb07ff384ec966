"""The command line: each command parses, calls one service, renders. Heavy modules (SQLAlchemy,
the Alpaca SDK, rich) are imported inside commands so that `tradectl --help` stays instant."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from tradectl import __version__

if TYPE_CHECKING:
    from tradectl.broker import Broker
    from tradectl.config import Settings
    from tradectl.db.session import Database

app = typer.Typer(
    name="tradectl",
    help="Open Alpaca bracket positions, watch the day's risk, pull the emergency stop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: apply or inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tradectl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Open Alpaca bracket positions, watch the day's risk, pull the emergency stop."""


# -- shared wiring ------------------------------------------------------------------------------


def load_environment() -> dict[str, str]:
    """The process environment over `.env` in the working directory: the environment wins."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(Path.cwd() / ".env").items() if v is not None}
    merged.update(os.environ)
    return merged


def settings() -> Settings:
    from tradectl.config import load_settings

    return load_settings(load_environment(), app_dir=Path(typer.get_app_dir("tradectl")))


def database(config: Settings) -> Database:
    """Open the database; SQLite databases are migrated on the fly, others need `db upgrade`."""
    from tradectl.db.session import Database

    db = Database(config.database_url)
    db.ensure_schema(auto_upgrade=db.dialect == "sqlite")
    return db


def broker(config: Settings) -> Broker | None:
    if not config.alpaca_enabled:
        return None
    from tradectl.broker.alpaca import AlpacaBroker

    assert config.alpaca_api_key and config.alpaca_secret_key
    return AlpacaBroker(
        api_key=config.alpaca_api_key,
        secret_key=config.alpaca_secret_key,
        base_url=config.alpaca_base_url,
        data_url=config.alpaca_data_url,
        timeout=config.alpaca_timeout,
    )


def fail(message: str, code: int) -> NoReturn:
    from tradectl import render

    render.error(message)
    raise typer.Exit(code)


# -- commands -----------------------------------------------------------------------------------


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

    from tradectl.services.open_position import OrderPreview, open_position

    def confirm(preview: OrderPreview) -> bool:
        render.stderr().print(render.order_preview(preview, config.trading_mode))
        return typer.confirm("Send this LIVE order?", default=False, err=True)

    outcome = open_position(
        database(config),
        broker(config),
        RiskLimits(
            max_open_positions=config.max_open_positions,
            max_position_notional=config.max_position_notional,
            max_risk_per_trade=config.max_risk_per_trade,
            daily_loss_limit=config.daily_loss_limit,
        ),
        spec,
        confirm=confirm if live and not yes else None,
    )
    render.open_outcome(outcome, as_json)
    if outcome.broker_error is not None:
        fail(outcome.broker_error.message, outcome.broker_error.exit_code)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply pending migrations. Example: tradectl db upgrade"""
    from tradectl.db.session import Database, masked_url

    config = settings()
    db = Database(config.database_url)
    before = db.schema_revision()
    db.upgrade(revision)
    typer.echo(f"{masked_url(config.database_url)}: {before or 'empty'} -> {db.schema_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database. Example: tradectl db current"""
    from tradectl.db.models import HEAD_REVISION
    from tradectl.db.session import Database, masked_url

    config = settings()
    revision = Database(config.database_url).schema_revision()
    state = "up to date" if revision == HEAD_REVISION else f"behind {HEAD_REVISION}"
    typer.echo(f"{masked_url(config.database_url)}: {revision or 'empty'} ({state})")


# -- entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI: usage errors and tradectl's own errors become one line and an exit code."""
    from tradectl.errors import TradectlError

    try:
        code = app(args=argv, standalone_mode=False)
    except typer.TyperException as err:  # usage errors: missing option, unknown command, ...
        ctx = getattr(err, "ctx", None)
        command = ctx.command_path if ctx is not None else "tradectl"
        _one_line(f"{err.format_message()} (see `{command} --help`)")
        code = err.exit_code
    except typer.Abort:
        _one_line("aborted")
        code = 1
    except TradectlError as err:
        _one_line(err.message, err.hint)
        code = err.exit_code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(message: str, hint: str | None = None) -> None:
    from tradectl import render

    render.error(message, hint)
