"""A command's Context made of the in-process fakes: the fake broker (tests/fakes/broker.py), a
real database, a FixedClock and a channel that records what it was asked to send. A command run
with it (`Cli(..., context=parts.context())`) goes through its real parsing, use case and
rendering, with no HTTP server and no settings read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.fakes.broker import FakeBroker, FakeChannel, OpenTransactions
from tradectl.cli.app import Context
from tradectl.config import Settings, load_settings
from tradectl.db.session import Database
from tradectl.db.spool import StopSpool
from tradectl.domain.clock import FixedClock
from tradectl.notify import Channels

# Keys only to say "Alpaca is configured" in the settings: the broker handed in never sends them.
FAKE_KEYS = {"ALPACA_API_KEY": "PKCONTEXT0000000000000", "ALPACA_SECRET_KEY": "s" * 40}


@dataclass
class FakeParts:
    """The parts one test hands to each command it runs. `broker=None`: Alpaca not configured.
    The broker and the channel fail the test when called inside a database transaction."""

    db: Database
    app_dir: Path
    broker: FakeBroker | None
    channel: FakeChannel
    clock: FixedClock = field(default_factory=lambda: FixedClock(datetime(2026, 12, 7, 15, 0,
                                                                          tzinfo=UTC)))
    settings_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, db: Database, app_dir: Path, *, with_broker: bool = True) -> FakeParts:
        transactions = OpenTransactions(db)
        broker = FakeBroker(transactions) if with_broker else None
        if broker is not None:
            for symbol, price in (("AAPL", "150.00"), ("TSLA", "250.00"), ("MSFT", "400.00")):
                broker.set_price(symbol, price)
        return cls(db, app_dir, broker, FakeChannel(transactions))

    def settings(self) -> Settings:
        keys = FAKE_KEYS if self.broker is not None else {}
        return load_settings({"DATABASE_URL": self.db.url, **keys, **self.settings_env},
                             app_dir=self.app_dir)

    def context(self) -> Context:
        """A fresh Context for one command (as the root command makes one per run)."""
        settings = self.settings()
        return Context(settings=settings, database=self.db, broker=self.broker,
                       channels=Channels((self.channel,)),
                       spool=StopSpool(self.app_dir, settings.database_url), clock=self.clock)
