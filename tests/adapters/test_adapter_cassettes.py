"""The Alpaca adapter replayed from vcrpy cassettes: one short scenario per cassette.

Normally nothing leaves the machine (record_mode "none"). Requests are matched on method, path,
query and body, never on host, so a cassette recorded against the local fake (random port) or
against Alpaca's paper API replays alike. TRADECTL_RECORD=1 re-records: see
tests/adapters/cassettes/README.md.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpcore
import pytest
import vcr
import yaml

from tests.adapters.vcr_httpcore import VCRConnectionPool
from tests.fakes.alpaca import FakeAlpaca
from tradectl.broker import BracketRequest, Order
from tradectl.broker.alpaca import AlpacaBroker
from tradectl.errors import BrokerError

CASSETTES = Path(__file__).parent / "cassettes"
PAPER_URL = "https://paper-api.alpaca.markets"  # never the live API: recording trades for real
PAPER_DATA_URL = "https://data.alpaca.markets"
FILTERED = "<filtered>"
KEY_HEADERS = ("APCA-API-KEY-ID", "APCA-API-SECRET-KEY")
KEY_PATTERN = re.compile(r"(PK|AK)[A-Z0-9]{16,}")
SOURCE_HOSTS = {"fake": ("127.0.0.1", "localhost"), "paper": (PAPER_URL, PAPER_DATA_URL)}

RECORDING = os.environ.get("TRADECTL_RECORD") == "1"
PAPER_KEYS = (os.environ.get("ALPACA_API_KEY", ""), os.environ.get("ALPACA_SECRET_KEY", ""))
ON_PAPER = RECORDING and all(PAPER_KEYS)
FILL_POLLS = 30  # one second apart on paper; the fake fills at once


def _no_sleep(seconds: float) -> None:
    pass


def _no_body_is_none(request: Any) -> Any:
    """httpcore sends a GET's empty body as b"", requests sent None: the same request."""
    if not request.body:
        request.body = None
    return request


def cassette_vcr(record_mode: str) -> vcr.VCR:
    return vcr.VCR(
        record_mode=record_mode,
        before_record_request=_no_body_is_none,
        match_on=("method", "path", "query", "body"),
        filter_headers=[(header, FILTERED) for header in KEY_HEADERS],
        decode_compressed_response=True,
        custom_patches=((httpcore, "ConnectionPool", VCRConnectionPool),),
    )


def cassette_path(name: str) -> Path:
    """The cassette to replay: a paper recording wins over the fake's one."""
    paper = CASSETTES / f"{name}.paper.yaml"
    return paper if paper.exists() else CASSETTES / f"{name}.fake.yaml"


# -- scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    fake_only: str = ""  # why it needs the fake's steering ("" = it records on paper too)
    needs_open_market: bool = False  # it waits for a market order to fill


def scenario(name: str, *, fake_only: str = "", needs_open_market: bool = False) -> Callable:
    def attach(test: Callable) -> Callable:
        # A plan kept on the test function itself (read back by the fixture below).
        test.scenario = Scenario(name, fake_only, needs_open_market)  # type: ignore[attr-defined]
        return test

    return attach


def _body_text(body: Any) -> str:
    if isinstance(body, dict):  # a response body: {"string": ...}
        body = body.get("string")
    if isinstance(body, bytes):
        return body.decode("utf-8")
    return body or ""


