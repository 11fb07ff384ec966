"""MAX_DRAWDOWN_FROM_PEAK, the pure rule: the exact drawdown trips, a cent under does not; a
percentage is of the day's peak; the warning from 80%; the reason names the rule and figures."""

from __future__ import annotations

from decimal import Decimal

from tradectl.domain.drawdown import day_peak, drawdown_from_peak
from tradectl.rule_settings import Amount

PEAK = Decimal("100600.00")  # a day up $600 at noon (last_equity 100,000)


def test_the_exact_drawdown_trips_and_a_cent_under_does_not() -> None:
    limit = Amount(Decimal("500"))
    at = drawdown_from_peak(limit, PEAK, Decimal("100100.00"))
    under = drawdown_from_peak(limit, PEAK, Decimal("100100.01"))
    assert (at.state, at.current, at.limit) == ("tripped", "500.00", "500")
    assert at.figures == {"peak": "100600.00", "equity": "100100.00", "drop": "500.00",
                          "limit": "500", "setting": "$500.00"}
    assert under.state == "warning" and under.current == "499.99"


def test_a_green_day_that_gives_back_550_of_600_is_tripped() -> None:
    verdict = drawdown_from_peak(Amount(Decimal("500")), PEAK, Decimal("100050"))
    assert verdict.state == "tripped"
    assert verdict.message == ("drawdown_from_peak: equity $100,050.00 fell $550.00 from the "
                               "day's peak $100,600.00, reaching MAX_DRAWDOWN_FROM_PEAK $500.00")


def test_a_percentage_is_of_the_days_peak_rounded_down_to_the_cent() -> None:
    limit = Amount(Decimal("0.5"), percent=True)  # 0.5% of 100,600: $503.00
    assert drawdown_from_peak(limit, PEAK, Decimal("100097.00")).state == "tripped"
    under = drawdown_from_peak(limit, PEAK, Decimal("100097.01"))
    assert under.passed and under.limit == "503.00"


def test_the_warning_starts_at_80_percent_of_the_limit() -> None:
    limit = Amount(Decimal("500"))
    assert drawdown_from_peak(limit, PEAK, PEAK - 400).state == "warning"
    assert drawdown_from_peak(limit, PEAK, PEAK - Decimal("399.99")).state == "ok"


def test_an_equity_above_the_peak_is_the_new_peak_and_no_drop() -> None:
    verdict = drawdown_from_peak(Amount(Decimal("500")), PEAK, PEAK + 10)
    assert (verdict.state, verdict.current, verdict.figures["peak"]) == ("ok", "0.00",
                                                                        "100610.00")


def test_without_a_peak_the_rule_is_not_checked() -> None:
    verdict = drawdown_from_peak(Amount(Decimal("1"), percent=True), None, Decimal("100000"))
    assert (verdict.state, verdict.current, verdict.limit) == ("ok", None, None)
    assert day_peak(None, Decimal("3"), Decimal("5"), None) == Decimal("5")
    assert day_peak(None) is None
