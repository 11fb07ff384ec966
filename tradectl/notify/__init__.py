"""Where alerts go: a small Protocol for a delivery channel and the message it carries.

`smtp.py` is the e-mail channel. Channels talk to the network: callers never hold a database
transaction while they send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Notice:
    """One alert to deliver. `key` identifies it (the outbox row) in a channel's answer."""

    key: int
    subject: str
    body: str


class Channel(Protocol):
    """A configured way of alerting someone."""

    @property
    def name(self) -> str: ...

    @property
    def recipients(self) -> str: ...

    def send(self, notices: Sequence[Notice]) -> dict[int, str | None]:
        """Deliver each notice; per key, None when it was sent or the reason it was not.
        Never raises for network or server faults."""
        ...

    def send_budget(self, count: int) -> float:
        """The longest `send` of `count` notices can take, in seconds (its timeouts added up)."""
        ...
