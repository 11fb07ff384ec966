"""`tradectl report` on a database built by real commands against the fake Alpaca (fills, a
take-profit, stops, an emergency close, a short), over three trading days, on both databases.
Every figure is worked out by hand in the comments.

The fake's clock is moved a day ahead between days: its fills carry the time it says, and
tradectl records the time Alpaca reports for each close.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

import tests.fakes.alpaca.broker as fake_engine
from tests.conftest import Cli
from tests.fakes.alpaca import FakeAlpaca
from tradectl.domain.calendar import MARKET_TZ

Run = Callable[..., None]


@pytest.fixture
def days(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], date]:
    """Move the fake's clock `n` days ahead of now; returns that New York trading day."""
    def move(n: int) -> date:
        offset = timedelta(days=n)
        monkeypatch.setattr(fake_engine, "now", lambda: datetime.now(UTC) + offset)
        return (datetime.now(UTC) + offset).astimezone(MARKET_TZ).date()
    return move


def build_three_days(trader: Cli, fake: FakeAlpaca, days: Callable[[int], date]) -> list[date]:
    def ok(*args: str) -> None:
        result = trader(*args)
        assert result.code == 0, (args, result.output)

    # day 1: AAPL 10 @ 150, target 160 -> +100 (R +2.00); MSFT 5 @ 400, stop 390 -> -50 (R -1)
    first = days(0)
    fake.set_price("AAPL", "150")
    fake.set_price("MSFT", "400")
    ok("open", "AAPL", "--qty", "10", "--stop", "145", "--target", "160")
    ok("open", "MSFT", "--qty", "5", "--stop", "390", "--target", "420")
    ok("watch", "--once")  # the entries' fills
    fake.set_price("AAPL", "160")
    ok("watch", "--once")
    fake.set_price("MSFT", "390")
    ok("watch", "--once")
    # day 2: TSLA 4 @ 250 closed by the emergency stop at 262 -> +48 (risk 4 x 10: R +1.20);
    # then a short, AAPL 10 @ 160, stopped at 165 -> -50 (R -1.00)
    second = days(1)
    fake.set_price("TSLA", "250")
    ok("open", "TSLA", "--qty", "4", "--stop", "240", "--target", "270")
    ok("watch", "--once")
    fake.set_price("TSLA", "262")
    ok("halt", "--reason", "news")
    ok("resume", "--reason", "reviewed")
    ok("open", "AAPL", "--side", "sell", "--qty", "10", "--stop", "165", "--target", "150")
    ok("watch", "--once")
    fake.set_price("AAPL", "165")
    ok("watch", "--once")
    # day 3: NVDA 20 @ 100, target 110 -> +200 (R +2.00)
    third = days(2)
    fake.set_price("NVDA", "100")
    ok("open", "NVDA", "--qty", "20", "--stop", "95", "--target", "110")
    ok("watch", "--once")
    fake.set_price("NVDA", "110")
    ok("watch", "--once")
    return [first, second, third]


