"""The report's arithmetic, every figure worked out by hand in the comments."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from tradectl.domain.performance import (
    ClosedTrade,
    bar_lengths,
    max_drawdown,
    parse_day,
    performance,
    trade_row,
)
from tradectl.errors import InputError

# 15:00 UTC is 10:00 in New York (EST): the same trading day
DAY1 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def trade(pid: int, pnl: str, *, entry: str = "100", stop: str = "95", qty: str = "10",
          side: str = "buy", at: datetime = DAY1, held: timedelta = timedelta(hours=1),
          reason: str = "take_profit") -> ClosedTrade:
    exit_ = D(entry) + D(pnl) / D(qty) * (1 if side == "buy" else -1)
    return ClosedTrade(pid, "AAPL", side, D(qty), D(entry), exit_, D(stop), D(pnl), reason,
                       at - held, at)


def test_r_multiple_is_pnl_over_the_initial_risk() -> None:
    # risk 10 x |100 - 95| = 50; +120 / 50 = 2.40
    row = trade_row(trade(1, "120"))
    assert (row.initial_risk, row.r_multiple, row.held_seconds) == (D(50), D("2.40"), 3600)
    # a short: 4 x |250 - 260| = 40; -30 / 40 = -0.75
    short = trade_row(trade(2, "-30", entry="250", stop="260", qty="4", side="sell"))
    assert (short.initial_risk, short.r_multiple) == (D(40), D("-0.75"))
    # rounded half to even: 10 / 30 = 0.333.. -> 0.33; 25 / 30 = 0.8333.. -> 0.83
    assert trade_row(trade(3, "10", stop="97")).r_multiple == D("0.33")
    assert trade_row(trade(4, "25", stop="97")).r_multiple == D("0.83")


def test_nothing_at_risk_has_no_r_multiple() -> None:
    assert trade_row(trade(1, "5", stop="100")).r_multiple is None


def test_the_trading_day_is_new_yorks() -> None:
    # 02:00 UTC on Dec 1 is 21:00 on Nov 30 in New York
    late = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert trade_row(trade(1, "1", at=late)).day == date(2026, 11, 30)


def test_totals_per_day_and_for_the_period() -> None:
    day2 = DAY1 + timedelta(days=1)
    trades = [
        trade(1, "100", at=DAY1),                            # R +2.00
        trade(2, "-50", at=DAY1 + timedelta(minutes=5)),     # R -1.00
        trade(3, "48", at=day2, stop="90"),                  # risk 100: R +0.48
        trade(4, "-50", at=day2 + timedelta(minutes=5)),     # R -1.00
        trade(5, "0", at=day2 + timedelta(minutes=9)),       # breakeven: neither win nor loss
    ]
    stops = [day2 + timedelta(minutes=1), day2 + timedelta(hours=2)]
    report = performance(trades, stops, since=date(2026, 11, 30), until=date(2026, 12, 1))
    assert [r.trade.position_id for r in report.trades] == [1, 2, 3, 4, 5]
    first, second = report.days
    assert first.day == date(2026, 11, 30) and second.day == date(2026, 12, 1)
    # day 1: 1 win of 2 = 50.0%; expectancy 50 / 2 = 25.00; avg R (2 - 1) / 2 = 0.50;
    # the curve 100, 50 falls 50 from its peak
    assert (first.totals.trades, first.totals.win_rate, first.totals.expectancy) == (
        2, D("50.0"), D("25.00"))
    assert (first.totals.average_r, first.totals.max_drawdown, first.totals.stops_pulled) == (
        D("0.50"), D(50), 0)
    # day 2: wins 1 of 3 = 33.3%; expectancy -2 / 3 = -0.666.. -> -0.67; avg R
    # (0.48 - 1 + 0) / 3 = -0.1733.. -> -0.17; curve 48, -2, -2: drawdown 50; two stops
    t = second.totals
    assert (t.trades, t.wins, t.losses, t.win_rate) == (3, 1, 1, D("33.3"))
    assert (t.average_win, t.average_loss, t.expectancy) == (D("48.00"), D("-50.00"),
                                                             D("-0.67"))
    assert (t.average_r, t.best, t.worst, t.realized_pl) == (D("-0.17"), D(48), D(-50), D(-2))
    assert (t.max_drawdown, t.stops_pulled) == (D(50), 2)
    # the period: 2 wins of 5 = 40.0%; avg win (100 + 48) / 2 = 74.00; avg loss -50.00;
    # expectancy 48 / 5 = 9.60; curve 100, 50, 98, 48, 48: the largest fall 100 -> 48 = 52
    p = report.period
    assert (p.trades, p.win_rate, p.average_win, p.average_loss) == (5, D("40.0"), D("74.00"),
                                                                    D("-50.00"))
    assert (p.expectancy, p.realized_pl, p.max_drawdown, p.stops_pulled) == (
        D("9.60"), D(48), D(52), 2)
    # avg R (2 - 1 + 0.48 - 1 + 0) / 5 = 0.096 -> 0.10
    assert p.average_r == D("0.10")


def test_an_empty_period_has_no_averages() -> None:
    report = performance([], [], since=date(2026, 11, 30), until=date(2026, 11, 30))
    p = report.period
    assert (p.trades, p.win_rate, p.expectancy, p.best, p.realized_pl, p.max_drawdown) == (
        0, None, None, None, D(0), D(0))
    assert report.days == ()


def test_a_day_with_a_stop_and_no_trade_is_a_day_of_the_report() -> None:
    report = performance([], [DAY1], since=date(2026, 11, 30), until=date(2026, 11, 30))
    (day,) = report.days
    assert (day.totals.trades, day.totals.stops_pulled, day.totals.realized_pl) == (0, 1, D(0))


@pytest.mark.parametrize("pnls, drawdown", [
    ([], "0"),
    (["100", "50"], "0"),                       # only up
    (["-30", "-20"], "50"),                     # down from the start: 0 -> -50
    (["100", "-30", "-50", "200", "-120"], "120"),  # 100 70 20 220 100: 80, then 120
    (["10.25", "-0.01", "-10.24"], "10.25"),    # exact cents: 10.25 -> 0
])
def test_the_largest_drawdown_of_the_realized_curve(pnls: list[str], drawdown: str) -> None:
    assert max_drawdown(D(p) for p in pnls) == D(drawdown)


def test_bars_scale_to_the_largest_day_and_show_every_non_zero_one() -> None:
    # 200 fills 24; 50 -> 6; -2 -> 0.24, shown as 1; 0 -> nothing
    assert bar_lengths([D(50), D(-2), D(200), D(0)], 24) == [6, 1, 24, 0]
    assert bar_lengths([D(0)], 24) == [0]


def test_days_are_parsed_strictly() -> None:
    assert parse_day(" 2026-11-30 ", "--since") == date(2026, 11, 30)
    for text in ("2026-11-31", "30/11/2026", "2026-1-3", "", "yesterday", "２０２６-11-30"):
        with pytest.raises(InputError, match="--since must be a date such as"):
            parse_day(text, "--since")
