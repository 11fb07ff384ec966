"""Settings: a frozen value built by a pure function from an environment mapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from tradectl import trust
from tradectl.alert_settings import telegram_bot
from tradectl.errors import ConfigError
from tradectl.rule_settings import (  # Amount and Cooldown: the settings' own values
    DOLLARS,
    Amount,
    Cooldown,
    cooldown,
    dollars_or_percent,
    minutes,
    money_or_percent,
    optional,
)
from tradectl.setting_values import (
    boolean,
    email_addresses,
    positive_int,
    positive_number,
    tcp_port,
    webhook_url,
)

TradingMode = Literal["paper", "live"]

PAPER_BASE_URL = "https://paper-api.alpaca.markets"
LIVE_BASE_URL = "https://api.alpaca.markets"
DATA_BASE_URL = "https://data.alpaca.markets"
TELEGRAM_API_URL = "https://api.telegram.org"

# Every setting tradectl reads, with its default as text (None: unset). `.env.example` documents
# the same names; a test keeps the two in step.
DEFAULTS: dict[str, str | None] = {
    "ALPACA_API_KEY": None,
    "ALPACA_SECRET_KEY": None,
    "TRADING_MODE": "paper",
    "ALPACA_BASE_URL": None,
    "ALPACA_DATA_URL": None,
    "ALPACA_TRUSTED_HOSTS": None,
    "ALPACA_TIMEOUT": "10",
    "ALPACA_STREAM": "true",
    "DATABASE_URL": None,
    "DAILY_LOSS_LIMIT": "2000",
    "WATCH_INTERVAL": "60",
    "WATCH_STREAM_DOWN_INTERVAL": "5",
    "MAX_OPEN_POSITIONS": "10",
    "MAX_POSITION_NOTIONAL": "25000",
    "MAX_RISK_PER_TRADE": "500",
    "REARM_PROTECTION": "true",
    # the trader's day at entry (docs/commands/open.md#the-days-rules); each off unless set
    "NO_NEW_ENTRIES_BEFORE_CLOSE": None,
    "MAX_TRADES_PER_DAY": None,
    "COOLDOWN_AFTER_LOSSES": None,
    "DAILY_PROFIT_TARGET": None,
    "MAX_DRAWDOWN_FROM_PEAK": None,  # enforced by `watch` (docs/commands/watch.md)
    "FLATTEN_BEFORE_CLOSE": None,  # `watch` exits day trades; docs/commands/watch.md
    "SMTP_HOST": None,
    "SMTP_PORT": "587",
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_STARTTLS": "true",
    "SMTP_TIMEOUT": "10",
    "SMTP_SSL": "false",  # implicit TLS from the first byte (port 465)
    "SMTP_CA_FILE": None,  # trust this CA (PEM) instead of the system store
    "SMTP_ALLOW_PLAINTEXT": "false",  # allow a login over a connection without TLS
    "ALERT_EMAIL_FROM": None,
    "ALERT_EMAIL_TO": None,
    "ALERT_WEBHOOK_URL": None,
    "ALERT_WEBHOOK_TIMEOUT": "10",
    "ALERT_TELEGRAM_BOT_TOKEN": None,
    "ALERT_TELEGRAM_CHAT_ID": None,
    "ALERT_TELEGRAM_API_URL": TELEGRAM_API_URL,
    "ALERT_TELEGRAM_TIMEOUT": "10",
    "ALERT_FILLS": "false",  # `watch` alerts each entry and exit fill
}


@dataclass(frozen=True)
class Settings:
    trading_mode: TradingMode
    alpaca_base_url: str
    alpaca_data_url: str
    alpaca_timeout: float
    database_url: str
    database_is_default: bool
    daily_loss_limit: Decimal | Amount  # dollars, or Amount(percent=True) of last_equity
    watch_interval: float
    max_open_positions: int
    max_position_notional: Decimal
    max_risk_per_trade: Decimal | Amount  # dollars, or Amount(percent=True) of last_equity
    alpaca_api_key: str | None = field(default=None, repr=False)
    alpaca_secret_key: str | None = field(default=None, repr=False)
    alpaca_stream: bool = True  # `watch` follows Alpaca's trade-updates stream
    # `watch`'s interval while that stream is not connected (fills are then seen only by ticks)
    watch_stream_down_interval: float = 5.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = True
    smtp_timeout: float = 10.0
    smtp_ssl: bool = False
    smtp_ca_file: str | None = None
    smtp_allow_plaintext: bool = False
    alert_email_from: str | None = None
    alert_email_to: tuple[str, ...] = ()
    # carries the hook's token in its path: a secret, shown only through mask_url()
    alert_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_timeout: float = 10.0
    # the bot's token rides in the Bot API's URL path: a secret, never shown in any form
    alert_telegram_bot_token: str | None = field(default=None, repr=False)
    alert_telegram_chat_id: str | None = None
    alert_telegram_api_url: str = TELEGRAM_API_URL
    alert_telegram_timeout: float = 10.0
    alert_fills: bool = False  # an alert per entry fill and exit fill, seen by `watch`
    rearm_protection: bool = True  # `watch` restores a missing stop (one OCO exit order)
    # the day's entry rules (tradectl/domain/day_rules.py); None: off
    no_new_entries_before_close: int | None = None  # minutes before Alpaca's next close
    max_trades_per_day: int | None = None
    cooldown_after_losses: Cooldown | None = None
    daily_profit_target: Amount | None = None  # dollars, or % of the day's starting equity
    max_drawdown_from_peak: Amount | None = None  # dollars, or % of the day's peak equity
    flatten_before_close: int | None = None  # minutes before Alpaca's next close
    # tradectl's own directory (the default database, the stop spool); not a setting
    app_dir: Path | None = None
    alpaca_trusted_hosts: tuple[str, ...] = ()  # hosts besides Alpaca's the keys may go to

    @property
    def alpaca_enabled(self) -> bool:
        return bool(self.alpaca_api_key and self.alpaca_secret_key)

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed, logged or stored."""
        from tradectl.masks import url_secrets

        found = (self.alpaca_api_key, self.alpaca_secret_key, self.smtp_password,
                 self.alert_webhook_url, self.alert_telegram_bot_token,
                 *url_secrets(self.database_url))
        return tuple(s for s in found if s)

    def key_mode_warning(self) -> str | None:
        """Alpaca paper keys start with PK, live keys with AK: say so when they disagree."""
        key = self.alpaca_api_key or ""
        expected = "PK" if self.trading_mode == "paper" else "AK"
        if not key or key.startswith(expected):
            return None
        other = "live" if self.trading_mode == "paper" else "paper"
        looks = f"a {other} key" if key.startswith(("PK", "AK")) else "not an Alpaca key"
        return (
            f"ALPACA_API_KEY looks like {looks} but TRADING_MODE={self.trading_mode} "
            f"({self.trading_mode} keys begin {expected})"
        )