class Recording:
    """One test's cassette, the adapter wired to it, and (when recording locally) the fake."""

    def __init__(self, cassette: Any, urls: tuple[str, str], keys: tuple[str, str],
                 fake: FakeAlpaca | None) -> None:
        self.cassette = cassette
        self.fake = fake
        self._urls, self._keys = urls, keys
        self._brokers: list[AlpacaBroker] = []
        self.broker = self.connect()

    def connect(self, keys: tuple[str, str] | None = None) -> AlpacaBroker:
        api_key, secret_key = keys or self._keys
        broker = AlpacaBroker(api_key=api_key, secret_key=secret_key, base_url=self._urls[0],
                              data_url=self._urls[1], timeout=15, sleep=_no_sleep)
        self._brokers.append(broker)
        return broker

    @property
    def requests_sent(self) -> int:
        return sum(broker.requests_sent for broker in self._brokers)

    def steer(self, change: Callable[[FakeAlpaca], None]) -> None:
        """Change the fake's state; a no-op in replay, where the cassette holds the outcome."""
        if self.fake is not None:
            change(self.fake)

    def exchange(self, method: str, path: str) -> tuple[Any, Any]:
        """(request JSON, response JSON) of the first recorded exchange for method + path."""
        for request, response in self.cassette.data:
            if request.method == method and request.path == path:
                body = _body_text(request.body)
                answer = _body_text(response["body"])
                return (json.loads(body) if body else None, json.loads(answer) if answer else None)
        raise AssertionError(f"no {method} {path} in {self.cassette._path}")

    def bracket(self, tag: str, *, limit: bool, symbol: str = "AAPL") -> BracketRequest:
        """A 1-share buy bracket around the market price, with a client_order_id unique to the
        recording. Both come from answers in the cassette, so replayed bodies match exactly
        (and a paper re-record never reuses an id: Alpaca wants them unique)."""
        stamp = self.broker.clock().timestamp
        price = self.broker.latest_trade_price(symbol)
        base = _cents(price * Decimal("0.9")) if limit else price
        return BracketRequest(
            symbol=symbol,
            side="buy",
            qty=1,
            stop=_cents(base * Decimal("0.95")),
            target=_cents(base * Decimal("1.1")),
            entry=base if limit else None,
            time_in_force="gtc" if limit else "day",
            client_order_id=f"tradectl-cassette-{tag}-{stamp:%Y%m%dT%H%M%S}",
        )

    def wait_until_filled(self, order_id: str) -> Order:
        for _ in range(FILL_POLLS):
            order = self.broker.get_order(order_id)
            if order.status == "filled":
                return order
            if ON_PAPER:
                time.sleep(1)
        raise AssertionError(f"order {order_id} did not fill")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _flatten(broker: AlpacaBroker) -> None:
    """Paper only, outside any cassette: cancel and close what a scenario left open."""
    broker.cancel_all_orders()
    broker.close_all_positions(cancel_orders=True)
    for _ in range(FILL_POLLS):
        if not broker.list_positions() and not broker.list_orders(status="open"):
            return
        time.sleep(1)
    raise AssertionError("the paper account did not flatten within 30 s")


@pytest.fixture(scope="module")
def paper_account() -> AlpacaBroker:
    """The paper account to record on: refuse unless it starts flat (we flatten it after each
    scenario, and must not close anyone's positions)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail("record on paper without -n (xdist): the scenarios share one account")
    broker = AlpacaBroker(api_key=PAPER_KEYS[0], secret_key=PAPER_KEYS[1], base_url=PAPER_URL,
                          data_url=PAPER_DATA_URL, timeout=15)
    if broker.list_positions() or broker.list_orders(status="open"):
        pytest.fail("refusing to record: the paper account has open positions or orders")
    return broker


@pytest.fixture
def rec(request: pytest.FixtureRequest) -> Iterator[Recording]:
    """Replays the test's cassette; with TRADECTL_RECORD=1 records it anew (see module doc)."""
    plan: Scenario = request.function.scenario
    fake = cleanup = None
    if not RECORDING:
        path, mode = cassette_path(plan.name), "none"
        # Placeholder keys and Alpaca's URLs: whatever host the cassette names, nothing is sent.
        urls, keys = (PAPER_URL, PAPER_DATA_URL), ("replay-key-id", "replay-secret-key")
    elif ON_PAPER:
        if plan.fake_only:
            pytest.skip(f"fake-only scenario ({plan.fake_only}): its .fake.yaml stays")
        cleanup = request.getfixturevalue("paper_account")
        if plan.needs_open_market and not cleanup.clock().is_open:
            pytest.skip("needs a fill: record while the US market is open")
        path, mode = CASSETTES / f"{plan.name}.paper.yaml", "all"
        urls, keys = (PAPER_URL, PAPER_DATA_URL), PAPER_KEYS
    else:
        fake = FakeAlpaca().start()
        for symbol, price in (("AAPL", "150.00"), ("MSFT", "400.00")):
            fake.set_price(symbol, price)
        path, mode = CASSETTES / f"{plan.name}.fake.yaml", "all"
        urls, keys = (fake.url, fake.url), (fake.api_key, fake.secret_key)
    failed_before = request.session.testsfailed
    if RECORDING:
        path.unlink(missing_ok=True)  # "all" would keep stale interactions that no longer match
    try:
        with cassette_vcr(mode).use_cassette(str(path)) as cassette:
            recording = Recording(cassette, urls, keys, fake)
            yield recording
        if not RECORDING and request.session.testsfailed == failed_before:
            # The adapter sent exactly the recorded requests: none missing, none retried.
            assert cassette.all_played, f"{path.name}: not every recorded request was sent"
            assert recording.requests_sent == cassette.play_count
    finally:
        if fake is not None:
            fake.stop()
        if cleanup is not None:
            _flatten(cleanup)


