"""The pre-trade reads `open` sends before it opens the database: in flight at once, side by side,
never for a malformed bracket, and their faults surface when the answers are awaited."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Cli, broker_env
from tests.fakes.alpaca import FakeAlpaca
from tradectl.broker import Account
from tradectl.errors import BrokerUnreachable, InputError
from tradectl.risk import BracketSpec
from tradectl.services.pre_trade import MarketFacts, request_market_facts

ACCOUNT = Account(
    account_number="PA1", status="ACTIVE", currency="USD", cash=Decimal(100_000),
    equity=Decimal(100_000), last_equity=Decimal(100_000), portfolio_value=Decimal(100_000),
    buying_power=Decimal(200_000), trading_blocked=False, account_blocked=False,
    trade_suspended_by_user=False,
)


def bracket(entry: str | None = None, stop: str = "145", target: str = "160") -> BracketSpec:
    return BracketSpec(symbol="AAPL", side="buy", qty=1, stop=Decimal(stop),
                       target=Decimal(target), entry=Decimal(entry) if entry else None,
                       time_in_force="day")


class HeldBroker:
    """Answers its reads only once released, so a test sees what waits for them."""

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


def test_reads_go_out_side_by_side_and_the_caller_goes_on_before_the_answers() -> None:
    broker = HeldBroker()
    wait = request_market_facts(broker, bracket())  # type: ignore[arg-type]
    # Both reads are in flight together, and we got here without an answer to either.
    assert broker.in_flight.acquire(timeout=5) and broker.in_flight.acquire(timeout=5)
    assert sorted(broker.calls) == ["account", "trade AAPL"]
    broker.release.set()
    assert wait() == MarketFacts(Decimal("150.00"), ACCOUNT)


def test_a_limit_entry_reads_only_the_account_and_prices_at_its_limit() -> None:
    broker = HeldBroker()
    broker.release.set()
    assert request_market_facts(broker, bracket(entry="150"))() == MarketFacts(  # type: ignore[arg-type]
        Decimal("150"), ACCOUNT)
    assert broker.calls == ["account"]


def test_a_malformed_bracket_sends_nothing() -> None:
    broker = HeldBroker()
    with pytest.raises(InputError, match="--stop"):
        request_market_facts(broker, bracket(stop="170"))  # type: ignore[arg-type]
    assert broker.calls == []


def test_a_read_fault_surfaces_when_the_answers_are_awaited() -> None:
    broker = HeldBroker(fail_trade=True)
    broker.release.set()
    wait = request_market_facts(broker, bracket())  # type: ignore[arg-type]
    with pytest.raises(BrokerUnreachable):
        wait()


def test_without_a_broker_the_facts_are_the_entry_alone() -> None:
    assert request_market_facts(None, bracket(entry="151"))() == MarketFacts(Decimal("151"), None)
    assert request_market_facts(None, bracket())() == MarketFacts(None, None)


# -- through the command: the reads start before the database opens, so what the database
# -- refuses must still leave the broker without an order --------------------------------------


OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")


@pytest.mark.parametrize(("url", "code", "said", "reads_allowed"), [
    ("postgresql://u:pw@host:abc/db", 2, "DATABASE_URL", 0),  # bad settings: no broker read
    ("postgresql://trader@127.0.0.1:1/tradectl", 5, "127.0.0.1:1", 2),  # unreachable: no order
])
def test_what_the_database_refuses_leaves_the_broker_without_an_order(
    fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    url: str, code: int, said: str, reads_allowed: int,
) -> None:
    cli = Cli(monkeypatch, tmp_path)
    cli.env.update(broker_env(fake), DATABASE_URL=url)
    result = cli(*OPEN)
    assert result.code == code and said in result.stderr, result.output
    assert len(fake.requests) <= reads_allowed, fake.requests
    assert all(r.method == "GET" for r in fake.requests)
