"""Where the Alpaca keys may go: the mode follows the endpoint, a contradicting label is refused,
live mode is https only, and a host besides Alpaca's (or, in paper mode, this machine) must be
named in ALPACA_TRUSTED_HOSTS."""

from pathlib import Path

import pytest

from tradectl.config import DEFAULTS, Settings, load_settings
from tradectl.errors import ConfigError
from tradectl.trust import check_working_env

LIVE, PAPER = "https://api.alpaca.markets", "https://paper-api.alpaca.markets"


def load(**env: str) -> Settings:
    return load_settings(env, app_dir=Path("/tmp/tradectl-app"))


def refusal(**env: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load(**env)
    return str(raised.value)


def test_alpacas_live_host_is_live_whatever_the_label_left_unset() -> None:
    assert load(ALPACA_BASE_URL=LIVE).trading_mode == "live"
    assert load(ALPACA_BASE_URL=PAPER).trading_mode == "paper"
    assert load(TRADING_MODE="live").alpaca_base_url == LIVE


@pytest.mark.parametrize(("mode", "url", "host_mode"), [("paper", LIVE, "live"),
                                                       ("live", PAPER, "paper")])
def test_a_label_that_contradicts_alpacas_host_is_refused_naming_both(
        mode: str, url: str, host_mode: str) -> None:
    message = refusal(TRADING_MODE=mode, ALPACA_BASE_URL=url + "/")
    assert message.startswith(f"TRADING_MODE={mode} but ALPACA_BASE_URL {url} ")
    assert f"Alpaca's {host_mode} endpoint" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9",
                                 "https://127.0.0.1:9"])
def test_paper_mode_may_send_the_keys_to_this_machine(url: str) -> None:
    assert load(ALPACA_BASE_URL=url, ALPACA_DATA_URL=url).trading_mode == "paper"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://[::1]:9",
                                 "http://alpaca.proxy.example"])
def test_live_mode_never_uses_plain_http(url: str) -> None:
    message = refusal(TRADING_MODE="live", ALPACA_BASE_URL=url,
                      ALPACA_TRUSTED_HOSTS="alpaca.proxy.example,127.0.0.1,::1")
    assert message.startswith("ALPACA_BASE_URL http://") and "plain http" in message


@pytest.mark.parametrize("url", [
    "https://alpaca.proxy.example", "http://alpaca.proxy.example",
    "https://api.alpaca.markets.evil.example",
    "https://paper-api.alpaca.markets.", "http://10.0.0.5:8080",
])
@pytest.mark.parametrize("name", ["ALPACA_BASE_URL", "ALPACA_DATA_URL"])
def test_any_other_host_must_be_named_in_trusted_hosts(url: str, name: str) -> None:
    message = refusal(**{name: url})
    assert message.startswith(f"{name} ") and "ALPACA_TRUSTED_HOSTS" in message


def test_a_trusted_host_is_reached_over_https_only() -> None:
    trusted = {"ALPACA_TRUSTED_HOSTS": " Alpaca.Proxy.example , other.example"}
    settings = load(ALPACA_BASE_URL="https://alpaca.proxy.example:8443", **trusted)
    assert settings.alpaca_trusted_hosts == ("alpaca.proxy.example", "other.example")
    assert load(TRADING_MODE="live", ALPACA_BASE_URL="https://alpaca.proxy.example",
                **trusted).trading_mode == "live"
    assert "over https only" in refusal(ALPACA_BASE_URL="http://alpaca.proxy.example", **trusted)


@pytest.mark.parametrize("url", ["http://api.alpaca.markets", "http://paper-api.alpaca.markets"])
def test_alpacas_hosts_are_reached_over_https_only(url: str) -> None:
    assert "over https only" in refusal(ALPACA_BASE_URL=url)
    assert "over https only" in refusal(ALPACA_DATA_URL="http://data.alpaca.markets")


@pytest.mark.parametrize("value", ["https://proxy.example", "proxy.example:443", "a b",
                                   "proxy.example/path"])
