"""The adapter against the fake Alpaca, where the answers go wrong: an answer tradectl cannot
read is a BrokerProtocolError from the call that read it (and is not asked for again), a
broker that ignores the orders cursor ends the read instead of looping, and a slow paging read
gives up at its time bound. The REST path imports no SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.adapters.test_spec_conformance import adapter, bracket
from tests.conftest import broker_env, closed_port
from tests.fakes.alpaca import FakeAlpaca
from tradectl.broker.alpaca import AlpacaBroker
from tradectl.errors import BrokerError, BrokerProtocolError, BrokerTimeout, BrokerUnreachable

REPO = Path(__file__).resolve().parents[2]
SDK_PACKAGES = {"alpaca_trade_api", "pandas", "numpy", "aiohttp", "websockets"}
CHECK_ALPACA_THEN_MODULES = """
import json, runpy, sys
sys.argv = ["tradectl", "check-alpaca", "--json"]
try:
    runpy.run_module("tradectl", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def orders_at(fake: FakeAlpaca, count: int) -> list[str]:
    """`count` bracket orders at the fake, oldest first."""
    broker = adapter(fake)
    for symbol in ("TSLA", "MSFT", "NVDA", "AMZN"):
        fake.set_price(symbol, "150")  # inside the brackets' 140 / 160
    symbols = ["AAPL", "TSLA", "MSFT", "NVDA", "AMZN"][:count]
    ids = [broker.submit_bracket(bracket(s, f"bounds-{s}")).id for s in symbols]
    fake.clear_log()
    return ids


def test_a_broker_that_ignores_the_cursor_ends_the_read_with_a_protocol_error(
    fake: FakeAlpaca,
) -> None:
    orders_at(fake, 3)
    fake.ignore_paging()

    with pytest.raises(BrokerProtocolError) as caught:
        adapter(fake).list_orders(status="all", page_size=1)

    assert "did not move" in caught.value.message
    pages = [r for r in fake.requests if (r.method, r.path) == ("GET", "/v2/orders")]
    assert len(pages) == 2  # the first page, then the same page again: stop, not ~150 a minute
    assert "before_order_id" in pages[1].query  # the cursor was sent, and ignored


def test_wanted_orders_read_from_both_ends_stop_too_when_the_cursor_is_ignored(
    fake: FakeAlpaca,
) -> None:
    oldest, _, _, newest = orders_at(fake, 4)
    fake.ignore_paging()

    with pytest.raises(BrokerProtocolError):
        adapter(fake).list_orders(status="all", wanted={oldest, newest, "x", "y"}, page_size=1)

    assert fake.count("GET", "/v2/orders") == 3  # newest and oldest side by side, one more


def test_the_paging_read_gives_up_at_its_time_bound(fake: FakeAlpaca) -> None:
    orders_at(fake, 5)
    # Every page read costs 25 s of the read's clock: the 60 s bound is passed after 3 pages.
    broker = AlpacaBroker(api_key=fake.api_key, secret_key=fake.secret_key, base_url=fake.url,
                          data_url=fake.url, timeout=5,
                          clock=lambda: 25.0 * fake.count("GET", "/v2/orders"))

    with pytest.raises(BrokerTimeout) as caught:
        broker.list_orders(status="all", page_size=1, deadline_seconds=60)

    assert not isinstance(caught.value, BrokerProtocolError)
    assert "over 60 s (3 pages)" in caught.value.message
    assert fake.count("GET", "/v2/orders") == 3
    assert len(broker.list_orders(status="all", page_size=1, deadline_seconds=1000)) == 5


def test_a_read_with_no_time_left_sends_nothing(fake: FakeAlpaca) -> None:
    with pytest.raises(BrokerTimeout):
        adapter(fake).list_orders(status="all", deadline_seconds=0)
    assert fake.count() == 0


def test_an_unreadable_clock_is_a_protocol_error_from_clock(fake: FakeAlpaca) -> None:
    leap = {"timestamp": "2026-06-30T23:59:60Z", "is_open": False,
            "next_open": "2026-07-01T09:30:00-04:00", "next_close": "2026-07-01T16:00:00-04:00"}
    fake.inject("GET", r"^/v2/clock$", 200, body=leap)
    broker = adapter(fake)

    with pytest.raises(BrokerProtocolError) as caught:
        broker.clock()

    assert caught.value.field == "clock.timestamp"
    assert broker.requests_sent == 1  # the same answer would come again: not asked twice
    assert broker.clock().is_open is True  # the fake's own clock reads


@pytest.mark.parametrize(("account", "field"), [
    ({"status": "ACTIVE", "last_equity": "100000"}, "account.equity"),
    ({"status": "ACTIVE", "equity": "NaN", "last_equity": "100000"}, "account.equity"),
    ({"status": "ACTIVE", "equity": "100000"}, "account.last_equity"),
])
def test_an_account_tradectl_cannot_read_is_a_protocol_error(
    fake: FakeAlpaca, account: dict, field: str,
) -> None:
    fake.inject("GET", r"^/v2/account$", 200, body=account)
    with pytest.raises(BrokerProtocolError) as caught:
        adapter(fake).account()
    assert caught.value.field == field


def test_a_null_body_is_a_protocol_error(fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/positions$", 200, raw=b"null")
    with pytest.raises(BrokerProtocolError) as caught:
        adapter(fake).list_positions()
    assert caught.value.field == "positions"


def test_a_cancel_all_item_without_an_integer_status_is_a_protocol_error(
    fake: FakeAlpaca,
) -> None:
    fake.inject("DELETE", r"^/v2/orders$", 207, body=[{"id": "o-1", "status": "200"}])
    with pytest.raises(BrokerProtocolError) as caught:
        adapter(fake).cancel_all_orders()
    assert caught.value.field == "cancel-all[0].status"


def test_a_closed_position_without_its_order_id_is_a_protocol_error(fake: FakeAlpaca) -> None:
    fake.inject("DELETE", r"^/v2/positions$", 207,
                body=[{"symbol": "AAPL", "status": 200, "body": {"symbol": "AAPL"}}])
    with pytest.raises(BrokerProtocolError) as caught:
        adapter(fake).close_all_positions(cancel_orders=True)
    assert caught.value.field == "close-all[0].body.id"
    assert fake.count("DELETE", "/v2/positions") == 1  # a write: never sent twice


def test_a_non_json_answer_to_a_read_is_retried_within_bounds_as_before(fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/account$", 200, raw=b"<html>proxy error</html>", times=None)
    broker = adapter(fake)
    with pytest.raises(BrokerProtocolError) as caught:
        broker.account()
    assert caught.value.field is None and broker.requests_sent == 3


def test_alpacas_error_body_becomes_the_message_status_and_code(fake: FakeAlpaca) -> None:
    fake.inject("POST", r"^/v2/orders$", 403,
                body={"code": 40310000, "message": "insufficient buying power"})
    broker = adapter(fake)
    with pytest.raises(BrokerError) as caught:
        broker.submit_bracket(bracket("AAPL", "bounds-403"))
    error = caught.value
    assert (error.status, error.code, error.message) == (
        403, 40310000, "Alpaca 403: insufficient buying power")
    assert error.hint is None  # not the "check your keys" hint
    assert broker.requests_sent == 1


def test_a_json_number_price_is_read_through_its_text(fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/stocks/AAPL/trades/latest$", 200,
                raw=b'{"symbol": "AAPL", "trade": {"t": "2026-11-25T14:30:00.123456789Z", '
                    b'"x": "V", "p": 0.1, "s": 100, "c": ["@"], "i": 1, "z": "C"}}')
    assert adapter(fake).latest_trade_price("AAPL") == Decimal("0.1")  # not 0.1000000000000000055


def test_an_order_window_reaching_into_new_york_time_is_read_in_utc(fake: FakeAlpaca) -> None:
    (order_id,) = orders_at(fake, 1)
    after = (datetime.now(UTC) - timedelta(hours=1)).astimezone(ZoneInfo("America/New_York"))
    listed = adapter(fake).list_orders(status="all", after=after)
    assert [o.id for o in listed] == [order_id]
    assert fake.requests[-1].query["after"].endswith("Z")


def test_commands_that_talk_to_alpaca_import_no_sdk(fake: FakeAlpaca, tmp_path: Path) -> None:
    """check-alpaca reads account, clock and a price: the whole REST path, in a fresh process."""
    fake.set_price("AAPL", "150")
    env = {**broker_env(fake), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", CHECK_ALPACA_THEN_MODULES], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "httpcore" in imported and "tradectl" in imported, result.stderr
    assert "httpx" not in imported  # its import pulls its CLI (click, rich, pygments) along
    assert fake.count("GET", "/v2/account") == 1  # it did talk to Alpaca
    assert imported & SDK_PACKAGES == set()
    # tradectl's own traffic is off the urllib3 1.26 the SDK pins (issue 24)
    assert imported & {"requests", "urllib3"} == set()


# -- the client's own rules, as they were with the SDK ---------------------------------------------


def test_a_refused_connection_is_unreachable_and_a_read_is_tried_three_times() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    sleeps: list[float] = []
    broker = AlpacaBroker(api_key="k", secret_key="s", base_url=url, data_url=url, timeout=2,
                          sleep=sleeps.append)
    with pytest.raises(BrokerError) as caught:
        broker.account()
    assert type(caught.value) is BrokerUnreachable
    assert broker.requests_sent == 3 and sleeps == [0.2, 0.6]


def test_a_read_left_unanswered_costs_one_timeout_and_is_not_sent_again(fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/account$", hang=True)
    broker = AlpacaBroker(api_key=fake.api_key, secret_key=fake.secret_key, base_url=fake.url,
                          data_url=fake.url, timeout=0.3)
    with pytest.raises(BrokerTimeout) as caught:
        broker.account()
    assert "did not answer in time" in caught.value.message
    assert broker.requests_sent == 1


def test_an_order_post_is_never_sent_twice(fake: FakeAlpaca) -> None:
    fake.inject("POST", r"^/v2/orders$", 503)
    broker = adapter(fake)
    with pytest.raises(BrokerError) as caught:
        broker.submit_bracket(bracket("AAPL", "bounds-503"))
    assert caught.value.status == 503 and caught.value.transient
    assert fake.count("POST", "/v2/orders") == 1
