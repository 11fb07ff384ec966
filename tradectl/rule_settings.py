"""The values of the trading-rule settings beyond plain dollars: a limit in dollars or as a
percentage, minutes, `N:MINUTES`. Pure parsers for config.load_settings; a bad value raises
ConfigError naming the setting (the caller adds where it was set)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from tradectl.errors import ConfigError

T = TypeVar("T")
DOLLARS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")  # plain dollars and cents
_PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?%")
_COOLDOWN = re.compile(r"([0-9]{1,4}):([0-9]{1,5})")


@dataclass(frozen=True)
class Amount:
    """A limit in dollars (`500`), or a percentage (`1%`) of a base the rule names."""

    value: Decimal
    percent: bool = False


@dataclass(frozen=True)
class Cooldown:
    losses: int  # losing trades in a row
    minutes: int  # no entry for this long after the last of them


def optional(parse: Callable[[str, str | None], T], name: str,
             raw: Callable[[str], str | None]) -> T | None:
    """None when the setting is not given (the rule is off), else its parsed value."""
    text = raw(name)
    return None if text is None else parse(name, text)


def minutes(name: str, text: str | None) -> int:
    if not text or not text.isascii() or not text.isdigit() or not 0 < int(text) <= 1440:
        raise ConfigError(f"{name} must be a whole number of minutes from 1 to 1440, got "
                          f"{text!r}", setting=name)
    return int(text)


def cooldown(name: str, text: str | None) -> Cooldown:
    """`N:MINUTES`: N losing trades in a row, then no entry for MINUTES."""
    match = _COOLDOWN.fullmatch(text or "")
    if match is None or int(match[1]) == 0 or not 0 < int(match[2]) <= 1440:
        raise ConfigError(f"{name} must be LOSSES:MINUTES such as 2:30 (losing trades in a "
                          f"row, then minutes from 1 to 1440 without entries), got {text!r}",
                          setting=name)
    return Cooldown(int(match[1]), int(match[2]))


def money_or_percent(name: str, text: str | None) -> Amount:
    """Dollars (`500`) or a percentage (`1%`, up to 100%) of the day's starting equity."""
    if text is not None and _PERCENT.fullmatch(text) and 0 < Decimal(text[:-1]) <= 100:
        return Amount(Decimal(text[:-1]), percent=True)
    if text is not None and DOLLARS.fullmatch(text) and Decimal(text) > 0:
        return Amount(Decimal(text))
    raise ConfigError(f"{name} must be a positive dollar amount such as 500, or a percentage "
                      f"such as 1%, got {text!r}", setting=name)


def dollars_or_percent(name: str, text: str | None) -> Decimal | Amount:
    """Plain dollars stay a Decimal (`2000`); a percentage (`1%`) is an Amount."""
    amount = money_or_percent(name, text)
    return amount if amount.percent else amount.value
