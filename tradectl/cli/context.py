"""The one Context every command is handed: settings, database, broker, alert channels, clock
and stop spool, each built on first use. Apart from the Typer application (cli/app.py, which
re-exports it) so that a plain `halt --reason R` runs the stop with it before Typer is ever
imported (cli/early_halt.py)."""

from __future__ import annotations

from functools import cached_property
from types import EllipsisType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from tradectl.broker import Broker, NoStream
    from tradectl.broker.stream import TradeUpdateStream
    from tradectl.config import Settings
    from tradectl.db.plain import ReadsRows
    from tradectl.db.session import Database
    from tradectl.db.spool import StopSpool
    from tradectl.domain.clock import Clock
    from tradectl.domain.pre_trade import RiskLimits
    from tradectl.notify import Channels


class Context:
    """What a command works with: the settings, the database, the broker, the alert channels,
    the clock and the stop spool. The root command makes one per run; each part is built on
    first use (cli/wiring.py builds them), so a command never imports what it does not touch:
    `--help` no SQLAlchemy, a command without keys no HTTP client. Tests hand in their own
    parts (tests/support/context.py); `...` (the default) means "build it from the settings"."""

    def __init__(self, *, settings: Settings | EllipsisType = ...,
                 database: Database | EllipsisType = ...,
                 broker: Broker | EllipsisType | None = ...,
                 channels: Channels | EllipsisType | None = ...,
                 spool: StopSpool | EllipsisType | None = ...,
                 clock: Clock | EllipsisType = ...) -> None:
        given = {"settings": settings, "broker": broker, "channels": channels, "spool": spool,
                 "clock": clock,
                 # one database handed in serves every way a command opens it
                 "database": database, "database_as_is": database, "dry_run_database": database,
                 "report_database": database}
        # a cached_property is read from the instance first: a part handed in is never built
        self.__dict__.update({name: part for name, part in given.items() if part is not ...})

    def adopt(self, *, settings: Settings, broker: Broker) -> None:
        """Use parts built before Typer loaded (`halt`'s early close-all, cli/early_halt.py)."""
        self.__dict__.update(settings=settings, broker=broker)

    @cached_property
    def settings(self) -> Settings:
        """From the environment and the .env files (ConfigError, exit 2, when one is wrong)."""
        from tradectl.cli.wiring import settings

        return settings()

    @property
    def env_file(self) -> Path:
        from tradectl.cli.wiring import env_file

        return env_file()

    def check_database_url(self) -> None:
        """Fail on an unusable DATABASE_URL (exit 2) before anything is sent; no ORM import."""
        from tradectl.cli.wiring import check_database_url

        check_database_url(self.settings)

    @cached_property
    def database(self) -> Database:
        """Opened and migrated (SQLite on the fly; other databases need `db upgrade`)."""
        from tradectl.cli.wiring import database

        return database(self.settings)

    @cached_property
    def report_database(self) -> ReadsRows:
        """Opened for `report`'s reads: at the head revision, through the database's own
        driver, without SQLAlchemy; one to create or migrate as `database` is."""
        from tradectl.cli.wiring import report_database

        return report_database(self.settings)

    @cached_property
    def database_as_is(self) -> Database:
        """Opened, its schema neither checked nor migrated (`db`, and a stop that must go on)."""
        from tradectl.cli.wiring import database

        return database(self.settings, ensure_schema=False)

    @cached_property
    def dry_run_database(self) -> Database:
        """Opened for a dry run: a SQLite file that does not exist yet is not created."""
        from tradectl.cli.wiring import database

        return database(self.settings, dry_run=True)

    def stop_database(self, *, dry_run: bool) -> Database:
        """The emergency stop's database: the stop does not depend on it, so a schema it cannot
        check or migrate is said by the stop's report, not raised."""
        from tradectl.errors import DatabaseError

        try:
            return self.dry_run_database if dry_run else self.database
        except DatabaseError:
            return self.database_as_is

    @cached_property
    def broker(self) -> Broker | None:
        """Alpaca's REST adapter; None without keys."""
        from tradectl.cli.wiring import broker

        return broker(self.settings)

    def trade_updates(self) -> TradeUpdateStream | NoStream | None:
        """Alpaca's trade-updates stream for `watch`, not started (imports alpaca-trade-api)."""
        from tradectl.cli.wiring import trade_updates

        return trade_updates(self.settings)

    @cached_property
    def channels(self) -> Channels | None:
        """Every alert channel configured (e-mail, webhook, Telegram); None when none is."""
        from tradectl.cli.wiring import alert_channels

        return alert_channels(self.settings)

    @cached_property
    def spool(self) -> StopSpool | None:
        """Where a stop that could not reach the database is kept until it can."""
        from tradectl.cli.wiring import stop_spool

        return stop_spool(self.settings)

    @cached_property
    def clock(self) -> Clock:
        from tradectl.domain.clock import SYSTEM_CLOCK

        return SYSTEM_CLOCK

    @property
    def risk_limits(self) -> RiskLimits:
        """The risk rules as set, the day's entry rules (`day`) among them."""
        from tradectl.cli.wiring import day_limits
        from tradectl.domain.pre_trade import RiskLimits

        config = self.settings
        return RiskLimits(
            max_open_positions=config.max_open_positions,
            max_position_notional=config.max_position_notional,
            max_risk_per_trade=config.max_risk_per_trade,
            daily_loss_limit=config.daily_loss_limit,
            day=day_limits(config),
        )

    @property
    def gate_wait(self) -> float:
        """How long the stop waits for an `open` mid-submit: its one request's timeouts, and a
        second for the rest (connect is capped at 5 s in the adapter)."""
        timeout = self.settings.alpaca_timeout
        return timeout + min(timeout, 5.0) + 1.0
