"""FLATTEN_BEFORE_CLOSE end to end: `watch --once` against the HTTP fake Alpaca with its pinned
clock, on both databases: the day trade exited with close_reason flatten_before_close and one
alert, the --gtc position kept with its stop working, a half day's 13:00 close respected, and
the rule in `watch --json` and `status --json`."""

from __future__ import annotations

from tests.conftest import Cli, SmtpSink, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Event, Position

AAPL = ("AAPL", "--qty", "2", "--stop", "145", "--target", "160")
MSFT = ("MSFT", "--qty", "1", "--stop", "390", "--target", "420", "--gtc")


def day_at(fake: FakeAlpaca, time: str) -> None:
    """Alpaca's clock at `time` ET on a regular day (close 16:00)."""
    fake.set_clock(f"2026-12-07T{time}", is_open=True, next_open="2026-12-08T09:30",
                   next_close="2026-12-07T16:00")


def half_day_at(fake: FakeAlpaca, time: str) -> None:
    """The day after Thanksgiving: Alpaca's next_close is 13:00 ET."""
    fake.set_clock(f"2026-11-27T{time}", is_open=True, next_open="2026-11-30T09:30",
                   next_close="2026-11-27T13:00")


def tick(cli: Cli) -> dict:
    result = cli("watch", "--once", "--json")
    assert result.code == 0, result.output
    return result.json()


def by_symbol(cli: Cli) -> dict[str, Position]:
    return {p.symbol: p for p in rows(cli.env["DATABASE_URL"], Position)}


def rule(document: dict) -> dict:
    (found,) = [r for r in document["rules"] if r["name"] == "flatten_before_close"]
    return found


def test_the_day_trade_is_flattened_once_and_the_swing_trade_kept_with_its_stop(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink
) -> None:
    trader.env.update(smtp.env())
    trader.env["FLATTEN_BEFORE_CLOSE"] = "10"
    day_at(fake, "15:49")  # 11 minutes to the close
    assert trader("open", *AAPL).code == 0
    assert trader("open", *MSFT).code == 0
    before = tick(trader)
    assert (rule(before)["state"], rule(before)["current"]) == ("warning", "11")
    assert {s: p.status for s, p in by_symbol(trader).items()} == {"AAPL": "open", "MSFT": "open"}

    day_at(fake, "15:51")  # 9 minutes: inside the window
    inside = tick(trader)
    assert rule(inside)["state"] == "tripped"
    assert any(c.startswith("AAPL #1: flattened before the close") for c in inside["changes"])
    tick(trader)  # the close's fill
    held = by_symbol(trader)
    assert (held["AAPL"].status, held["AAPL"].close_reason) == ("closed", "flatten_before_close")
    assert (held["MSFT"].status, held["MSFT"].close_reason) == ("open", None)
    assert [p["symbol"] for p in fake.positions_list()] == ["MSFT"]
    stops = [o for o in fake.open_orders() if o["symbol"] == "MSFT" and o["type"] == "stop"]
    assert [(o["stop_price"], o["time_in_force"]) for o in stops] == [("390", "gtc")]
    flattened = [m for m in smtp.messages if "Flattened" in m["Subject"]]
    assert len(flattened) == 1 and "AAPL #1" in flattened[0].get_content()
    assert [e.kind for e in rows(trader.env["DATABASE_URL"], Event)].count(
        "flatten_before_close") == 1
    status = trader("status", "--json")
    assert status.code == 0 and rule(status.json())["state"] == "tripped"


def test_a_half_days_1300_close_is_respected(trader: Cli, fake: FakeAlpaca) -> None:
    trader.env["FLATTEN_BEFORE_CLOSE"] = "15"
    half_day_at(fake, "12:44")  # 16 minutes to a half day's close
    assert trader("open", *AAPL).code == 0
    assert rule(tick(trader))["state"] == "warning"
    assert by_symbol(trader)["AAPL"].status == "open"
    half_day_at(fake, "12:46")  # 14 minutes
    assert "13:00 ET" in rule(tick(trader))["message"]
    tick(trader)
    row = by_symbol(trader)["AAPL"]
    assert (row.status, row.close_reason) == ("closed", "flatten_before_close")
