"""The pre-trade reads `open` sends before it opens the database: in flight at once, side by side,
never for a malformed bracket, and their faults surface when the answers are awaited."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from tradectl.broker import Account, BracketRequest, BrokerPosition
from tradectl.errors import BrokerUnreachable, InputError
from tradectl.services.open.pre_trade import MarketFacts, send_pre_trade_reads

ACCOUNT = Account(
    account_number="PA1", status="ACTIVE", currency="USD", cash=Decimal(100_000),
    equity=Decimal(100_000), last_equity=Decimal(100_000), portfolio_value=Decimal(100_000),
    buying_power=Decimal(200_000), trading_blocked=False, account_blocked=False,
    trade_suspended_by_user=False,
)


def bracket(entry: str | None = None, stop: str = "145", target: str = "160") -> BracketRequest:
    return BracketRequest(symbol="AAPL", side="buy", qty=1, stop=Decimal(stop),
                       target=Decimal(target), entry=Decimal(entry) if entry else None,
                       time_in_force="day")


class HeldBroker:
    """Answers its reads only once released, so a test sees what waits for them. It has the
    three pre-trade reads, not the whole Broker Protocol: hence the tests' ignore[arg-type]."""

    def __init__(self, *, fail_trade: bool = False) -> None:
        self.release = threading.Event()
        self.in_flight = threading.Semaphore(0)
        self.calls: list[str] = []
        self.fail_trade = fail_trade

    def _read(self, name: str) -> None:
        self.calls.append(name)
        self.in_flight.release()
        assert self.release.wait(10)

    def latest_trade_price(self, symbol: str) -> Decimal:
        self._read(f"trade {symbol}")
        if self.fail_trade:
            raise BrokerUnreachable("could not connect to Alpaca")
        return Decimal("150.00")

    def account(self) -> Account:
        self._read("account")
        return ACCOUNT

    def list_positions(self) -> list[BrokerPosition]:
        self._read("positions")
        return []


def test_reads_go_out_side_by_side_and_the_caller_goes_on_before_the_answers() -> None:
    broker = HeldBroker()
    reads = send_pre_trade_reads(broker, bracket())  # type: ignore[arg-type]
    # All reads are in flight together, and we got here without an answer to any.
    assert all(broker.in_flight.acquire(timeout=5) for _ in range(3))
    assert sorted(broker.calls) == ["account", "positions", "trade AAPL"]
    broker.release.set()
    assert reads.facts() == MarketFacts(Decimal("150.00"), ACCOUNT, ())


def test_a_limit_entry_reads_no_trade_and_prices_at_its_limit() -> None:
    broker = HeldBroker()
    broker.release.set()
    reads = send_pre_trade_reads(broker, bracket(entry="150"))  # type: ignore[arg-type]
    assert reads.facts() == MarketFacts(Decimal("150"), ACCOUNT, ())
    assert sorted(broker.calls) == ["account", "positions"]


def test_a_malformed_bracket_sends_nothing() -> None:
    broker = HeldBroker()
    with pytest.raises(InputError, match="--stop"):
        send_pre_trade_reads(broker, bracket(stop="170"))  # type: ignore[arg-type]
    assert broker.calls == []


def test_a_read_fault_surfaces_when_the_answers_are_awaited() -> None:
    broker = HeldBroker(fail_trade=True)
    broker.release.set()
    reads = send_pre_trade_reads(broker, bracket())  # type: ignore[arg-type]
    with pytest.raises(BrokerUnreachable):
        reads.facts()


def test_without_a_broker_the_facts_are_the_entry_alone() -> None:
    assert send_pre_trade_reads(None, bracket(entry="151")).facts() == MarketFacts(
        Decimal("151"), None)
    assert send_pre_trade_reads(None, bracket()).facts() == MarketFacts(None, None)
