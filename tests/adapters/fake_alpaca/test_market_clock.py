"""The fake's settable market clock: /v2/clock, /v3/clock phases at their edges, a half day,
the command line's --clock. Every exchange is checked against Alpaca's spec afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.adapters.fake_alpaca.client import Client
from tests.adapters.fake_alpaca.spec_log import spec_problems
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.alpaca.__main__ import set_clock

# Friday 2026-11-27 is a half day (close 13:00 ET); Monday 2026-11-30 a full one.
FRI_OPEN, FRI_CLOSE = "2026-11-27T09:30:00-05:00", "2026-11-27T13:00:00-05:00"
MON_OPEN, MON_CLOSE = "2026-11-30T09:30:00-05:00", "2026-11-30T16:00:00-05:00"


@pytest.fixture(autouse=True)
def spec_checked(fake: FakeAlpaca):
    yield
    assert spec_problems(fake) == {}


def v3(api: Client, **params: str) -> dict:
    response = api.get("/v3/clock", params=params)
    assert response.status_code == 200, response.text
    return response.json()["clocks"][0]


def test_v2_clock_answers_the_pinned_half_day(fake: FakeAlpaca, api: Client) -> None:
    fake.set_clock("2026-11-27T12:59:00-05:00", is_open=True, next_open=MON_OPEN,
                   next_close=FRI_CLOSE)
    assert api.get("/v2/clock").json() == {
        "timestamp": "2026-11-27T17:59:00.000000Z",
        "is_open": True,
        "next_open": "2026-11-30T14:30:00.000000Z",
        "next_close": "2026-11-27T18:00:00.000000Z",
    }
    assert v3(api)["phase"] == "core"
    assert v3(api)["phase_until"] == "2026-11-27T18:00:00.000000Z"


@pytest.mark.parametrize(
    ("stamp", "phase", "until"),
    [
        ("2026-11-30T03:59:00", "closed", "2026-11-30T09:00:00.000000Z"),  # 04:00 ET
        ("2026-11-30T04:00:00", "pre", "2026-11-30T14:30:00.000000Z"),
        ("2026-11-30T09:29:00", "pre", "2026-11-30T14:30:00.000000Z"),
    ],
)
def test_v3_phase_before_the_open(fake: FakeAlpaca, api: Client, stamp, phase, until) -> None:
    fake.set_clock(stamp, is_open=False, next_open=MON_OPEN, next_close=MON_CLOSE)
    clock = v3(api)
    assert (clock["phase"], clock["phase_until"]) == (phase, until)
    assert clock["is_market_day"] is True
    assert clock["next_market_open"] == "2026-11-30T14:30:00.000000Z"
    assert clock["market"]["acronym"] == "NYSE"


@pytest.mark.parametrize(
    ("stamp", "phase"),
    [
        ("2026-11-27T13:00:00", "post"),
        ("2026-11-27T16:59:00", "post"),
        ("2026-11-27T17:00:00", "closed"),  # a half day's post session ends at 17:00 ET
    ],
)
def test_v3_phase_after_a_half_day_close(fake: FakeAlpaca, api: Client, stamp, phase) -> None:
    fake.set_clock(stamp, is_open=False, next_open=MON_OPEN, next_close=MON_CLOSE,
                   last_close=FRI_CLOSE)
    assert v3(api)["phase"] == phase


def test_v3_post_until_20_on_a_full_day_then_closed(fake: FakeAlpaca, api: Client) -> None:
    fake.set_clock("2026-11-30T16:00:00", is_open=False, next_open="2026-12-01T09:30:00",
                   next_close="2026-12-01T16:00:00")
    assert (v3(api)["phase"], v3(api)["phase_until"]) == ("post", "2026-12-01T01:00:00.000000Z")
    fake.advance_clock(timedelta(hours=4) - timedelta(minutes=1))
    assert v3(api)["phase"] == "post"
    fake.advance_clock(timedelta(minutes=1))
    assert (v3(api)["phase"], v3(api)["phase_until"]) == ("closed", "2026-12-01T09:00:00.000000Z")
    saturday = v3(api, time="2026-12-05T12:00:00-05:00")
    assert (saturday["phase"], saturday["is_market_day"]) == ("closed", False)


def test_v3_markets_and_bad_input(fake: FakeAlpaca, api: Client) -> None:
    fake.set_clock(MON_OPEN, is_open=True, next_open="2026-12-01T09:30:00",
                   next_close=MON_CLOSE)
    clocks = api.get("/v3/clock", params={"markets": "NYSE,XNAS"}).json()["clocks"]
    assert [c["market"]["mic"] for c in clocks] == ["XNYS", "XNAS"]
    assert api.get("/v3/clock", params={"markets": "LSE"}).status_code == 400
    assert api.get("/v3/clock", params={"time": "yesterday"}).status_code == 400
    fake.clear_log()  # that request breaks the spec on purpose (time is a date-time)


def test_unset_clock_keeps_the_old_answer(fake: FakeAlpaca, api: Client) -> None:
    fake.set_market_open(False)
    assert api.get("/v2/clock").json()["is_open"] is False
    assert v3(api)["phase"] == "closed"


def test_the_command_line_clock(fake: FakeAlpaca, api: Client) -> None:
    set_clock(fake, f"2026-11-27T13:30:00,false,{MON_OPEN},{MON_CLOSE},{FRI_CLOSE}")
    assert api.get("/v2/clock").json()["timestamp"] == "2026-11-27T18:30:00.000000Z"
    assert v3(api)["phase"] == "post"
    with pytest.raises(SystemExit):
        set_clock(fake, "2026-11-27T13:30:00,maybe,x,y")