# -- account, clock, market data ----------------------------------------------------------------


@scenario("account")
def test_account_amounts_are_the_exact_decimals_alpaca_sent(rec: Recording) -> None:
    account = rec.broker.account()

    _, raw = rec.exchange("GET", "/v2/account")
    assert account.status == raw["status"] == "ACTIVE"
    for name in ("cash", "equity", "last_equity", "portfolio_value", "buying_power"):
        value = getattr(account, name)
        assert isinstance(value, Decimal) and value == Decimal(raw[name]), name
    assert account.day_pnl == Decimal(raw["equity"]) - Decimal(raw["last_equity"])
    assert account.trading_blocked is raw["trading_blocked"] is False


@scenario("clock")
def test_clock_times_are_timezone_aware(rec: Recording) -> None:
    clock = rec.broker.clock()

    _, raw = rec.exchange("GET", "/v2/clock")
    assert clock.is_open is raw["is_open"]
    assert all(t.tzinfo is not None for t in (clock.timestamp, clock.next_open, clock.next_close))
    assert clock.timestamp < clock.next_open and clock.timestamp < clock.next_close


@scenario("latest_trade_price")
def test_latest_trade_price_comes_from_the_market_data_path(rec: Recording) -> None:
    price = rec.broker.latest_trade_price("AAPL")

    _, raw = rec.exchange("GET", "/v2/stocks/AAPL/trades/latest")
    assert isinstance(price, Decimal) and price == Decimal(str(raw["trade"]["p"])) > 0


# -- orders ---------------------------------------------------------------------------------------


def _assert_bracket(order: Order, request: BracketRequest) -> None:
    assert (order.client_order_id, order.symbol, order.side) == (
        request.client_order_id, request.symbol, request.side)
    assert (order.order_class, order.qty) == ("bracket", Decimal(request.qty))
    take_profit, stop_loss = sorted(order.legs, key=lambda leg: leg.type)
    assert (take_profit.type, take_profit.side, take_profit.limit_price) == (
        "limit", "sell", request.target)
    assert (stop_loss.type, stop_loss.side, stop_loss.stop_price) == ("stop", "sell", request.stop)


@scenario("submit_bracket_market")
def test_market_bracket_is_posted_with_decimal_strings(rec: Recording) -> None:
    request = rec.bracket("market", limit=False)
    order = rec.broker.submit_bracket(request)

    _assert_bracket(order, request)
    assert order.type == "market" and order.limit_price is None and not order.is_final
    assert {leg.status for leg in order.legs} == {"held"}  # until the parent fills
    sent, _ = rec.exchange("POST", "/v2/orders")
    assert sent == {
        "symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
        "order_class": "bracket", "client_order_id": request.client_order_id,
        "take_profit": {"limit_price": str(request.target)},
        "stop_loss": {"stop_price": str(request.stop)},
    }


@scenario("submit_bracket_limit")
def test_limit_bracket_carries_the_entry_as_limit_price(rec: Recording) -> None:
    request = rec.bracket("limit", limit=True)
    order = rec.broker.submit_bracket(request)

    _assert_bracket(order, request)
    assert (order.type, order.limit_price) == ("limit", request.entry) and not order.is_final
    sent, _ = rec.exchange("POST", "/v2/orders")
    assert (sent["type"], sent["limit_price"], sent["time_in_force"]) == (
        "limit", str(request.entry), "gtc")


@scenario("find_order_by_client_id")
def test_find_order_by_client_id_finds_the_submitted_order(rec: Recording) -> None:
    submitted = rec.broker.submit_bracket(rec.bracket("find", limit=True))

    found = rec.broker.find_order_by_client_id(submitted.client_order_id)

    assert found is not None
    assert (found.id, found.client_order_id, found.order_class) == (
        submitted.id, submitted.client_order_id, "bracket")


