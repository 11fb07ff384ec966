"""The Telegram bot's settings: its token and the chat, both or neither. A pure parser for
config.load_settings; a bad value raises ConfigError naming the setting, and the token is never
repeated in an error (it is a secret)."""

from __future__ import annotations

import re
from collections.abc import Callable

from tradectl.errors import ConfigError

_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")  # as @BotFather gives it
_CHAT_ID = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,64}")
TOKEN, CHAT = "ALERT_TELEGRAM_BOT_TOKEN", "ALERT_TELEGRAM_CHAT_ID"


def telegram_bot(raw: Callable[[str], str | None]) -> tuple[str | None, str | None]:
    """(token, chat id), both None when Telegram is not configured. One without the other is
    refused, naming the one missing."""
    token, chat = raw(TOKEN), raw(CHAT)
    if bool(token) != bool(chat):
        given, missing = (TOKEN, CHAT) if token else (CHAT, TOKEN)
        raise ConfigError(f"{given} is set but {missing} is empty: set both to alert on "
                          "Telegram, or neither", setting=missing)
    if token is not None and not _BOT_TOKEN.fullmatch(token):
        raise ConfigError(f"{TOKEN} must be a bot token as @BotFather gives it (digits, a "
                          "colon, then letters, digits, _ and -); the value is not shown: it "
                          "is a secret", setting=TOKEN)
    if chat is not None and not _CHAT_ID.fullmatch(chat):
        raise ConfigError(f"{CHAT} must be a chat's number (-100... for a group or channel) "
                          f"or a public channel's @username, got {chat[:40]!r}", setting=CHAT)
    return token, chat
