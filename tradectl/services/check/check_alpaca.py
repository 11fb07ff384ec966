"""`check-alpaca`: can tradectl trade right now? Configuration, account, market, data and database
checks, each failure with its likely cause and fix. Reads only: never sends an order."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal, TypeVar

from tradectl.broker import Account, Broker, Clock
from tradectl.config import LIVE_BASE_URL, PAPER_BASE_URL, Settings, mask_secret, mask_url
from tradectl.domain.calendar import MARKET_TZ
from tradectl.domain.money import CENT, dollars
from tradectl.errors import (
    BrokerError,
    BrokerProtocolError,
    BrokerTimeout,
    BrokerUnreachable,
    ConfigError,
    ExitCode,
)
from tradectl.services.check.database_check import Check, DatabaseFacts, database_checks
from tradectl.trust import Route, route

T = TypeVar("T")

NOT_ENABLED_FIX = "Alpaca not enabled: set ALPACA_API_KEY and ALPACA_SECRET_KEY"
# A failed check's exit code, most serious first; any other failed check is the broker's.
_EXIT_CODES = {"settings": ExitCode.BAD_INPUT, "database": ExitCode.DATABASE,
               "schema": ExitCode.DATABASE}


@dataclass(frozen=True)
class Configuration:
    """The settings in use: the key id masked, the secret only as set / not set."""

    trading_mode: str
    base_url: str
    data_url: str
    api_key: str
    secret_key: Literal["set", "not set"]
    env_file: str | None
    alert_webhook_url: str = "(not set)"  # scheme and host only: the rest is the hook's token
    orders_host: str = ""  # where orders (and the keys) go
    orders_trusted: str = ""  # why the keys may go there


@dataclass(frozen=True)
class LatestTrade:
    symbol: str
    price: Decimal


@dataclass(frozen=True)
class CheckReport:
    checks: list[Check]
    configuration: Configuration | None = None
    account: Account | None = None
    clock: Clock | None = None
    latest_trade: LatestTrade | None = None
    database: DatabaseFacts | None = None

    @property
    def exit_code(self) -> ExitCode:
        """2 for a configuration error, else 4 if a broker check failed, else 5 if a database
        check failed, else 0 (warnings allowed)."""
        codes = {_EXIT_CODES.get(c.name, ExitCode.BROKER)
                 for c in self.checks if c.state == "fail"}
        return min(codes, key=lambda code: (code != ExitCode.BAD_INPUT, code),
                   default=ExitCode.OK)


def check_alpaca(
    config: Settings, broker: Broker | None, *, env_file: Path, symbol: str = "AAPL"
) -> CheckReport:
    """Every check, in the order shown. `env_file` is the .env the CLI reads (it may not exist);
    the database is the one `config.database_url` names."""
    checks = [*_configuration_checks(config), _env_file_check(env_file), _alerts_check(config)]
    account = clock = trade = None
    if broker is None:
        checks += [Check(name, "fail", "not checked: no Alpaca keys", NOT_ENABLED_FIX)
                   for name in ("account", "market clock", "latest trade")]
    else:
        account, clock, trade, broker_checks = _broker_checks(config, broker, symbol)
        checks += broker_checks
    db_checks, db_facts = database_checks(config.database_url, config.secrets())
    trading = _routes(config)[0]
    configuration = Configuration(
        config.trading_mode, config.alpaca_base_url, config.alpaca_data_url,
        mask_secret(config.alpaca_api_key), "set" if config.alpaca_secret_key else "not set",
        str(env_file) if env_file.is_file() else None, mask_url(config.alert_webhook_url),
        trading.host, trading.why,
    )
    return CheckReport(checks + db_checks, configuration, account, clock, trade, db_facts)


def configuration_failed(err: ConfigError, env_file: Path) -> CheckReport:
    """The report when the settings themselves cannot be read: nothing else can be checked."""
    fix = err.hint or "correct that variable in the environment or in .env"
    return CheckReport([_env_file_check(env_file), Check("settings", "fail", err.message, fix)])


# -- configuration ---------------------------------------------------------------------------


def _configuration_checks(config: Settings) -> list[Check]:
    key, mode, warning = config.alpaca_api_key, config.trading_mode, config.key_mode_warning()
    missing = [name for name, value in (("ALPACA_API_KEY", key),
                                        ("ALPACA_SECRET_KEY", config.alpaca_secret_key))
               if not value]
    checks = [
        Check("keys", "fail", f"{' and '.join(missing)} not set", NOT_ENABLED_FIX) if missing
        else Check("keys", "pass", f"ALPACA_API_KEY {mask_secret(key)}, ALPACA_SECRET_KEY set"),
        Check("trading mode", "pass", "live: orders use real money" if mode == "live" else "paper"),
    ]
    if key:
        checks.append(Check("key prefix", "warn", warning, f"use {mode} keys, or set "
                            "TRADING_MODE to the mode of these keys") if warning else
                      Check("key prefix", "pass", f"{key[:2]} matches TRADING_MODE={mode}"))
    return [*checks, _base_url_check(config)]


def _base_url_check(config: Settings) -> Check:
    """Where orders go and why the keys may go there (the settings refused anything else)."""
    trading, data = _routes(config)
    return Check("base URLs", "pass",
                 f"orders go to {trading.host} ({config.trading_mode}; {trading.why}), market "
                 f"data from {data.host} ({data.why}): trading {config.alpaca_base_url}, "
                 f"data {config.alpaca_data_url}")


def _routes(config: Settings) -> tuple[Route, Route]:
    trusted = config.alpaca_trusted_hosts
    return (route("ALPACA_BASE_URL", config.alpaca_base_url, config.trading_mode, trusted),
            route("ALPACA_DATA_URL", config.alpaca_data_url, config.trading_mode, trusted))


def _alerts_check(config: Settings) -> Check:
    """Where an emergency stop's alert goes. Nothing is sent here (this command only reads):
    `tradectl alert test` sends a test alert."""
    from tradectl.notify.smtp import smtp_settings
    from tradectl.notify.webhook import in_clear

    channels, unsafe = [], []
    if config.smtp_host and config.alert_email_to:
        how, safe = smtp_settings(config).describe()
        channels.append(f"e-mail to {', '.join(config.alert_email_to)} via "
                        f"{config.smtp_host}:{config.smtp_port} ({how})")
        unsafe += [] if safe else ["set SMTP_STARTTLS=true or SMTP_SSL=true"]
    if config.alert_webhook_url:
        clear = in_clear(config.alert_webhook_url)
        channels.append(f"webhook {mask_url(config.alert_webhook_url)}" + (
            " (http: its token and each alert go in clear)" if clear else ""))
        unsafe += ["use an https:// ALERT_WEBHOOK_URL"] if clear else []
    half = bool(config.smtp_host) != bool(config.alert_email_to)
    if half:
        missing = "ALERT_EMAIL_TO" if config.smtp_host else "SMTP_HOST"
        return Check("alerts", "warn", f"e-mail half configured: {missing} not set" + (
            f"; {'; '.join(channels)}" if channels else ""), f"set {missing}")
    if not channels:  # a choice, not a fault: trading works without alerts
        return Check("alerts", "pass", "none configured: an emergency stop alerts nobody (set "
                     "SMTP_HOST and ALERT_EMAIL_TO, or ALERT_WEBHOOK_URL)")
    shown = "; ".join(channels) + " (`tradectl alert test` sends one)"
    if unsafe:
        return Check("alerts", "warn", shown, "; ".join(unsafe))
    return Check("alerts", "pass", shown)


def _env_file_check(path: Path) -> Check:
    if not path.is_file():
        return Check(".env file", "pass",
                     f"none in {path.parent}: settings come from the environment only")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return Check(".env file", "warn", f"{path} is accessible to other users (mode "
                     f"{mode:04o})", f"chmod 600 {path}")
    return Check(".env file", "pass", f"{path} (mode {mode:04o})")


# -- the broker ------------------------------------------------------------------------------


def _broker_checks(
    config: Settings, broker: Broker, symbol: str
) -> tuple[Account | None, Clock | None, LatestTrade | None, list[Check]]:
    """Three reads side by side, so a slow or unreachable Alpaca costs one wait, not three."""
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="check-alpaca") as pool:
        reads = (pool.submit(broker.account), pool.submit(broker.clock),
                 pool.submit(broker.latest_trade_price, symbol))
    account, clock, price = _settle(reads[0]), _settle(reads[1]), _settle(reads[2])
    base, data = config.alpaca_base_url, config.alpaca_data_url
    checks = ([_failure("account", account, base, config)] if isinstance(account, BrokerError)
              else _account_checks(account))
    checks.append(_failure("market clock", clock, base, config)
                  if isinstance(clock, BrokerError) else _clock_check(clock))
    if isinstance(price, BrokerError):
        checks.append(_failure("latest trade", price, data, config, symbol=symbol))
        return _ok(account), _ok(clock), None, checks
    shown = price.quantize(CENT) if price == price.quantize(CENT) else price  # 150.0 -> 150.00
    checks.append(Check("latest trade", "pass", f"{symbol} {shown:f} from {data}"))
    return _ok(account), _ok(clock), LatestTrade(symbol, price), checks


def _settle(future: Future[T]) -> T | BrokerError:
    try:
        return future.result()
    except BrokerError as err:
        return err


def _ok(result: T | BrokerError) -> T | None:
    return None if isinstance(result, BrokerError) else result


def _usd(value: Decimal | None) -> str:
    return "not given" if value is None else dollars(value)


def _account_checks(account: Account) -> list[Check]:
    summary = (f"{account.account_number} {account.status}: cash {_usd(account.cash)}, "
               f"portfolio {_usd(account.portfolio_value)}, buying power "
               f"{_usd(account.buying_power)}, day P&L {dollars(account.day_pnl)}")
    flags = (("trading", account.trading_blocked), ("account", account.account_blocked),
             ("trading by user", account.trade_suspended_by_user))
    blocked = [what for what, flag in flags if flag]
    unknown = [what for what, flag in flags if flag is None]  # not said: not "not blocked"
    return [
        Check("account", "pass", summary) if account.status.upper() == "ACTIVE" else
        Check("account", "fail", summary, f"the account is {account.status}, not ACTIVE: "
              "finish onboarding or see the Alpaca dashboard"),
        Check("trading allowed", "fail", f"blocked or suspended: {', '.join(blocked)}",
              "a suspension by user is lifted in the Alpaca dashboard; for a blocked account "
              "or trading contact Alpaca support") if blocked else
        Check("trading allowed", "warn", f"Alpaca did not say whether {', '.join(unknown)} "
              "is blocked", "see the Alpaca dashboard") if unknown else
        Check("trading allowed", "pass", "trading, account and trading-by-user not blocked"),
    ]


def _clock_check(clock: Clock) -> Check:
    if clock.is_open:
        return Check("market clock", "pass", f"open; closes {_when(clock.next_close)}")
    return Check("market clock", "warn",
                 f"closed; opens {_when(clock.next_open)}; orders sent now wait for the open")


def _when(moment: datetime) -> str:
    # astimezone: Alpaca's clock may come with its -04:00 offset, not in UTC
    return (f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
            f"({moment.astimezone(MARKET_TZ):%H:%M} New York)")


def _failure(name: str, err: BrokerError, url: str, config: Settings, *,
             symbol: str | None = None) -> Check:
    return Check(name, "fail", f"{err.message} ({url})", diagnose(err, url, config, symbol))


def diagnose(err: BrokerError, url: str, config: Settings, symbol: str | None = None) -> str:
    """The seed's troubleshooting list, made automatic: likely cause, then the fix."""
    if err.status in (401, 403):
        mismatch = config.key_mode_warning()
        return (
            (f"{mismatch}. " if mismatch else "")
            + "Invalid keys, or keys of the other mode: paper keys (PK...) work only with "
            f"{PAPER_BASE_URL}, live keys (AK...) with {LIVE_BASE_URL}. Check ALPACA_API_KEY, "
            "ALPACA_SECRET_KEY and TRADING_MODE; regenerate the keys in the Alpaca dashboard "
            "if they still fail"
        )
    if err.status == 429:
        return "rate limited by Alpaca: wait a minute and run the check again"
    if symbol is not None and (err.status in (400, 404, 422) or (
            isinstance(err, BrokerProtocolError) and (err.field or "").startswith(
                "latest trade.trade"))):
        return (f"{symbol} is not a symbol the market-data API knows (it answered, without a "
                "trade for it): check that --symbol is a valid ticker tradeable on Alpaca")
    if err.status == 404:
        return f"wrong base URL: {url} is not an Alpaca API (set it without /v2)"
    if err.status is not None and err.status >= 500:
        return "Alpaca had a server error: try again shortly (https://status.alpaca.markets)"
    if isinstance(err, BrokerProtocolError):  # before BrokerTimeout, its base class
        return (f"Alpaca answered something tradectl cannot read ({err.field or 'not JSON'}): "
                "nothing is decided on such an answer; check that the URL leads to Alpaca "
                "itself (not a proxy), and try again")
    check = "check the network and ALPACA_BASE_URL / ALPACA_DATA_URL"
    if isinstance(err, BrokerUnreachable):
        return (f"network or wrong base URL: no connection to {url} (refused, unknown host or "
                f"timed out); {check}")
    if isinstance(err, BrokerTimeout):
        return (f"network or wrong base URL: {url} gave no usable answer within "
                f"ALPACA_TIMEOUT={config.alpaca_timeout:g}s; {check}")
    return err.hint or "see the message above and the Alpaca dashboard"
