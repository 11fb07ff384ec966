"""MAX_DRAWDOWN_FROM_PEAK end to end: `watch --once` against the HTTP fake Alpaca on SQLite and
PostgreSQL. A day up $600 at noon that gives back $550 by 3 pm is stopped though still green:
once, with one alert, the reason naming the rule and its figures; the peak is kept in
`day_peaks` between runs, or recovered from Alpaca's portfolio history."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from tests.conftest import Cli, SmtpSink, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Cycle, DayPeak

REASON = ("drawdown_from_peak: equity $100,050.00 fell $550.00 from the day's peak "
          "$100,600.00, reaching MAX_DRAWDOWN_FROM_PEAK $500.00")


def tick(cli: Cli) -> dict:
    result = cli("watch", "--once", "--json")
    assert result.code == 0, result.output
    return result.json()


def today(hhmm: str) -> str:
    """That time of today in New York: `watch`'s trading day is its own clock's."""
    return f"{datetime.now(ZoneInfo('America/New_York')).date().isoformat()}T{hhmm}"


def noon(fake: FakeAlpaca) -> None:
    fake.set_clock(today("12:00"), is_open=True, next_open=today("09:30"),
                   next_close=today("16:00"))


def hold_100_aapl(trader: Cli, fake: FakeAlpaca) -> None:
    fake.set_price("AAPL", "150.00")
    result = trader("open", "AAPL", "--qty", "100", "--stop", "146", "--target", "160")
    assert result.code == 0, result.output


def test_a_green_day_giving_back_550_of_600_is_stopped_once_with_one_alert(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink,
) -> None:
    trader.env.update({**smtp.env(), "MAX_DRAWDOWN_FROM_PEAK": "500"})
    noon(fake)
    hold_100_aapl(trader, fake)
    fake.set_price("AAPL", "156.00")  # equity 100,600: up $600
    first = tick(trader)
    assert first["rules"] == [{"name": "drawdown_from_peak", "limit": "500", "current": "0.00",
                               "state": "ok", "message": first["rules"][0]["message"],
                               "until": None}]
    (peak,) = rows(trader.env["DATABASE_URL"], DayPeak)
    assert peak.peak_equity == Decimal("100600")

    fake.advance_clock(timedelta(hours=3))
    fake.set_price("AAPL", "150.50")  # equity 100,050: still up $50 on the day
    fake.clear_log()
    stopped = tick(trader)
    assert stopped["emergency_stop"] is not None and stopped["cycle_status"] == "stopped"
    assert stopped["stop_reason"] == REASON and stopped["day_pnl"] == "50.00"
    assert stopped["rules"][0]["state"] == "tripped" and stopped["rules"][0]["current"] == "550.00"
    assert fake.count("GET", "/v2/account") >= 2  # confirmed by a second read
    assert fake.positions_list() == []
    (cycle,) = rows(trader.env["DATABASE_URL"], Cycle)
    assert cycle.status == "stopped" and cycle.stop_reason == REASON
    (message,) = smtp.messages
    assert message["Subject"].startswith("EMERGENCY STOP")

    fake.clear_log()
    again = tick(trader)
    assert again["emergency_stop"] is None and fake.count("DELETE") == 0
    assert len(smtp.messages) == 1


def test_after_a_gap_the_peak_is_recovered_from_the_portfolio_history(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    trader.env["MAX_DRAWDOWN_FROM_PEAK"] = "0.5%"  # of the peak 100,600: $503.00
    noon(fake)
    hold_100_aapl(trader, fake)
    fake.set_equity_history([(today("09:45"), "100200"), (today("12:00"), "100600"),
                             (today("14:59"), "100300")])
    fake.advance_clock(timedelta(hours=3))
    fake.set_price("AAPL", "150.50")  # equity 100,050: $550 below the history's peak
    stopped = tick(trader)
    assert stopped["emergency_stop"] is not None
    assert "peak $100,600.00" in stopped["stop_reason"]
    assert "MAX_DRAWDOWN_FROM_PEAK $503.00" in stopped["stop_reason"]
    (peak,) = rows(trader.env["DATABASE_URL"], DayPeak)
    assert (peak.peak_equity, peak.source) == (Decimal("100600"), "history")


def test_one_low_equity_reading_does_not_stop(trader: Cli, fake: FakeAlpaca) -> None:
    trader.env["MAX_DRAWDOWN_FROM_PEAK"] = "500"
    noon(fake)
    hold_100_aapl(trader, fake)
    fake.set_price("AAPL", "156.00")
    tick(trader)
    low = {**fake.account(), "equity": "99000", "portfolio_value": "99000"}
    fake.inject("GET", r"^/v2/account$", status=200, body=low, times=1)
    document = tick(trader)
    assert document["emergency_stop"] is None and document["rules"][0]["state"] == "ok"
    assert len(fake.positions_list()) == 1
    assert rows(trader.env["DATABASE_URL"], Cycle)[0].status == "active"
    status = trader("status", "--json")
    assert status.code == 0, status.output
    (rule,) = status.json()["rules"]
    assert (rule["name"], rule["current"], rule["state"]) == ("drawdown_from_peak", "0.00", "ok")
