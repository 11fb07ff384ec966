"""The day's entry rules at their edges (tradectl/domain/day_rules.py): pure, figures in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradectl.config import Amount
from tradectl.domain.day_rules import (
    ClosedTrade,
    Cooldown,
    DayFigures,
    DayLimits,
    cooldown,
    day_verdicts,
    entry_cutoff,
    flatten_before_close,
    loss_streak,
    max_trades_per_day,
    profit_target,
)
from tradectl.domain.limits import limit_dollars
from tradectl.services.day_rules import rule_checks

CLOSE = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)  # 16:00 in New York
NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def test_an_entry_one_minute_inside_the_cutoff_is_refused_one_minute_outside_allowed() -> None:
    inside = entry_cutoff(15, CLOSE - timedelta(minutes=14), CLOSE)
    outside = entry_cutoff(15, CLOSE - timedelta(minutes=16), CLOSE)
    assert inside.state == "tripped" and not inside.passed
    assert "16:00 ET" in inside.message and inside.figures["minutes_to_close"] == "14"
    assert outside.passed and outside.current == "16"


def test_the_cutoff_starts_at_exactly_its_minutes_and_warns_within_twice_them() -> None:
    assert entry_cutoff(15, CLOSE - timedelta(minutes=15), CLOSE).state == "tripped"
    assert entry_cutoff(15, CLOSE - timedelta(minutes=30), CLOSE).state == "warning"
    assert entry_cutoff(15, CLOSE - timedelta(minutes=31), CLOSE).state == "ok"


def test_a_half_day_close_is_the_one_alpaca_gives() -> None:
    half_day = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00 in New York
    verdict = entry_cutoff(10, half_day - timedelta(minutes=5), half_day)
    assert verdict.state == "tripped" and "13:00 ET" in verdict.message


def test_without_alpacas_clock_the_cutoff_is_not_judged() -> None:
    verdict = entry_cutoff(15, None, None)
    assert verdict.passed and verdict.current is None


def test_the_nth_trade_of_the_day_is_allowed_and_the_n_plus_first_refused() -> None:
    assert max_trades_per_day(3, 2).passed  # the third
    refused = max_trades_per_day(3, 3)  # the fourth
    assert refused.state == "tripped" and refused.figures == {"trades_today": "3", "limit": "3"}
    assert "MAX_TRADES_PER_DAY is 3" in refused.message


def trades(*pnls: str, last: datetime = NOW) -> list[ClosedTrade]:
    """Closed trades, newest first, a minute apart."""
    return [ClosedTrade(last - timedelta(minutes=i), Decimal(p)) for i, p in enumerate(pnls)]


def test_a_win_breaks_the_loss_streak() -> None:
    assert loss_streak(trades("-10", "-20", "5", "-30")) == 2
    assert loss_streak(trades("5", "-10", "-20")) == 0
    verdict = cooldown(Cooldown(2, 30), trades("40", "-10", "-20"), NOW)
    assert verdict.passed and verdict.current == "0"


def test_two_losses_in_a_row_start_the_cooldown_from_the_last_one() -> None:
    verdict = cooldown(Cooldown(2, 30), trades("-10", "-20"), NOW + timedelta(minutes=29))
    assert verdict.state == "tripped" and verdict.until == NOW + timedelta(minutes=30)
    assert verdict.figures["until"] == "2026-12-07T18:30:00Z"
    assert "18:30 UTC" in verdict.message


def test_the_cooldown_ends_exactly_at_its_time() -> None:
    ends = NOW + timedelta(minutes=30)
    assert cooldown(Cooldown(2, 30), trades("-10", "-20"), ends - timedelta(seconds=1)).state \
        == "tripped"
    assert cooldown(Cooldown(2, 30), trades("-10", "-20"), ends).passed


def test_one_loss_short_of_the_cooldown_is_a_warning() -> None:
    assert cooldown(Cooldown(3, 30), trades("-10", "-20", "5"), NOW).state == "warning"
    assert cooldown(Cooldown(1, 30), trades("5"), NOW).state == "ok"


def test_the_profit_target_at_the_target_is_tripped_and_a_cent_under_is_not() -> None:
    target = Amount(Decimal("500"))
    at = profit_target(target, Decimal("500.00"), Decimal("100000"))
    under = profit_target(target, Decimal("499.99"), Decimal("100000"))
    assert at.state == "tripped" and "DAILY_PROFIT_TARGET $500.00" in at.message
    assert under.state == "warning" and under.passed
    assert profit_target(target, Decimal("399.99"), None).state == "ok"


def test_a_percent_profit_target_is_of_the_days_starting_equity() -> None:
    target = Amount(Decimal("1"), percent=True)
    assert limit_dollars(target, Decimal("50000")) == Decimal("500.00")
    assert profit_target(target, Decimal("500"), Decimal("50000")).state == "tripped"
    assert profit_target(target, Decimal("499.99"), Decimal("50000")).passed
    unknown = profit_target(target, Decimal("900"), None)
    assert unknown.passed and unknown.limit is None


def test_only_the_rules_set_are_judged_in_a_fixed_order() -> None:
    figures = DayFigures(now=NOW, market_now=NOW, next_close=CLOSE, trades_today=1)
    assert day_verdicts(DayLimits(), figures) == []
    limits = DayLimits(entry_cutoff_minutes=15, max_trades_per_day=5,
                       cooldown=Cooldown(2, 30), profit_target=Amount(Decimal("100")))
    assert [v.rule for v in day_verdicts(limits, figures)] == [
        "entry_cutoff", "max_trades_per_day", "cooldown", "profit_target"]


HALF_DAY_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00 in New York


def test_the_flatten_trips_one_minute_inside_its_window_and_warns_one_minute_outside() -> None:
    inside = flatten_before_close(10, CLOSE - timedelta(minutes=9), CLOSE, True)
    edge = flatten_before_close(10, CLOSE - timedelta(minutes=10), CLOSE, True)
    outside = flatten_before_close(10, CLOSE - timedelta(minutes=11), CLOSE, True)
    assert (inside.state, inside.current, inside.limit) == ("tripped", "9", "10")
    assert "16:00 ET" in inside.message and "FLATTEN_BEFORE_CLOSE" in inside.message
    assert edge.state == "tripped"
    assert (outside.state, outside.current) == ("warning", "11")
    assert flatten_before_close(10, CLOSE - timedelta(minutes=21), CLOSE, True).state == "ok"


def test_a_half_days_early_close_is_the_one_on_alpacas_clock() -> None:
    at_noon_45 = HALF_DAY_CLOSE - timedelta(minutes=14)
    verdict = flatten_before_close(15, at_noon_45, HALF_DAY_CLOSE, True)
    assert verdict.state == "tripped" and "13:00 ET" in verdict.message
    # the same moment with a regular 16:00 close is hours away
    assert flatten_before_close(15, at_noon_45, at_noon_45 + timedelta(hours=3),
                                True).state == "ok"


def test_a_closed_market_or_an_unknown_clock_flattens_nothing() -> None:
    after = CLOSE + timedelta(minutes=5)
    assert flatten_before_close(1440, after, CLOSE + timedelta(days=1), False).state == "ok"
    unknown = flatten_before_close(10, None, None, None)
    assert unknown.state == "ok" and unknown.current is None


def test_the_flatten_is_listed_after_the_entry_rules_and_never_refuses_an_entry() -> None:
    limits = DayLimits(entry_cutoff_minutes=5, flatten_minutes=10)
    figures = DayFigures(now=NOW, market_now=CLOSE - timedelta(minutes=8), next_close=CLOSE,
                         market_open=True)
    verdicts = day_verdicts(limits, figures)
    assert [(v.rule, v.state) for v in verdicts] == [
        ("entry_cutoff", "warning"), ("flatten_before_close", "tripped")]
    assert [c.rule for c in rule_checks(verdicts)] == ["entry_cutoff"]
    assert limits.needs_market_clock and not DayLimits(max_trades_per_day=1).needs_market_clock
