"""What tradectl trusts: where the Alpaca keys may be sent, and which `.env` may say so.

The trading mode follows the endpoint (Alpaca's live host is live whatever the label says); the
keys go only to Alpaca's own hosts over https, to this machine in paper mode (a local stand-in),
or to a host the user named in ALPACA_TRUSTED_HOSTS. A `.env` in the working directory may
be anyone's (a cloned repository, a shared folder): when any secret comes from elsewhere, it
may not say where the secrets and alerts go nor loosen a limit. Pure functions: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from tradectl.errors import ConfigError

Mode = Literal["paper", "live"]

LIVE_HOST = "api.alpaca.markets"
PAPER_HOST = "paper-api.alpaca.markets"
ALPACA_HOSTS: dict[str, Mode | None] = {LIVE_HOST: "live", PAPER_HOST: "paper",
                                        "data.alpaca.markets": None}
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]+\]")


@dataclass(frozen=True)
class Route:
    """Where one of tradectl's Alpaca URLs leads and why the keys may go there."""

    origin: str  # scheme://host[:port]: never a path or user:password
    host: str
    why: str


def origin(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    host = parts.hostname or "?"
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}{port}"


def trusted_hosts(text: str | None) -> tuple[str, ...]:
    """ALPACA_TRUSTED_HOSTS: host names (or IP addresses) separated by commas."""
    if text is None:
        return ()
    hosts = tuple(h.strip().lower() for h in text.split(",") if h.strip())
    for host in hosts:
        if not _HOST_NAME.fullmatch(host) and not _is_ip(host):
            raise ConfigError("ALPACA_TRUSTED_HOSTS must be host names separated by commas "
                              f"(no scheme, port or path), such as alpaca.proxy.example, got "
                              f"{text!r}")
    return tuple(h.strip("[]") for h in hosts)


def trading_mode(label: str | None, base_url: str) -> Mode:
    """The mode the endpoint means: Alpaca's own hosts decide it; the TRADING_MODE label (None:
    not set, paper) decides for any other host. A label that contradicts Alpaca's host is
    refused rather than guessed: one of the two is a mistake, and the wrong guess costs money."""
    host_mode = ALPACA_HOSTS.get(urlsplit(base_url).hostname or "")
    if host_mode is None:
        return "live" if label == "live" else "paper"
    if label is not None and label != host_mode:
        raise ConfigError(
            f"TRADING_MODE={label} but ALPACA_BASE_URL {origin(base_url)} is Alpaca's "
            f"{host_mode} endpoint: make the two agree (or unset TRADING_MODE: the endpoint "
            "decides)")
    return host_mode


def route(name: str, url: str, mode: Mode, trusted: tuple[str, ...]) -> Route:
    """The route of `url` (setting `name`), or ConfigError (exit 2) saying why the keys may not
    go there."""
    parts = urlsplit(url)
    host, shown = (parts.hostname or ""), origin(url)
    https = parts.scheme == "https"
    if "@" in parts.netloc:  # it would be shown wherever the URL is; the keys go in headers
        raise ConfigError(f"{name} {shown}: a user or password in the URL is not used by "
                          "tradectl (the keys go in headers); remove it")
    if mode == "live" and not https:
        raise ConfigError(f"{name} {shown} is plain http: in live mode the keys and orders go "
                          "over https only")
    if host in ALPACA_HOSTS:
        if not https:
            raise ConfigError(f"{name} {shown}: Alpaca's hosts are reached over https only")
        kind = ALPACA_HOSTS[host] or "market-data"
        return Route(shown, host, f"Alpaca's {kind} host, https")
    if _is_loopback(host) and mode == "paper":
        return Route(shown, host, "this machine (a local stand-in), paper mode")
    if host in trusted:
        if not https:
            raise ConfigError(f"{name} {shown}: a host named in ALPACA_TRUSTED_HOSTS is reached "
                              "over https only (plain http is for this machine in paper mode)")
        return Route(shown, host, "named in ALPACA_TRUSTED_HOSTS, https")
    where = "Alpaca's hosts over https" + (", or this machine in paper mode"
                                           if mode == "paper" else "")
    raise ConfigError(f"{name} {shown} is not an Alpaca host: the keys go only to {where}; "
                      "name the host in ALPACA_TRUSTED_HOSTS to send them there")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the .env in the working directory ------------------------------------------------------

# Secrets the working directory's .env could send elsewhere if it could say where.
SECRETS = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "SMTP_PASSWORD", "ALERT_TELEGRAM_BOT_TOKEN")
# What that .env may still set when a secret comes from elsewhere: nothing that says where a
# secret, an order, an alert or the record goes, and no limit. A new setting is guarded until
# it is added here.
UNGUARDED = frozenset({*SECRETS, "SMTP_USERNAME", "ALPACA_TIMEOUT", "ALPACA_STREAM",
                       "WATCH_INTERVAL", "SMTP_TIMEOUT", "ALERT_EMAIL_FROM",
                       "ALERT_WEBHOOK_TIMEOUT", "ALERT_TELEGRAM_TIMEOUT"})


def check_working_env(path: Path, working: Mapping[str, str], outside: Mapping[str, str],
                      known: frozenset[str]) -> None:
    """Refuse (exit 2, naming the file) a working-directory `.env` that would set a guarded
    setting while a secret comes from `outside` (the environment or the config directory's
    `.env`): such a file could send keys it never held to a host of its choosing. A setting
    the environment also sets is not taken from the file, so it is no danger."""
    from_outside = [name for name in SECRETS if (outside.get(name) or "").strip()]
    if not from_outside:
        return
    guarded = sorted(name for name in known - UNGUARDED
                     if (working.get(name) or "").strip() and name not in outside)
    if guarded:
        raise ConfigError(
            f"{path} sets {', '.join(guarded)}, but {from_outside[0]} comes from outside it: a "
            ".env in the working directory may not say where keys, orders or alerts go, nor "
            "change a limit, when the keys are not its own; move those settings to the "
            "environment or to tradectl's own .env, or delete the file")