def test_trusted_hosts_are_host_names(value: str) -> None:
    assert refusal(ALPACA_TRUSTED_HOSTS=value).startswith("ALPACA_TRUSTED_HOSTS must be")


def test_the_error_shows_scheme_and_host_never_a_password_in_the_url() -> None:
    message = refusal(ALPACA_BASE_URL="https://user:SeCrEtPw@proxy.example/base")
    assert "SeCrEtPw" not in message and "https://proxy.example" in message
    message = refusal(ALPACA_BASE_URL="https://user:SeCrEtPw@api.alpaca.markets")
    assert "SeCrEtPw" not in message and "user or password in the URL" in message
    message = refusal(ALPACA_BASE_URL="https://api.alpaca.markets@evil.example")
    assert message.startswith("ALPACA_BASE_URL https://evil.example: a user or password")


# -- the .env in the working directory ------------------------------------------------------


KNOWN = frozenset(DEFAULTS)
WORKING = Path("/work/dir/.env")


def test_a_working_env_may_not_redirect_keys_that_come_from_elsewhere() -> None:
    outside = {"ALPACA_API_KEY": "PKFROMENV", "ALPACA_SECRET_KEY": "from-env"}
    for name in ("ALPACA_BASE_URL", "ALPACA_DATA_URL", "ALPACA_TRUSTED_HOSTS", "TRADING_MODE",
                 "DAILY_LOSS_LIMIT", "MAX_RISK_PER_TRADE", "ALERT_WEBHOOK_URL", "SMTP_HOST",
                 "DATABASE_URL", "REARM_PROTECTION"):
        with pytest.raises(ConfigError) as raised:
            check_working_env(WORKING, {name: "x"}, outside, KNOWN)
        assert str(raised.value).startswith(f"{WORKING} sets {name}, but ALPACA_API_KEY")


def test_a_working_env_keeps_what_cannot_redirect() -> None:
    outside = {"ALPACA_API_KEY": "PKFROMENV", "SMTP_PASSWORD": "from-env"}
    check_working_env(WORKING, {"ALPACA_SECRET_KEY": "s", "ALPACA_TIMEOUT": "5",
                                "WATCH_INTERVAL": "5", "NOT_A_SETTING": "x"}, outside, KNOWN)
    # a setting the environment also sets is not taken from the file
    check_working_env(WORKING, {"ALPACA_BASE_URL": "https://evil.example"},
                      {**outside, "ALPACA_BASE_URL": PAPER}, KNOWN)
    # keys of its own: the file is the user's set-up (`cp .env.example .env`)
    check_working_env(WORKING, {"ALPACA_API_KEY": "PK", "ALPACA_SECRET_KEY": "s",
                                "ALPACA_BASE_URL": "http://127.0.0.1:9"}, {}, KNOWN)


def test_smtp_password_from_elsewhere_guards_the_relay() -> None:
    with pytest.raises(ConfigError, match="sets SMTP_HOST, SMTP_STARTTLS, but SMTP_PASSWORD"):
        check_working_env(WORKING, {"SMTP_HOST": "relay.evil.example", "SMTP_STARTTLS": "false"},
                          {"SMTP_PASSWORD": "from-env"}, KNOWN)


@pytest.mark.parametrize(("base", "stream"), [
    ("https://api.alpaca.markets", "wss://api.alpaca.markets/stream/"),
    ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/stream/"),
])
def test_the_stream_follows_the_base_url(base: str, stream: str) -> None:
    """The SDK derives the trade-updates websocket from ALPACA_BASE_URL (the SDK's own rule,
    pinned here): the keys it sends go where the checked base URL leads, encrypted when it is
    https."""
    from alpaca_trade_api.common import URL
    from alpaca_trade_api.stream import TradingStream

    assert TradingStream("k", "s", base_url=URL(load(ALPACA_BASE_URL=base).alpaca_base_url)
                         )._endpoint == stream
