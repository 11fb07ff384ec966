"""Every request the adapter sends and every answer it reads match Alpaca's OpenAPI spec.

Three sources of exchanges: the committed cassettes, a live run of the adapter against the fake
covering the whole Broker Protocol, and (to show the check bites) an order as the SDK's own
submit_order would send it. The spec stays in ../shared: require_spec() skips without it, and
fails under CI=true.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.adapters.spec_check import require_spec, validate_exchange
from tests.fakes.alpaca import FakeAlpaca
from tradectl.broker import BracketRequest, Broker, BrokerRequest, OcoExitRequest
from tradectl.broker.alpaca import AlpacaBroker
from tradectl.errors import BrokerError

CASSETTES = Path(__file__).parent / "cassettes"
PROTOCOL_METHODS = {name for name in vars(Broker) if not name.startswith("_")}


def _no_sleep(seconds: float) -> None:
    pass


def _json(text: Any) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text) if text else None


def interaction_errors(spec: dict, interaction: dict) -> list[str]:
    """Spec errors of one vcrpy interaction (the request sent and the answer recorded)."""
    request, response = interaction["request"], interaction["response"]
    return validate_exchange(
        spec,
        request["method"],
        request["uri"],
        None,
        _json(request["body"]),
        response["status"]["code"],
        _json(response["body"]["string"]),
    )


def cassette_errors(spec: dict, cassette: dict) -> dict[str, list[str]]:
    return {
        f"#{index} {item['request']['method']} {item['request']['uri']}": errors
        for index, item in enumerate(cassette["interactions"])
        if (errors := interaction_errors(spec, item))
    }


def load_cassette(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


CASSETTE_FILES = sorted(CASSETTES.glob("*.yaml"))


def test_there_are_cassettes_to_check() -> None:
    assert len(CASSETTE_FILES) >= 10


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=[p.name for p in CASSETTE_FILES])
def test_every_exchange_in_the_cassette_matches_the_spec(path: Path) -> None:
    spec = require_spec()
    assert cassette_errors(spec, load_cassette(path)) == {}


def test_the_cassette_check_catches_a_numeric_qty() -> None:
    spec = require_spec()
    cassette = load_cassette(CASSETTES / "submit_bracket_market.fake.yaml")
    broken = copy.deepcopy(cassette)
    post = next(i for i in broken["interactions"] if i["request"]["method"] == "POST")
    post["request"]["body"] = json.dumps({**json.loads(post["request"]["body"]), "qty": 1})

    assert cassette_errors(spec, cassette) == {}
    assert list(cassette_errors(spec, broken).values()) == [
        ["request: InvalidRequestBody at /qty: 1 is not of type 'string'"]
    ]


# -- the adapter against the fake -----------------------------------------------------------------


class CallLog:
    """The adapter, noting which of its methods a scenario called."""

    def __init__(self, broker: AlpacaBroker) -> None:
        self._broker = broker
        self.called: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.called.add(name)
        return getattr(self._broker, name)

    def fails(self, call: Callable[[], object]) -> BrokerError:
        with pytest.raises(BrokerError) as caught:
            call()
        return caught.value


def adapter(fake: FakeAlpaca, *, api_key: str | None = None) -> AlpacaBroker:
    return AlpacaBroker(api_key=api_key or fake.api_key, secret_key=fake.secret_key,
                        base_url=fake.url, data_url=fake.url, timeout=5, sleep=_no_sleep)


def bracket(symbol: str, client_order_id: str, *, entry: str | None = None,
            stop: str = "140", target: str = "160") -> BracketRequest:
    return BracketRequest(
        symbol=symbol, side="buy", qty=2, stop=Decimal(stop), target=Decimal(target),
        entry=None if entry is None else Decimal(entry),
        time_in_force="day" if entry is None else "gtc", client_order_id=client_order_id,
    )


def sent_as_described(fake: FakeAlpaca, described: BrokerRequest) -> None:
    """What a dry run shows is what was sent: the fake's record of the last request."""
    sent = fake.requests[-1]
    assert (described.method, described.path, described.params, described.body) == (
        sent.method, sent.path, sent.query, sent.json)
    assert described.url.startswith(f"{fake.url}{sent.path}")


