"""The Telegram settings: both or neither, in Telegram's shapes, the token never repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradectl.config import load_settings
from tradectl.errors import ConfigError

TOKEN = "123456789:TgPr0beSecret-AAbbCCddEEffGGhh_7531"
NOWHERE = Path("/nonexistent")


def test_unset_is_no_telegram_and_the_default_api_is_telegrams() -> None:
    config = load_settings({}, app_dir=NOWHERE)
    assert config.alert_telegram_bot_token is None and config.alert_telegram_chat_id is None
    assert config.alert_telegram_api_url == "https://api.telegram.org"


def test_a_self_hosted_api_is_taken_without_its_trailing_slash() -> None:
    config = load_settings({"ALERT_TELEGRAM_BOT_TOKEN": TOKEN,
                            "ALERT_TELEGRAM_CHAT_ID": "@desk_alerts",
                            "ALERT_TELEGRAM_API_URL": "http://10.0.0.5:8081/tg/",
                            "ALERT_TELEGRAM_TIMEOUT": "3"}, app_dir=NOWHERE)
    assert config.alert_telegram_api_url == "http://10.0.0.5:8081/tg"
    assert config.alert_telegram_chat_id == "@desk_alerts" and config.alert_telegram_timeout == 3
    assert TOKEN in config.secrets() and TOKEN not in repr(config)


@pytest.mark.parametrize("env, named", [
    ({"ALERT_TELEGRAM_BOT_TOKEN": TOKEN}, "ALERT_TELEGRAM_CHAT_ID"),
    ({"ALERT_TELEGRAM_CHAT_ID": "-1001"}, "ALERT_TELEGRAM_BOT_TOKEN"),
    ({"ALERT_TELEGRAM_BOT_TOKEN": TOKEN.replace(":", "/"), "ALERT_TELEGRAM_CHAT_ID": "-1001"},
     "ALERT_TELEGRAM_BOT_TOKEN"),
    ({"ALERT_TELEGRAM_BOT_TOKEN": TOKEN, "ALERT_TELEGRAM_CHAT_ID": "my chat"},
     "ALERT_TELEGRAM_CHAT_ID"),
    ({"ALERT_TELEGRAM_BOT_TOKEN": TOKEN, "ALERT_TELEGRAM_CHAT_ID": "-1001",
      "ALERT_TELEGRAM_API_URL": "ftp://api.telegram.org"}, "ALERT_TELEGRAM_API_URL"),
])
def test_a_half_or_malformed_setting_is_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env, app_dir=NOWHERE)
    assert str(refused.value).startswith(named) or refused.value.setting == named
    assert named in str(refused.value)
    assert TOKEN.partition(":")[2] not in f"{refused.value} {refused.value!r}"
