"""The plain values a setting may hold, each read strictly with an error naming the setting:
numbers of seconds, whole numbers, ports, booleans, e-mail addresses, a URL that may hold a
secret (its value never repeated in the error)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tradectl.errors import ConfigError

SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")


def positive_number(name: str, text: str | None, unit: str) -> float:
    """Plain decimals from 0.001 to 86400: `1e-400` must not turn into a zero timeout."""
    if text is None or not SECONDS.fullmatch(text) or not 0.001 <= float(text) <= 86400:
        raise ConfigError(f"{name} must be a number of {unit} from 0.001 to 86400, got {text!r}")
    return float(text)


def positive_int(name: str, text: str | None) -> int:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 9 or int(text) <= 0:
        raise ConfigError(f"{name} must be a positive whole number, got {text!r}", setting=name)
    return int(text)


def tcp_port(name: str, text: str | None) -> int:
    if not text or not (text.isascii() and text.isdigit() and len(text) <= 5) or not (
        0 < int(text) < 65536
    ):
        raise ConfigError(f"{name} must be a TCP port between 1 and 65535, got {text!r}")
    return int(text)


def boolean(name: str, text: str | None) -> bool:
    value = (text or "").lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def webhook_url(name: str, text: str | None,
                 example: str = "https://hooks.slack.com/services/...") -> str | None:
    """An http(s) URL with a host. The error never repeats the value: it is a secret."""
    if text is None:
        return None
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or any(
            c.isspace() for c in text):
        raise ConfigError(f"{name} must be an http:// or https:// URL with a host, such as "
                          f"{example} (the value is not shown: it may hold a token)")
    return text


def email_addresses(name: str, text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    addresses = tuple(a.strip() for a in text.split(",") if a.strip())
    for address in addresses:
        if "@" not in address or any(c.isspace() for c in address):
            raise ConfigError(f"{name} must be e-mail addresses separated by commas, got {text!r}")
    return addresses