@scenario("find_order_by_client_id_missing")
def test_find_order_by_client_id_answers_none_for_an_unknown_id(rec: Recording) -> None:
    assert rec.broker.find_order_by_client_id("tradectl-cassette-never-submitted") is None

    _, raw = rec.exchange("GET", "/v2/orders:by_client_order_id")
    assert set(raw) >= {"code", "message"}  # Alpaca's 404 body, read by the adapter as "none"


@scenario("get_order")
def test_get_order_returns_the_bracket_with_its_legs(rec: Recording) -> None:
    request = rec.bracket("get", limit=True)
    submitted = rec.broker.submit_bracket(request)

    order = rec.broker.get_order(submitted.id)

    assert order.id == submitted.id
    _assert_bracket(order, request)
    assert {leg.status for leg in order.legs} == {"held"}
    assert order.submitted_at is not None and order.submitted_at.tzinfo is not None


@scenario("list_orders_all")
def test_list_orders_all_shows_the_newest_bracket_first_with_legs(rec: Recording) -> None:
    request = rec.bracket("list", limit=True)
    submitted = rec.broker.submit_bracket(request)

    orders = rec.broker.list_orders(status="all")

    assert orders[0].id == submitted.id
    _assert_bracket(orders[0], request)
    assert all(isinstance(order.filled_qty, Decimal) for order in orders)


@scenario("cancel_all_orders")
def test_cancel_all_orders_reports_each_canceled_order(rec: Recording) -> None:
    submitted = rec.broker.submit_bracket(rec.bracket("cancel-all", limit=True))

    outcomes = rec.broker.cancel_all_orders()

    assert submitted.id in {outcome.key for outcome in outcomes}
    assert all(outcome.ok and outcome.error is None for outcome in outcomes)
    _, raw = rec.exchange("DELETE", "/v2/orders")
    assert [outcome.http_status for outcome in outcomes] == [item["status"] for item in raw]


@scenario("submit_bracket_rejected_422")
def test_a_rejected_order_raises_broker_error_with_alpacas_code_and_message(
    rec: Recording,
) -> None:
    valid = rec.bracket("rejected", limit=False)
    sub_penny = replace(valid, stop=valid.stop + Decimal("0.001"))

    with pytest.raises(BrokerError) as caught:
        rec.broker.submit_bracket(sub_penny)

    _, raw = rec.exchange("POST", "/v2/orders")
    error = caught.value
    assert (error.status, error.code) == (422, raw["code"])
    assert error.message == f"Alpaca 422: {raw['message']}"
    assert error.hint is None and rec.requests_sent == 3  # clock, price, one POST: no retry


@scenario("unauthorized_401")
def test_bad_keys_raise_broker_error_401_with_the_keys_hint(rec: Recording) -> None:
    broker = rec.connect(keys=("bad-key-id", "bad-secret-key"))

    with pytest.raises(BrokerError) as caught:
        broker.account()

    _, raw = rec.exchange("GET", "/v2/account")
    assert (caught.value.status, caught.value.code) == (401, raw["code"])
    assert "ALPACA_API_KEY" in (caught.value.hint or "")
    assert broker.requests_sent == 1


# -- positions ----------------------------------------------------------------------------------


def _filled_bracket(rec: Recording, tag: str) -> Order:
    submitted = rec.broker.submit_bracket(rec.bracket(tag, limit=False))
    return rec.wait_until_filled(submitted.id)


@scenario("list_positions", needs_open_market=True)
def test_list_positions_shows_the_filled_bracket(rec: Recording) -> None:
    filled = _filled_bracket(rec, "positions")

    positions = rec.broker.list_positions()

    assert [(p.symbol, p.side, p.qty) for p in positions] == [("AAPL", "long", Decimal(1))]
    assert positions[0].avg_entry_price == filled.filled_avg_price
    assert isinstance(positions[0].market_value, Decimal)


