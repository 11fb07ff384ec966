"""Secrets taken out of a server's error text and of the HTTP libraries' log records while a
channel sends: a webhook's URL and a Telegram bot's token travel in the request's URL, which
an HTTP library may log at DEBUG. The scrub ignores case (a server may echo a token upper- or
lower-cased)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_LOGGERS = ("httpx", "httpcore")


class Redact(logging.Filter):
    """Replaces each of `secrets` (the longest first) with `…`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(p) for p in ordered), re.IGNORECASE) \
            if ordered else None

    def scrub(self, text: str) -> str:
        return self._pattern.sub("…", text) if self._pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True

    def installed(self) -> Installed:
        return Installed(self)


class Installed:
    """The filter on every httpx / httpcore logger for the duration of a send."""

    def __init__(self, redact: Redact) -> None:
        self._redact = redact
        self._loggers: list[logging.Logger] = []

    def __enter__(self) -> None:
        manager = logging.root.manager
        names = [n for n in manager.loggerDict if n.split(".")[0] in _LOGGERS]
        self._loggers = [logging.getLogger(n) for n in {*names, *_LOGGERS}]
        for logger in self._loggers:
            logger.addFilter(self._redact)

    def __exit__(self, *_exc: object) -> None:
        for logger in self._loggers:
            logger.removeFilter(self._redact)