def mask_secret(value: str | None, shown: int = 4) -> str:
    """`PKAB…WXYZ` for a key id; never more than `shown` characters at each end."""
    if not value:
        return "(not set)"
    if len(value) <= 2 * shown + 4:
        return value[:2] + "…"
    return f"{value[:shown]}…{value[-shown:]}"


def mask_url(url: str | None) -> str:
    """A webhook URL as it may be shown: scheme and host only (`https://hooks.slack.com/…`).
    The path, query and any user:password carry the hook's token."""
    if not url:
        return "(not set)"
    return f"{trust.origin(url)}/…"


def default_database_url(app_dir: Path) -> str:
    return f"sqlite:///{app_dir / 'tradectl.db'}"


def load_settings(environ: Mapping[str, str], *, app_dir: Path) -> Settings:
    """Build Settings from `environ`; an invalid value raises ConfigError naming the variable."""

    def raw(name: str) -> str | None:
        value = environ.get(name)
        if value is None or value.strip() == "":
            return DEFAULTS[name]
        return value.strip()

    mode = (raw("TRADING_MODE") or "").lower()
    if mode not in ("paper", "live"):
        raise ConfigError(f"TRADING_MODE must be 'paper' or 'live', got {raw('TRADING_MODE')!r}")

    base_url = _url("ALPACA_BASE_URL", raw("ALPACA_BASE_URL")) or (
        PAPER_BASE_URL if mode == "paper" else LIVE_BASE_URL
    )
    data_url = _url("ALPACA_DATA_URL", raw("ALPACA_DATA_URL")) or DATA_BASE_URL
    # the endpoint decides the mode, and where the keys may go (tradectl/trust.py)
    mode = trust.trading_mode(mode if (environ.get("TRADING_MODE") or "").strip() else None,
                              base_url)
    trusted = trust.trusted_hosts(raw("ALPACA_TRUSTED_HOSTS"))
    trust.route("ALPACA_BASE_URL", base_url, mode, trusted)
    trust.route("ALPACA_DATA_URL", data_url, mode, trusted)
    keys = {name: raw(name) for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")}
    if len({bool(value) for value in keys.values()}) == 2:  # one set, the other empty
        given, missing = sorted(keys, key=lambda name: not keys[name])
        raise ConfigError(f"{given} is set but {missing} is empty: set both to trade, or "
                          "neither to record positions locally")
    database_url = raw("DATABASE_URL")
    if database_url is not None and "://" not in database_url:
        from tradectl.masks import masked_url  # a keyword DSN (password=...) shown masked

        raise ConfigError(
            f"DATABASE_URL must be a URL such as sqlite:///path/to.db or "
            f"postgresql://user@host/db, got {masked_url(database_url)!r}"
        )

    return Settings(
        trading_mode="paper" if mode == "paper" else "live",
        alpaca_api_key=raw("ALPACA_API_KEY"),
        alpaca_secret_key=raw("ALPACA_SECRET_KEY"),
        alpaca_base_url=base_url,
        alpaca_data_url=data_url,
        alpaca_timeout=positive_number("ALPACA_TIMEOUT", raw("ALPACA_TIMEOUT"), "seconds"),
        alpaca_stream=boolean("ALPACA_STREAM", raw("ALPACA_STREAM")),
        database_url=database_url or default_database_url(app_dir),
        database_is_default=database_url is None,
        daily_loss_limit=dollars_or_percent("DAILY_LOSS_LIMIT", raw("DAILY_LOSS_LIMIT")),
        watch_interval=positive_number("WATCH_INTERVAL", raw("WATCH_INTERVAL"), "seconds"),
        watch_stream_down_interval=positive_number(
            "WATCH_STREAM_DOWN_INTERVAL", raw("WATCH_STREAM_DOWN_INTERVAL"), "seconds"),
        max_open_positions=positive_int("MAX_OPEN_POSITIONS", raw("MAX_OPEN_POSITIONS")),
        max_position_notional=_money("MAX_POSITION_NOTIONAL", raw("MAX_POSITION_NOTIONAL")),
        max_risk_per_trade=dollars_or_percent("MAX_RISK_PER_TRADE", raw("MAX_RISK_PER_TRADE")),
        smtp_host=raw("SMTP_HOST"),
        smtp_port=tcp_port("SMTP_PORT", raw("SMTP_PORT")),
        smtp_username=raw("SMTP_USERNAME"),
        smtp_password=raw("SMTP_PASSWORD"),
        smtp_starttls=boolean("SMTP_STARTTLS", raw("SMTP_STARTTLS")),
        smtp_timeout=positive_number("SMTP_TIMEOUT", raw("SMTP_TIMEOUT"), "seconds"),
        smtp_ssl=boolean("SMTP_SSL", raw("SMTP_SSL")),
        smtp_ca_file=raw("SMTP_CA_FILE"),
        smtp_allow_plaintext=boolean("SMTP_ALLOW_PLAINTEXT", raw("SMTP_ALLOW_PLAINTEXT")),
        alert_email_from=raw("ALERT_EMAIL_FROM"),
        alert_email_to=email_addresses("ALERT_EMAIL_TO", raw("ALERT_EMAIL_TO")),
        alert_webhook_url=webhook_url("ALERT_WEBHOOK_URL", raw("ALERT_WEBHOOK_URL")),
        alert_webhook_timeout=positive_number("ALERT_WEBHOOK_TIMEOUT",
                                               raw("ALERT_WEBHOOK_TIMEOUT"), "seconds"),
        **_telegram(raw),
        alert_fills=boolean("ALERT_FILLS", raw("ALERT_FILLS")),
        rearm_protection=boolean("REARM_PROTECTION", raw("REARM_PROTECTION")),
        no_new_entries_before_close=optional(minutes, "NO_NEW_ENTRIES_BEFORE_CLOSE", raw),
        max_trades_per_day=optional(positive_int, "MAX_TRADES_PER_DAY", raw),
        cooldown_after_losses=optional(cooldown, "COOLDOWN_AFTER_LOSSES", raw),
        daily_profit_target=optional(money_or_percent, "DAILY_PROFIT_TARGET", raw),
        max_drawdown_from_peak=optional(money_or_percent, "MAX_DRAWDOWN_FROM_PEAK", raw),
        flatten_before_close=optional(minutes, "FLATTEN_BEFORE_CLOSE", raw),
        app_dir=app_dir,
        alpaca_trusted_hosts=trusted,
    )


def _money(name: str, text: str | None) -> Decimal:
    """Plain dollars and cents (`2000`, `1500.50`): no signs, exponents or sub-cent digits."""
    if text is None or not DOLLARS.fullmatch(text) or Decimal(text) <= 0:
        raise ConfigError(f"{name} must be a positive dollar amount such as 2000, got {text!r}")
    return Decimal(text)










def _url(name: str, text: str | None) -> str | None:
    if text is None:
        return None
    url = text.rstrip("/")
    if not url.startswith(("http://", "https://")) or url.endswith("/v2"):
        raise ConfigError(
            f"{name} must be an http(s) base URL without /v2 "
            f"(e.g. {PAPER_BASE_URL}), got {text!r}"
        )
    return url




def _telegram(raw: Callable[[str], str | None]) -> dict[str, Any]:
    token, chat = telegram_bot(raw)
    api = webhook_url("ALERT_TELEGRAM_API_URL", raw("ALERT_TELEGRAM_API_URL"),
                       TELEGRAM_API_URL)
    return {"alert_telegram_bot_token": token, "alert_telegram_chat_id": chat,
            "alert_telegram_api_url": (api or TELEGRAM_API_URL).rstrip("/"),
            "alert_telegram_timeout": positive_number(
                "ALERT_TELEGRAM_TIMEOUT", raw("ALERT_TELEGRAM_TIMEOUT"), "seconds")}
