"""One exception hierarchy and one set of exit codes: every error knows its code and carries a
one-line message (and maybe a hint)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """What a tradectl process tells its caller. Scripts depend on these numbers."""

    OK = 0
    ABORTED = 1  # declined at the live-mode confirmation: nothing written or sent
    BAD_INPUT = 2  # bad input or an invalid setting: nothing written, no broker call
    REFUSED = 3  # a risk rule, or a stopped cycle
    BROKER = 4  # Alpaca rejected the request, could not be reached, or could not be read
    DATABASE = 5  # the database is unreachable, locked, or needs `tradectl db upgrade`
    INTERRUPTED = 130  # Ctrl-C outside `watch` (128 + SIGINT, as shells report it)


class TradectlError(Exception):
    """Base class: `str(err)` is the one line shown to the user; `hint` may add a fix."""

    exit_code = ExitCode.ABORTED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def facts(self) -> dict[str, Any]:
        """What is known beyond the message, for the --json error object."""
        return {}


class InputError(TradectlError):
    """A command-line value is malformed or inconsistent. Nothing was written or sent."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(InputError):
    """A setting (environment or .env) has an invalid value; the message names the variable.
    `setting`: its name, so that the caller that knows where it was set can say so."""

    def __init__(self, message: str, *, hint: str | None = None,
                 setting: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.setting = setting


class RefusedError(TradectlError):
    """A risk rule or a stopped trading cycle refused the action."""

    exit_code = ExitCode.REFUSED

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

    def facts(self) -> dict[str, Any]:
        return {"rule": self.rule, "figures": self.figures}


class Aborted(TradectlError):
    """The user declined at the confirmation prompt. Nothing was written or sent."""

    exit_code = ExitCode.ABORTED


class CycleStoppedError(RefusedError):
    """The emergency stop is latched: no new entries until `tradectl resume`."""


class DatabaseError(TradectlError):
    """The database cannot be reached, is locked, or its schema is not the one tradectl needs."""

    exit_code = ExitCode.DATABASE


class BrokerError(TradectlError):
    """Alpaca answered with an error, or could not be reached.

    `status` is the HTTP status (None when no answer came), `code` Alpaca's error code.
    """

    exit_code = ExitCode.BROKER

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

    def facts(self) -> dict[str, Any]:
        return {"http_status": self.status, "alpaca_code": self.code}

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

    def facts(self) -> dict[str, Any]:
        return {**super().facts(), "field": self.field}


class BrokerNotConfigured(TradectlError):
    """Alpaca keys are not set: the action needs a broker."""

    exit_code = ExitCode.BAD_INPUT


class IllegalTransition(TradectlError):
    """A position was asked to move in a way its lifecycle does not allow (domain/states.py):
    the transaction is rolled back, nothing is recorded."""

    def __init__(self, state: str, event: str) -> None:
        self.state, self.event = str(state), str(event)  # an enum's value, not its repr
        super().__init__(f"a position that is {self.state!r} cannot take {self.event!r}")

    def facts(self) -> dict[str, Any]:
        return {"state": self.state, "event": self.event}
