"""One exception hierarchy: every error knows its exit code and carries a one-line message."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_BROKER = 4
EXIT_DATABASE = 5


class TradectlError(Exception):
    """Base class: `str(err)` is the one line shown to the user; `hint` may add a fix."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(TradectlError):
    """A command-line value is malformed or inconsistent. Nothing was written or sent."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """A setting (environment or .env) has an invalid value; the message names the variable."""


class RefusedError(TradectlError):
    """A risk rule or a stopped trading cycle refused the action."""

    exit_code = EXIT_REFUSED

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        figures: dict[str, Any] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule
        self.figures = figures or {}


class CycleStoppedError(RefusedError):
    """The emergency stop is latched: no new entries until `tradectl resume`."""


class DatabaseError(TradectlError):
    """The database cannot be reached, is locked, or its schema is not the one tradectl needs."""

    exit_code = EXIT_DATABASE


class BrokerError(TradectlError):
    """Alpaca answered with an error, or could not be reached.

    `status` is the HTTP status (None when no answer came), `code` Alpaca's error code.
    """

    exit_code = EXIT_BROKER

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code

    @property
    def transient(self) -> bool:
        """Worth retrying a read or a cancel: rate limit, server error, no answer."""
        return self.status is None or self.status == 429 or self.status >= 500


class BrokerUnreachable(BrokerError):
    """No connection could be made: the request never reached Alpaca."""


class BrokerTimeout(BrokerError):
    """The request was sent but no answer came in time: its outcome is unknown."""


class BrokerProtocolError(BrokerTimeout):
    """Alpaca answered something tradectl cannot read: not JSON, or a field it decides on
    missing or malformed. Like a timeout, the outcome of a write is unknown; no decision is
    taken on such an answer. `field` names what could not be read (e.g. "account.equity"),
    None when the answer was not JSON at all."""

    def __init__(self, message: str, *, field: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class BrokerNotConfigured(TradectlError):
    """Alpaca keys are not set: the action needs a broker."""

    exit_code = EXIT_BAD_INPUT
