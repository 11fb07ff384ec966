"""GET /v2/account/portfolio/history in the fake: equity points the test sets, bucketed per
timeframe, filtered per intraday_reporting and start/end/period, P&L from base_value."""

from __future__ import annotations

import pytest

from tests.adapters.fake_alpaca.client import Client
from tests.adapters.fake_alpaca.spec_log import spec_problems
from tests.fakes.alpaca import FakeAlpaca

# Monday 2026-11-30 (EST, UTC-5): 09:30 ET is 14:30Z = 1796049000.
OPEN_EPOCH = 1796049000
POINTS = [
    ("2026-11-30T08:00:00", "99000"),  # pre-market
    ("2026-11-30T09:30:10", "100100"),
    ("2026-11-30T09:31:00", "100200"),
    ("2026-11-30T09:34:59", "100300"),
    ("2026-11-30T09:35:00", "99500"),
    ("2026-11-30T16:30:00", "98000"),  # post-market
]


@pytest.fixture(autouse=True)
def spec_checked(fake: FakeAlpaca):
    yield
    assert spec_problems(fake) == {}


@pytest.fixture
def day(fake: FakeAlpaca) -> FakeAlpaca:
    fake.set_clock("2026-11-30T17:00:00", is_open=False, next_open="2026-12-01T09:30:00",
                   next_close="2026-12-01T16:00:00")
    fake.set_equity_history(POINTS, base_value="100000")
    return fake


def history(api: Client, **params: str) -> dict:
    response = api.get("/v2/account/portfolio/history", params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.usefixtures("day")
def test_one_day_by_the_minute_in_market_hours(api: Client) -> None:
    answer = history(api, period="1D", timeframe="1Min")
    assert answer["timestamp"] == [OPEN_EPOCH, OPEN_EPOCH + 60, OPEN_EPOCH + 240, OPEN_EPOCH + 300]
    assert answer["equity"] == [100100, 100200, 100300, 99500]
    assert answer["profit_loss"] == [100, 200, 300, -500]
    assert answer["profit_loss_pct"] == [0.001, 0.002, 0.003, -0.005]
    assert (answer["base_value"], answer["timeframe"]) == (100000, "1Min")


@pytest.mark.usefixtures("day")
def test_extended_hours_reporting_and_buckets(api: Client) -> None:
    answer = history(api, period="1D", timeframe="5Min", intraday_reporting="extended_hours")
    assert answer["equity"] == [99000, 100300, 99500, 98000]  # each window's last point
    assert answer["timestamp"][1:3] == [OPEN_EPOCH, OPEN_EPOCH + 300]


@pytest.mark.usefixtures("day")
def test_start_and_end(api: Client) -> None:
    answer = history(api, start="2026-11-30T09:31:00-05:00", end="2026-11-30T09:34:59-05:00",
                     timeframe="1Min")
    assert answer["equity"] == [100200, 100300]


@pytest.mark.parametrize(
    "params",
    [
        {"period": "1D", "start": "2026-11-30T09:00:00Z", "end": "2026-11-30T10:00:00Z"},
        {"period": "1D", "timeframe": "2Min"},
        {"period": "1X"},
        {"period": "2M", "timeframe": "1Min"},
        {"intraday_reporting": "always"},
    ],
)
def test_bad_parameters(day: FakeAlpaca, api: Client, params: dict) -> None:
    assert api.get("/v2/account/portfolio/history", params=params).status_code == 422
    if "intraday_reporting" in params:
        day.clear_log()  # outside the spec's enum on purpose



def test_without_points_the_current_equity(fake: FakeAlpaca, api: Client) -> None:
    fake.set_last_equity("99000")
    answer = history(api, period="1D", intraday_reporting="continuous")
    assert answer["equity"] == [100000] and answer["profit_loss"] == [1000]
    assert answer["base_value"] == 99000
