"""What every command needs: settings from the environment and .env, the database, the broker.

The only place that reads the process environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from tradectl.broker import Broker
    from tradectl.broker.alpaca import AlpacaBroker
    from tradectl.config import Settings
    from tradectl.db.session import Database
    from tradectl.services.alerts import SmtpSettings


def env_file() -> Path:
    """The .env file tradectl reads: the one in the working directory."""
    return Path.cwd() / ".env"


def load_environment() -> dict[str, str]:
    """The process environment over `.env` in the working directory: the environment wins."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(env_file()).items() if v is not None}
    merged.update(os.environ)
    return merged


def settings() -> Settings:
    from tradectl.config import load_settings

    return load_settings(load_environment(), app_dir=Path(typer.get_app_dir("tradectl")))


# What this command opened, closed by main() when the command ends (in-process callers such as
# the tests run many commands in one interpreter: nothing may wait for the garbage collector).
_opened: list[Database | AlpacaBroker] = []


def close_opened() -> None:
    while _opened:
        _opened.pop().close()


def check_database_url(config: Settings) -> None:
    """Fail on an unusable DATABASE_URL (exit 2) without importing the ORM or connecting."""
    from tradectl.db.url import usable_url

    usable_url(config.database_url)


def database(config: Settings, *, ensure_schema: bool = True) -> Database:
    """Open the database; SQLite databases are migrated on the fly, others need `db upgrade`."""
    from tradectl.db.session import Database

    db = Database(config.database_url)
    _opened.append(db)
    if ensure_schema:
        db.ensure_schema(auto_upgrade=db.dialect == "sqlite")
    return db


def broker(config: Settings) -> Broker | None:
    if not config.alpaca_enabled:
        return None
    from tradectl.broker.alpaca import AlpacaBroker

    assert config.alpaca_api_key and config.alpaca_secret_key
    adapter = AlpacaBroker(
        api_key=config.alpaca_api_key,
        secret_key=config.alpaca_secret_key,
        base_url=config.alpaca_base_url,
        data_url=config.alpaca_data_url,
        timeout=config.alpaca_timeout,
    )
    _opened.append(adapter)
    return adapter


def smtp_settings(config: Settings) -> SmtpSettings:
    from tradectl.services.alerts import SmtpSettings

    return SmtpSettings(
        host=config.smtp_host, port=config.smtp_port, username=config.smtp_username,
        password=config.smtp_password, starttls=config.smtp_starttls,
        timeout=config.smtp_timeout, sender=config.alert_email_from,
        recipients=config.alert_email_to,
    )


def fail(message: str, code: int) -> NoReturn:
    from tradectl import render

    render.error(message)
    raise typer.Exit(code)


