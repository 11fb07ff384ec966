"""Where alerts go: a small Protocol for a delivery channel, the message it carries, and the set
of channels configured.

`smtp.py` is the e-mail channel, `webhook.py` the JSON webhook (Slack, Discord, ntfy, ...),
`telegram.py` the Telegram Bot API.
Channels talk to the network: callers never hold a database transaction while they send.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Notice:
    """One alert to deliver. `key` identifies it (the outbox row) in a channel's answer;
    `facts` are the structured figures a webhook carries beside the text."""

    key: int
    subject: str
    body: str
    kind: str = "alert"
    facts: Mapping[str, Any] | None = None
    created_at: datetime | None = None
    cycle_id: int | None = None


class Channel(Protocol):
    """A configured way of alerting someone."""

    @property
    def name(self) -> str:
        """Its key in the outbox (`alerts.channel`): "e-mail", "webhook", "telegram"."""
        ...

    @property
    def recipients(self) -> str:
        """Who receives it, as it may be shown and stored: never a secret."""
        ...

    def send(self, notices: Sequence[Notice]) -> dict[int, str | None]:
        """Deliver each notice; per key, None when it was sent or the reason it was not.
        Never raises for network or server faults."""
        ...

    def send_budget(self, count: int) -> float:
        """The longest `send` of `count` notices can take, in seconds (its timeouts added up)."""
        ...


@dataclass(frozen=True)
class Channels:
    """The channels configured: every alert goes to each, and each delivers (and is retried)
    on its own."""

    members: tuple[Channel, ...] = field(default=())

    def __iter__(self) -> Iterator[Channel]:
        return iter(self.members)

    def __bool__(self) -> bool:
        return bool(self.members)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.members)