def test_every_exchange_of_the_adapter_with_the_fake_matches_the_spec(fake: FakeAlpaca) -> None:
    spec = require_spec()
    broker = CallLog(adapter(fake))

    fake.set_market_open(False)
    assert broker.clock().is_open is False
    broker.account()
    assert isinstance(broker.equity_history(datetime.now(UTC) - timedelta(days=1)), list)
    assert broker.latest_trade_price("AAPL") == Decimal("150")
    aapl = broker.submit_bracket(bracket("AAPL", "conformance-aapl"))
    assert {leg.status for leg in broker.get_order(aapl.id).legs} == {"held"}
    fake.set_market_open(True)  # the AAPL bracket fills; its legs now hold the shares
    msft_bracket = bracket("MSFT", "conformance-msft", entry="380", stop="350", target="420")
    msft = broker.submit_bracket(msft_bracket)
    # what a dry run shows is what was sent
    described = broker.bracket_order_request(msft_bracket)
    (posted,) = [r for r in fake.requests if r.method == "POST"
                 and (r.json or {}).get("client_order_id") == "conformance-msft"]
    assert (described.method, described.path, described.body) == ("POST", posted.path,
                                                                   posted.json)
    assert described.url == f"{fake.url}/v2/orders"
    assert broker.find_order_by_client_id("conformance-aapl").id == aapl.id
    assert broker.find_order_by_client_id("conformance-unknown") is None  # 404
    assert {o.id for o in broker.list_orders()} == {aapl.id, msft.id}
    after = datetime.now(UTC) - timedelta(hours=1)
    assert len(broker.list_orders(status="all", after=after, page_size=1)) == 2  # 3 pages
    assert [p.symbol for p in broker.list_positions()] == ["AAPL"]
    assert broker.fails(lambda: broker.close_position("AAPL")).status == 403  # legs hold it
    assert broker.fails(lambda: broker.close_position("TSLA")).status == 404
    sub_penny = bracket("AAPL", "conformance-sub-penny", stop="140.001")
    assert broker.fails(lambda: broker.submit_bracket(sub_penny)).status == 422
    duplicate = bracket("AAPL", "conformance-aapl")
    assert broker.fails(lambda: broker.submit_bracket(duplicate)).status == 422
    broker.cancel_order(msft.id)  # 204
    sent_as_described(fake, broker.cancel_order_request(msft.id))
    assert broker.fails(lambda: broker.cancel_order(msft.id)).status == 422
    broker.cancel_order(broker.get_order(aapl.id).legs[0].id)  # its group goes: no stop left
    oco = broker.submit_oco_exit(OcoExitRequest(
        "AAPL", "sell", Decimal(2), stop=Decimal("140"), target=Decimal("170"),
        client_order_id="conformance-oco"))
    assert (oco.order_class, oco.type, [leg.type for leg in oco.legs]) == ("oco", "limit",
                                                                           ["stop"])
    moved = broker.replace_order(oco.legs[0].id, stop_price=Decimal("141"))
    sent_as_described(fake, broker.replace_order_request(oco.legs[0].id,
                                                         stop_price=Decimal("141")))
    assert (moved.replaces, moved.stop_price) == (oco.legs[0].id, Decimal("141"))
    assert broker.replace_order(oco.id, limit_price=Decimal("171")).limit_price == Decimal(171)
    unchanged = broker.fails(lambda: broker.replace_order(moved.id, stop_price=Decimal("141")))
    assert unchanged.status == 422
    assert broker.fails(lambda: broker.close_position("AAPL", Decimal(1))).status == 403
    fake.inject("GET", r"^/v2/account$", 500)
    fake.inject("GET", r"^/v2/positions$", 429)
    broker.account()  # retried after the 500
    broker.list_positions()  # retried after the 429
    broker.submit_bracket(bracket("TSLA", "conformance-tsla", stop="240", target="260"))
    fake.fail_close("TSLA")
    refused = broker.close_all_positions(cancel_orders=False)
    assert [(o.key, o.http_status) for o in refused] == [("AAPL", 403), ("TSLA", 403)]
    assert all(o.ok for o in broker.cancel_all_orders())
    closed = broker.close_all_positions(cancel_orders=True)
    close_all = broker.close_all_request(cancel_orders=True)
    assert (close_all.method, close_all.path, close_all.params) == (
        "DELETE", fake.requests[-1].path, fake.requests[-1].query)
    assert close_all.url == f"{fake.url}/v2/positions?cancel_orders=true"
    assert [(o.key, o.ok) for o in closed] == [("AAPL", True), ("TSLA", False)]
    fake.fail_close("TSLA", None)
    assert broker.close_position("TSLA", Decimal(1)).qty == Decimal(1)
    close_one = broker.close_position_request("TSLA", Decimal(1))
    sent_as_described(fake, close_one)
    assert close_one.url == f"{fake.url}/v2/positions/TSLA?qty=1"
    assert broker.close_position("TSLA").side == "sell"
    assert broker.fails(adapter(fake, api_key="wrong-key").account).status == 401

    assert broker.called == PROTOCOL_METHODS
    exchanges = fake.requests
    assert {e.status for e in exchanges} >= {200, 204, 207, 401, 403, 404, 422, 429, 500}
    problems = {
        f"#{index} {e.method} {e.path} {e.status}": errors
        for index, e in enumerate(exchanges)
        if (errors := validate_exchange(
            spec, e.method, e.path, e.query, e.json, e.status, e.response_json))
    }
    assert problems == {}


