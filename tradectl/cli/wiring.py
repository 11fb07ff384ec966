"""How each part of a command's Context (cli/app.py) is built: settings from the environment and
.env, then the database, the broker, the alert channels and the stop spool. `halt`'s early
close-all (cli/early_halt.py) builds its parts here before Typer loads.

The only place that reads the process environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradectl.broker import Broker, NoStream
    from tradectl.broker.alpaca import AlpacaBroker
    from tradectl.broker.stream import TradeUpdateStream
    from tradectl.config import Settings
    from tradectl.db.plain import PlainDatabase, ReadsRows
    from tradectl.db.session import Database
    from tradectl.db.spool import StopSpool
    from tradectl.domain.day_rules import DayLimits
    from tradectl.notify import Channels


def env_file() -> Path:
    """The .env file in the working directory."""
    return Path.cwd() / ".env"


def own_env_file() -> Path:
    """tradectl's own .env, in its config directory (e.g. ~/.config/tradectl/.env)."""
    return app_dir() / ".env"


def load_environment() -> dict[str, str]:
    """The process environment, then tradectl's own .env, then the working directory's: the
    first that sets a name wins. The working directory's .env may be anyone's: when a secret
    comes from elsewhere, it may not say where keys or alerts go (tradectl/trust.py)."""
    from tradectl.config import DEFAULTS
    from tradectl.trust import check_working_env

    working_path, own_path = env_file(), own_env_file()
    outside = {**read_env_file(own_path), **os.environ}
    working = {} if _same_file(working_path, own_path) else read_env_file(working_path)
    check_working_env(working_path, working, outside, frozenset(DEFAULTS))
    return {**working, **outside}


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False


