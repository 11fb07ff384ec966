"""Sessions in the fake: outside core only extended_hours limit orders execute (at their limit
or better against the price); everything else waits for the regular session; extended_hours
is refused on anything but a simple day/gtc limit order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.adapters.fake_alpaca.client import Client, bracket, limit, market, oco, submit
from tests.adapters.fake_alpaca.spec_log import spec_problems
from tests.fakes.alpaca import FakeAlpaca

PRE = "2026-11-30T08:00:00"
MON_OPEN, MON_CLOSE = "2026-11-30T09:30:00", "2026-11-30T16:00:00"
REFUSED = "extended hours orders must be simple limit orders with time_in_force day or gtc"


@pytest.fixture(autouse=True)
def spec_checked(fake: FakeAlpaca):
    yield
    assert spec_problems(fake) == {}


def status(api: Client, order_id: str) -> tuple[str, str | None]:
    order = api.get(f"/v2/orders/{order_id}").json()
    return order["status"], order["filled_avg_price"]


def test_pre_market_fills_only_extended_hours_limits(fake: FakeAlpaca, api: Client) -> None:
    fake.set_clock(PRE, is_open=False, next_open=MON_OPEN, next_close=MON_CLOSE)
    ext = submit(api, limit(price="151", tif="day", extended_hours=True))  # marketable: AAPL 150
    resting = submit(api, limit(price="149", tif="gtc", extended_hours=True))
    plain = submit(api, limit(price="151", tif="day"))
    mkt = submit(api, market(qty="1"))
    assert status(api, ext["id"]) == ("filled", "150")  # better than its limit
    assert status(api, resting["id"]) == ("new", None)
    assert status(api, plain["id"])[0] == "accepted"
    assert status(api, mkt["id"])[0] == "accepted"
    fake.set_price("AAPL", "148.5")
    assert status(api, resting["id"]) == ("filled", "148.5")
    assert status(api, plain["id"])[0] == "accepted"
    fake.set_clock(MON_OPEN, is_open=True, next_open="2026-12-01T09:30:00", next_close=MON_CLOSE)
    assert status(api, plain["id"])[0] == "filled"
    assert status(api, mkt["id"])[0] == "filled"


def test_closed_phase_holds_even_extended_hours_orders(fake: FakeAlpaca, api: Client) -> None:
    fake.set_clock("2026-11-30T03:00:00", is_open=False, next_open=MON_OPEN,
                   next_close=MON_CLOSE)
    ext = submit(api, limit(price="151", tif="day", extended_hours=True))
    assert status(api, ext["id"])[0] == "accepted"
    fake.advance_clock(timedelta(hours=1))  # 04:00 ET: pre-market
    assert status(api, ext["id"]) == ("filled", "150")


def test_post_market_stop_waits(fake: FakeAlpaca, api: Client) -> None:
    fake.add_position("AAPL", "10", "150")
    fake.set_clock("2026-11-30T17:00:00", is_open=False, next_open="2026-12-01T09:30:00",
                   next_close="2026-12-01T16:00:00")
    stop = submit(api, {"symbol": "AAPL", "qty": "10", "side": "sell", "type": "stop",
                        "stop_price": "140", "time_in_force": "gtc"})
    fake.set_price("AAPL", "130")
    assert status(api, stop["id"])[0] == "accepted"


@pytest.mark.parametrize(
    "body",
    [
        market(extended_hours=True),
        {**market(), "type": "stop", "stop_price": "140", "time_in_force": "day",
         "extended_hours": True},
        limit(price="149", tif="day", extended_hours=True, order_class="bracket",
              take_profit={"limit_price": "160"}, stop_loss={"stop_price": "140"}),
        bracket(extended_hours=True),
    ],
)
def test_extended_hours_refused_outside_simple_day_gtc_limits(api: Client, body: dict) -> None:
    response = api.post("/v2/orders", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["message"] == REFUSED


def test_extended_hours_refused_on_oco(fake: FakeAlpaca, api: Client) -> None:
    fake.add_position("AAPL", "10", "150")
    response = api.post("/v2/orders", json=oco(extended_hours=True))
    assert (response.status_code, response.json()["message"]) == (422, REFUSED)
