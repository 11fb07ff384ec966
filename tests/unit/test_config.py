"""Settings: defaults, validation naming the variable, secrets kept out of repr."""

import re
from decimal import Decimal
from pathlib import Path

import pytest

from tradectl.config import DEFAULTS, Settings, load_settings, mask_secret
from tradectl.errors import ConfigError

APP_DIR = Path("/tmp/tradectl-app")


def load(**env: str) -> Settings:
    return load_settings(env, app_dir=APP_DIR)


def test_defaults() -> None:
    settings = load()
    assert settings.trading_mode == "paper"
    assert settings.alpaca_base_url == "https://paper-api.alpaca.markets"
    assert settings.alpaca_data_url == "https://data.alpaca.markets"
    assert settings.daily_loss_limit == Decimal("2000")
    assert settings.watch_interval == 60
    assert settings.database_url == f"sqlite:///{APP_DIR / 'tradectl.db'}"
    assert settings.database_is_default
    assert not settings.alpaca_enabled
    assert settings.alpaca_stream


def test_live_mode_uses_the_live_url_unless_overridden() -> None:
    assert load(TRADING_MODE="live").alpaca_base_url == "https://api.alpaca.markets"
    assert load(TRADING_MODE="LIVE", ALPACA_BASE_URL="https://127.0.0.1:9/",
                ALPACA_TRUSTED_HOSTS="127.0.0.1").alpaca_base_url == "https://127.0.0.1:9"


@pytest.mark.parametrize("name, value", [
    ("TRADING_MODE", "real"),
    ("DAILY_LOSS_LIMIT", "abc"),
    ("DAILY_LOSS_LIMIT", "-5"),
    ("DAILY_LOSS_LIMIT", "NaN"),
    ("DAILY_LOSS_LIMIT", "10.001"),
    ("WATCH_INTERVAL", "0"),
    ("WATCH_INTERVAL", "inf"),
    ("MAX_OPEN_POSITIONS", "2.5"),
    ("MAX_OPEN_POSITIONS", "9" * 5000),
    ("MAX_POSITION_NOTIONAL", "1e999999"),
    ("SMTP_PORT", "70000"),
    ("SMTP_STARTTLS", "maybe"),
    ("ALPACA_STREAM", "sometimes"),
    ("ALPACA_BASE_URL", "https://paper-api.alpaca.markets/v2"),
    ("ALPACA_DATA_URL", "ftp://x"),
    ("DATABASE_URL", "tradectl.db"),
    ("ALERT_EMAIL_TO", "not an address"),
])
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(**{name: value})
    assert str(raised.value).startswith(name)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("value, on", [("false", False), ("0", False), ("TRUE", True)])
def test_alpaca_stream_is_a_switch(value: str, on: bool) -> None:
    assert load(ALPACA_STREAM=value).alpaca_stream is on


def test_secrets_are_not_in_repr() -> None:
    settings = load(ALPACA_API_KEY="PKSECRETKEYID123456", ALPACA_SECRET_KEY="s3cr3t-value-xyz",
                    SMTP_PASSWORD="mail-pass-123")
    text = repr(settings)
    for secret in settings.secrets():
        assert secret not in text
    assert len(settings.secrets()) == 3


def test_mask_secret_never_shows_the_whole_key() -> None:
    key = "PKABCDEFGHIJKLMNOPQR"
    masked = mask_secret(key)
    assert masked.startswith("PKAB") and masked.endswith("OPQR") and key not in masked
    assert mask_secret("short") == "sh…"
    assert mask_secret(None) == "(not set)"


@pytest.mark.parametrize("mode, key, warned", [
    ("paper", "PKXXXXXXXXXXXXXXXX", False),
    ("paper", "AKXXXXXXXXXXXXXXXX", True),
    ("live", "PKXXXXXXXXXXXXXXXX", True),
    ("live", "AKXXXXXXXXXXXXXXXX", False),
])
def test_key_prefix_must_match_the_mode(mode: str, key: str, warned: bool) -> None:
    warning = load(TRADING_MODE=mode, ALPACA_API_KEY=key,
                   ALPACA_SECRET_KEY="secret").key_mode_warning()
    assert (warning is not None) == warned
    if warning:
        assert key not in warning


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert documented == set(DEFAULTS)
