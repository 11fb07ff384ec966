"""Service tests: the use cases on a real SQLite database with the in-process fake broker and
alert channel, which fail the test if called while a database transaction is open."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.broker import FakeBroker, FakeChannel, OpenTransactions
from tradectl.broker import BracketRequest
from tradectl.db.session import Database
from tradectl.domain.pre_trade import RiskLimits
from tradectl.notify import Channels

LIMITS = RiskLimits(max_open_positions=10, max_position_notional=Decimal(25_000),
                    max_risk_per_trade=Decimal(500), daily_loss_limit=Decimal(2000))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'services.db'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def transactions(db: Database) -> OpenTransactions:
    return OpenTransactions(db)


@pytest.fixture
def broker(transactions: OpenTransactions) -> FakeBroker:
    fake = FakeBroker(transactions)
    for symbol, price in (("AAPL", "150"), ("TSLA", "250"), ("MSFT", "400")):
        fake.set_price(symbol, price)
    return fake


@pytest.fixture
def channel(transactions: OpenTransactions) -> FakeChannel:
    return FakeChannel(transactions)


@pytest.fixture
def channels(channel: FakeChannel) -> Channels:
    """The configured channels: the fake e-mail channel alone."""
    return Channels((channel,))
def bracket(symbol: str = "AAPL", stop: str = "145", target: str = "160",
            entry: str | None = None) -> BracketRequest:
    return BracketRequest(symbol, "buy", 2, Decimal(stop), Decimal(target),
                          Decimal(entry) if entry else None, "day")


def open_position(db: Database, broker: FakeBroker, spec: BracketRequest) -> None:
    from tradectl.services.open.open_position import place_open, quote_open
    from tradectl.services.open.pre_trade import send_pre_trade_reads

    outcome = place_open(db, broker, LIMITS, quote_open(db, send_pre_trade_reads(broker, spec)))
    assert outcome.broker_error is None, outcome.broker_error