# -- the check bites -------------------------------------------------------------------------------


def test_the_check_catches_the_numeric_qty_the_sdks_submit_order_sends(fake: FakeAlpaca) -> None:
    from alpaca_trade_api.rest import REST

    spec = require_spec()
    sdk = REST(fake.api_key, fake.secret_key, base_url=fake.url, api_version="v2")
    sdk.submit_order("AAPL", qty=1, side="buy", type="market", time_in_force="day")
    adapter(fake).submit_bracket(bracket("AAPL", "conformance-adapter"))

    by_sdk, by_adapter = fake.requests
    assert by_sdk.status == 200 and by_sdk.json["qty"] == 1  # the fake is lenient; the spec is not
    assert validate_exchange(
        spec, "POST", by_sdk.path, {}, by_sdk.json, by_sdk.status, by_sdk.response_json
    ) == ["request: InvalidRequestBody at /qty: 1 is not of type 'string'"]
    assert validate_exchange(
        spec, "POST", by_adapter.path, {}, by_adapter.json, by_adapter.status,
        by_adapter.response_json,
    ) == []


# -- the spec's own examples through the adapter ------------------------------------------------


def test_the_spec_example_clock_comes_back_in_utc(fake: FakeAlpaca) -> None:
    example = require_spec()["components"]["schemas"]["legacy_clock"]["example"]
    fake.inject("GET", r"^/v2/clock$", 200, body=example)

    clock = adapter(fake).clock()

    assert clock.next_close == datetime(2025, 6, 24, 20, 0, tzinfo=UTC)  # 16:00 New York
    assert {t.utcoffset() for t in (clock.timestamp, clock.next_open, clock.next_close)} == {
        timedelta(0)
    }


def test_orders_are_paged_back_to_the_windows_edge(fake: FakeAlpaca) -> None:
    """`before_order_id` cannot be combined with `after`, so later pages reach past the window:
    what lies before its edge is dropped and the paging stops there."""
    broker = adapter(fake)
    for symbol in ("TSLA", "MSFT"):
        fake.set_price(symbol, "150")  # inside the brackets' 140 / 160
    oldest = broker.submit_bracket(bracket("AAPL", "paging-1"))
    time.sleep(0.01)
    edge = datetime.now(UTC)
    time.sleep(0.01)
    inside = [broker.submit_bracket(bracket(s, f"paging-{s}")) for s in ("TSLA", "MSFT")]
    fake.clear_log()
    listed = broker.list_orders(status="all", after=edge, page_size=1)
    assert [o.id for o in listed] == [inside[1].id, inside[0].id]  # newest first, oldest dropped
    assert oldest.id not in {o.id for o in listed}
    assert fake.count("GET", "/v2/orders") == 3  # MSFT, TSLA, then AAPL: past the edge, stop


def _three_orders(fake: FakeAlpaca) -> tuple[list[str], AlpacaBroker]:
    broker = adapter(fake)
    for symbol in ("TSLA", "MSFT"):
        fake.set_price(symbol, "150")
    ids = [broker.submit_bracket(bracket(s, f"wanted-{s}")).id for s in ("AAPL", "TSLA", "MSFT")]
    fake.clear_log()
    return ids, broker  # oldest first


def test_wanted_orders_past_a_page_are_read_from_both_ends_at_once(fake: FakeAlpaca) -> None:
    (oldest, middle, newest), broker = _three_orders(fake)
    listed = broker.list_orders(status="all", wanted={oldest, newest}, page_size=1)
    assert [o.id for o in listed] == [newest, oldest]  # what lies between is not needed
    assert fake.count("GET", "/v2/orders") == 2  # the newest and the oldest page, side by side
    fake.clear_log()
    listed = broker.list_orders(status="all", wanted={oldest, middle, newest}, page_size=2)
    assert [o.id for o in listed] == [newest, middle, oldest]  # the two pages met
    assert fake.count("GET", "/v2/orders") == 2


def test_paging_stops_once_every_wanted_order_is_in_hand(fake: FakeAlpaca) -> None:
    (_oldest, middle, newest), broker = _three_orders(fake)
    assert [o.id for o in broker.list_orders(status="all", wanted={middle}, page_size=1)] == [
        newest, middle]
    assert fake.count("GET", "/v2/orders") == 2  # the oldest page is never asked for