def read_env_file(path: Path) -> dict[str, str]:
    """The settings in a .env file; ConfigError (exit 2) naming the file, and the line, when it
    is not UTF-8 text or a line cannot be read (its keys would be dropped silently otherwise).
    The line itself is never shown: it may hold a secret."""
    import io

    from tradectl.errors import ConfigError

    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ConfigError(f"{path} cannot be read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        line = text_line(err.object, err.start)
        raise ConfigError(f"{path} is not UTF-8 text (line {line})") from None
    # Only now: no .env, no python-dotenv import (`halt` reads its settings before its close-all).
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(f"{path} line {binding.original.line} cannot be read: expected "
                              "NAME=value (quote values with spaces or #)")
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def text_line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def settings() -> Settings:
    from tradectl.config import load_settings
    from tradectl.errors import ConfigError

    try:
        return load_settings(load_environment(), app_dir=app_dir())
    except ConfigError as err:
        if err.setting is None:
            raise
        raise ConfigError(f"{err.message} ({where_set(err.setting)})", hint=err.hint,
                          setting=err.setting) from None


def where_set(name: str) -> str:
    """Where a setting's value came from, as load_environment() ranks them: the process
    environment, tradectl's own .env, the working directory's (with the line that set it)."""
    import io

    from dotenv.parser import parse_stream

    if os.environ.get(name, "").strip():
        return "set in the environment"
    for path in (own_env_file(), env_file()):
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        lines = [b.original.line for b in parse_stream(io.StringIO(text)) if b.key == name]
        if lines:
            return f"{path} line {lines[-1]}"
    return "set in the environment"


def app_dir() -> Path:
    """tradectl's own directory, as Typer's get_app_dir("tradectl") names it, without importing
    Typer (`halt` reads its settings before Typer is loaded)."""
    import sys

    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA") or os.path.expanduser("~")) / "tradectl"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Application Support")) / "tradectl"
    return Path(os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config"))) / "tradectl"


# What this command opened, closed by main() when the command ends (in-process callers such as
# the tests run many commands in one interpreter: nothing may wait for the garbage collector).
_opened: list[Database | PlainDatabase | AlpacaBroker] = []


def close_opened() -> None:
    while _opened:
        _opened.pop().close()
    _warned.clear()


def check_database_url(config: Settings) -> None:
    """Fail on an unusable DATABASE_URL (exit 2) without importing the ORM or connecting."""
    from tradectl.db.url import durable_url

    durable_url(config.database_url)


def database(config: Settings, *, ensure_schema: bool = True,
             dry_run: bool = False) -> Database:
    """Open the database; SQLite databases are migrated on the fly, others need `db upgrade`.
    `dry_run`: a SQLite file that does not exist yet is not created (a dry run writes nothing):
    the preview reads an empty journal in memory, as the real first run would find it."""
    from tradectl.db.session import Database, sqlite_file, sqlite_files

    check_database_url(config)
    url, private = config.database_url, config.database_is_default
    if dry_run and (path := sqlite_file(url)) is not None and not path.exists():
        url, private = "sqlite://", False  # its schema is made in memory: nothing on disk
    db = Database(url, create_private=private)
    _opened.append(db)
    warn_if_open_to_others([*sqlite_files(config.database_url),
                            *([config.app_dir] if config.app_dir else [])])
    if ensure_schema:
        db.ensure_schema()
    return db


def report_database(config: Settings) -> ReadsRows:
    """`report`'s database: at the head revision, on its own driver without SQLAlchemy (whose
    import outweighs 10,000 trades' reads); any other (a SQLite file to create or migrate, a URL
    only SQLAlchemy reads) opened as database() opens it. A PostgreSQL database behind the head
    revision, or unreachable, is refused by either with the same DatabaseError."""
    from tradectl.db.plain import open_plain

    db = open_plain(config.database_url)
    if db is None:
        return database(config)
    _opened.append(db)
    warn_if_open_to_others([*db.files(), *([config.app_dir] if config.app_dir else [])])
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


def trade_updates(config: Settings) -> TradeUpdateStream | NoStream | None:
    """Alpaca's trade-updates stream for `watch` (not started): with keys and ALPACA_STREAM on.
    Importing it imports alpaca-trade-api (pandas, numpy, aiohttp: about 0.4 s); installed
    without it (docs/alpaca-sdk.md), the stream is off and says why."""
    if not (config.alpaca_enabled and config.alpaca_stream):
        return None
    try:
        from tradectl.broker.stream import TradeUpdateStream
    except ImportError as err:
        from tradectl.broker import NoStream

        return NoStream(f"alpaca-trade-api cannot be imported ({err}): install it, or set "
                        "ALPACA_STREAM=false")

    assert config.alpaca_api_key and config.alpaca_secret_key
    return TradeUpdateStream(config.alpaca_api_key, config.alpaca_secret_key,
                             base_url=config.alpaca_base_url)


def alert_channels(config: Settings) -> Channels | None:
    """E-mail when SMTP_HOST and ALERT_EMAIL_TO are set, the webhook when ALERT_WEBHOOK_URL is,
    Telegram when ALERT_TELEGRAM_BOT_TOKEN and ALERT_TELEGRAM_CHAT_ID are; None when none is."""
    from tradectl.notify import Channel, Channels
    from tradectl.notify.smtp import SmtpChannel, smtp_settings

    members: list[Channel] = []
    smtp = smtp_settings(config)
    if smtp.enabled:
        members.append(SmtpChannel(smtp))
    if config.alert_webhook_url:
        from tradectl.notify.webhook import WebhookChannel

        members.append(WebhookChannel(config.alert_webhook_url, config.alert_webhook_timeout))
    if config.alert_telegram_bot_token and config.alert_telegram_chat_id:
        from tradectl.notify.telegram import TelegramChannel

        members.append(TelegramChannel(config.alert_telegram_bot_token,
                                       config.alert_telegram_chat_id,
                                       config.alert_telegram_api_url,
                                       config.alert_telegram_timeout))
    return Channels(tuple(members)) if members else None


def stop_spool(config: Settings) -> StopSpool | None:
    """Where an emergency stop that could not reach the database is kept until it can."""
    from tradectl.db.spool import StopSpool

    if config.app_dir is None:
        return None
    private_app_dir(config.app_dir)
    return StopSpool(config.app_dir, config.database_url)


def private_app_dir(path: Path) -> None:
    """tradectl's own directory (the default database, the stop spool, its own .env) is made
    0700, also when the database is PostgreSQL. One others can enter is warned about when the
    database is opened (`database()`), in the same line as a loose database file."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return  # the spool reports what it cannot write, when it must


def warn_if_open_to_others(paths: list[Path]) -> None:
    """One warning line (never an error) naming what group or others may read or enter."""
    import stat

    from tradectl.render import warning

    loose = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077 and path not in _warned:
            _warned.add(path)
            loose.append(f"{path} (mode {mode:04o})")
    if loose:
        warning(f"group or others can read {', '.join(loose)}: tradectl's files hold the "
                "trading record; chmod 700 a directory, 600 a file")


_warned: set[Path] = set()  # said once per command (main() clears it with close_opened)


def day_limits(config: Settings) -> DayLimits:
    """The day's entry rules as set (each None: off)."""
    from tradectl.domain.day_rules import Cooldown, DayLimits

    cooldown = config.cooldown_after_losses
    return DayLimits(
        entry_cutoff_minutes=config.no_new_entries_before_close,
        max_trades_per_day=config.max_trades_per_day,
        cooldown=Cooldown(cooldown.losses, cooldown.minutes) if cooldown else None,
        profit_target=config.daily_profit_target,
        flatten_minutes=config.flatten_before_close,
    )