def test_the_report_of_three_days_of_real_trading(
    trader: Cli, fake: FakeAlpaca, days: Callable[[int], date],
) -> None:
    first, second, third = build_three_days(trader, fake, days)
    result = trader("report", "--until", str(third), "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert (document["since"], document["until"]) == (str(first), str(third))
    trades = [(t["trade"]["symbol"], t["trade"]["side"], t["trade"]["qty"], t["trade"]["entry"],
               t["trade"]["exit"], t["trade"]["realized_pl"], t["r_multiple"],
               t["trade"]["close_reason"], t["day"]) for t in document["trades"]]
    assert trades == [
        ("AAPL", "buy", "10", "150.00", "160.00", "100.00", "2.00", "take_profit", str(first)),
        ("MSFT", "buy", "5", "400.00", "390.00", "-50.00", "-1.00", "stop_loss", str(first)),
        ("TSLA", "buy", "4", "250.00", "262.00", "48.00", "1.20", "emergency_stop", str(second)),
        ("AAPL", "sell", "10", "160.00", "165.00", "-50.00", "-1.00", "stop_loss", str(second)),
        ("NVDA", "buy", "20", "100.00", "110.00", "200.00", "2.00", "take_profit", str(third)),
    ]
    held = [t["held_seconds"] for t in document["trades"]]
    assert held[0] < 600 and held[2] >= 86400 - 600  # TSLA: opened today, closed a day ahead
    period = document["period"]
    # 3 wins of 5: 60.0%; avg win (100 + 48 + 200) / 3 = 116.00; avg loss -50.00;
    # expectancy 248 / 5 = 49.60; avg R (2 - 1 + 1.2 - 1 + 2) / 5 = 0.64;
    # curve 100, 50, 98, 48, 248: the largest fall is 100 -> 48 = 52; one stop (day 2)
    assert period == {
        "trades": 5, "wins": 3, "losses": 2, "win_rate": "60.0", "average_win": "116.00",
        "average_loss": "-50.00", "expectancy": "49.60", "average_r": "0.64", "best": "200.00",
        "worst": "-50.00", "realized_pl": "248.00", "max_drawdown": "52.00", "stops_pulled": 1}
    by_day = {d["day"]: d["totals"] for d in document["days"]}
    # day 1: 100, -50 -> P&L 50, expectancy 25.00, avg R 0.50, drawdown 50
    assert (by_day[str(first)]["realized_pl"], by_day[str(first)]["expectancy"],
            by_day[str(first)]["average_r"], by_day[str(first)]["max_drawdown"]) == (
        "50.00", "25.00", "0.50", "50.00")
    # day 2: 48, -50 -> P&L -2, expectancy -1.00, avg R 0.10, drawdown 50
    assert (by_day[str(second)]["realized_pl"], by_day[str(second)]["expectancy"],
            by_day[str(second)]["average_r"], by_day[str(second)]["max_drawdown"]) == (
        "-2.00", "-1.00", "0.10", "50.00")
    # the stop counts on the day tradectl latched it: its own clock, which did not move
    assert (by_day[str(first)]["stops_pulled"], by_day[str(second)]["stops_pulled"]) == (1, 0)
    # day 3: one win of 200, no loss
    assert (by_day[str(third)]["win_rate"], by_day[str(third)]["average_loss"],
            by_day[str(third)]["max_drawdown"]) == ("100.0", None, "0.00")

    text = trader("report", "--until", str(third))
    assert text.code == 0
    lines = text.stdout.splitlines()
    # the chart: 200 fills 24 characters; 50 -> 6; -2 -> 0.24, drawn as 1
    assert f"{first}  {' ' * 24}│{'█' * 6}{' ' * 18}  +$50.00" in lines
    assert f"{second}  {' ' * 23}█│{' ' * 24}  -$2.00" in lines
    assert f"{third}  {' ' * 24}│{'█' * 24}  +$200.00" in lines

    only_day_two = trader("report", "--since", str(second), "--until", str(second), "--csv")
    rows = list(csv.DictReader(io.StringIO(only_day_two.stdout)))
    assert [(r["symbol"], r["realized_pl"], r["r_multiple"], r["initial_risk"]) for r in rows] == [
        ("TSLA", "48.00", "1.20", "40.00"), ("AAPL", "-50.00", "-1.00", "50.00")]


def test_the_report_options(trader: Cli) -> None:
    assert trader("report", "--json", "--csv").code == 2
    assert trader("report", "--since", "2026-13-01").code == 2
    backwards = trader("report", "--since", "2026-11-30", "--until", "2026-11-01")
    assert backwards.code == 2 and "--since 2026-11-30 is after --until 2026-11-01" in (
        backwards.stderr)
    empty = trader("report", "--since", "2026-11-02", "--until", "2026-11-06")
    assert empty.code == 0 and "no closed trades and no stops in this period" in empty.stdout
    assert trader("report", "--csv").stdout.splitlines() == [
        "position_id,symbol,side,qty,entry,exit,realized_pl,initial_risk,r_multiple,"
        "close_reason,opened_at,closed_at,held_seconds,day"]