@scenario("close_position_held_403", needs_open_market=True)
def test_close_position_is_refused_while_bracket_legs_hold_the_shares(rec: Recording) -> None:
    _filled_bracket(rec, "close-held")

    with pytest.raises(BrokerError) as caught:
        rec.broker.close_position("AAPL")

    _, raw = rec.exchange("DELETE", "/v2/positions/AAPL")
    assert caught.value.status == 403 and "insufficient qty" in raw["message"]
    assert caught.value.message == f"Alpaca 403: {raw['message']}"
    assert caught.value.hint is None  # not the "check your keys" hint of other 403s


@scenario("close_all_positions", needs_open_market=True)
def test_close_all_positions_cancels_the_legs_and_closes_the_symbol(rec: Recording) -> None:
    _filled_bracket(rec, "close-all")

    outcomes = rec.broker.close_all_positions(cancel_orders=True)

    assert [(o.key, o.ok, o.error) for o in outcomes] == [("AAPL", True, None)]
    closing = outcomes[0].order
    assert closing is not None and (closing.side, closing.qty) == ("sell", Decimal(1))
    sent = [r for r in rec.cassette.requests if (r.method, r.path) == ("DELETE", "/v2/positions")]
    assert [r.query for r in sent] == [[("cancel_orders", "true")]]


@scenario("close_all_positions_refused_symbol", fake_only="fake.fail_close forces the refusal")
def test_close_all_positions_reports_the_symbol_alpaca_refused(rec: Recording) -> None:
    _filled_bracket(rec, "close-all-refused")
    rec.steer(lambda fake: fake.add_position("MSFT", "3", "400"))
    rec.steer(lambda fake: fake.fail_close("MSFT", 403, "position close rejected"))

    outcomes = rec.broker.close_all_positions(cancel_orders=True)

    aapl, msft = outcomes
    assert (aapl.key, aapl.http_status, aapl.error) == ("AAPL", 200, None)
    assert aapl.order is not None and aapl.order.side == "sell"
    assert (msft.key, msft.ok, msft.order) == ("MSFT", False, None)
    assert msft.error == "Alpaca 403: position close rejected"


# -- what is in the cassette files ----------------------------------------------------------------


def cassette_files() -> list[Path]:
    return sorted(CASSETTES.glob("*.yaml"))


def secrets_in(text: str, known: Iterable[str]) -> list[str]:
    """Key-like strings in a cassette's text: known key values and Alpaca-shaped key ids."""
    found = [value for value in known if value and value in text]
    return found + [m.group(0) for m in KEY_PATTERN.finditer(text.replace(FILTERED, ""))]


def known_secrets() -> list[str]:
    fake = FakeAlpaca()  # not started: only its default key pair
    return list(dict.fromkeys([fake.api_key, fake.secret_key, *PAPER_KEYS]))


def test_every_scenario_has_a_cassette() -> None:
    names = {test.scenario.name for test in globals().values() if hasattr(test, "scenario")}
    assert names == {path.name.split(".")[0] for path in cassette_files()}
    assert all(cassette_path(name).exists() for name in names)


def test_no_cassette_holds_a_key() -> None:
    files = cassette_files()
    assert files
    leaks = {p.name: found for p in files if (found := secrets_in(p.read_text(), known_secrets()))}
    assert leaks == {}


def test_the_key_scan_finds_a_key_left_in_a_cassette() -> None:
    text = (CASSETTES / "account.fake.yaml").read_text()
    assert secrets_in(text, known_secrets()) == []
    fake = FakeAlpaca()
    assert secrets_in(text.replace(FILTERED, fake.secret_key, 1), known_secrets()) == [
        fake.secret_key
    ]
    assert secrets_in(text + "\n# AKZ3H8QW2PLM7TXR4NVB\n", []) == ["AKZ3H8QW2PLM7TXR4NVB"]


def test_every_recorded_request_has_its_key_headers_filtered() -> None:
    for path in cassette_files():
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            headers = interaction["request"]["headers"]
            assert [headers.get(h) for h in KEY_HEADERS] == [[FILTERED]] * 2, path.name


def test_cassettes_are_named_after_what_they_were_recorded_against() -> None:
    for path in cassette_files():
        source = path.name.split(".")[-2]
        assert source in SOURCE_HOSTS, f"{path.name}: name it <scenario>.fake|paper.yaml"
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            uri = interaction["request"]["uri"]
            assert any(host in uri for host in SOURCE_HOSTS[source]), (path.name, uri)
