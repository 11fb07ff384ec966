"""Limits in dollars or as a percentage (tradectl/domain/limits.py), as the settings, the risk
checks and `open --risk` read them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tradectl.broker import BracketRequest
from tradectl.config import Amount, load_settings
from tradectl.domain.limits import PercentOf, limit_dollars
from tradectl.domain.money import parse_risk_budget
from tradectl.domain.pre_trade import BookState, RiskLimits, pre_trade_checks
from tradectl.errors import ConfigError, InputError

SPEC = BracketRequest("AAPL", "buy", 100, Decimal(145), Decimal(160), None, "day")
PERCENT_LIMITS = RiskLimits(max_open_positions=10, max_position_notional=Decimal(25_000),
                            max_risk_per_trade=Amount(Decimal("0.5"), percent=True),
                            daily_loss_limit=Amount(Decimal("1"), percent=True))


def book(day_pnl: str | None, start: str | None) -> BookState:
    return BookState(frozenset(), 0, None if day_pnl is None else Decimal(day_pnl),
                     Decimal(1_000_000), day_start_equity=None if start is None else Decimal(start))


def test_the_settings_take_dollars_as_before_and_a_percentage_as_an_amount() -> None:
    settings = load_settings({"DAILY_LOSS_LIMIT": "1%", "MAX_RISK_PER_TRADE": "250"},
                             app_dir=Path("/tmp"))
    assert settings.daily_loss_limit == Amount(Decimal("1"), percent=True)
    assert settings.max_risk_per_trade == Decimal("250")
    for bad in ("1.5.%", "0%", "101%", "%", "-1%"):
        with pytest.raises(ConfigError, match="DAILY_LOSS_LIMIT"):
            load_settings({"DAILY_LOSS_LIMIT": bad}, app_dir=Path("/tmp"))


def test_a_percentage_is_rounded_down_to_the_cent_and_unknown_without_its_base() -> None:
    assert limit_dollars(PercentOf(Decimal("0.1")), Decimal("100101")) == Decimal("100.10")
    assert limit_dollars(PercentOf(Decimal("1")), None) is None
    assert limit_dollars(Decimal(500), None) == Decimal(500)


def test_open_risk_takes_dollars_or_a_percentage() -> None:
    assert parse_risk_budget("250") == Decimal(250)
    assert parse_risk_budget("0.5%") == PercentOf(Decimal("0.5"))
    for bad in ("1.5.%", "0%", "0.5 %", "-1%"):
        with pytest.raises(InputError, match="--risk"):
            parse_risk_budget(bad)


def test_percent_limits_judge_on_the_days_starting_equity() -> None:
    # 100 shares from 150 to a 145 stop: $500 of risk; 0.5% of 100,000 is $500, of 99,999 $499.99
    checks = {c.rule: c for c in pre_trade_checks(SPEC, Decimal(150), book("-999.99", "100000"),
                                                  PERCENT_LIMITS)}
    assert checks["max_risk_per_trade"].passed and checks["daily_loss_limit"].passed
    checks = {c.rule: c for c in pre_trade_checks(SPEC, Decimal(150), book("-1000", "99999"),
                                                  PERCENT_LIMITS)}
    assert not checks["max_risk_per_trade"].passed
    assert "MAX_RISK_PER_TRADE $499.99 (0.5% of the day's starting equity)" in \
        checks["max_risk_per_trade"].message
    assert not checks["daily_loss_limit"].passed  # 1% of 99,999 is $999.99


def test_without_the_days_equity_a_percent_limit_is_not_checked() -> None:
    checks = {c.rule: c for c in pre_trade_checks(SPEC, Decimal(150), book(None, None),
                                                  PERCENT_LIMITS)}
    assert checks["max_risk_per_trade"].passed and "not checked" in \
        checks["max_risk_per_trade"].message
