"""The day's entry rules in `open` (services/day_rules.py over domain/day_rules.py), with the
in-process fake broker: refused with the rule and its figures, recorded in `events`, shown by
the plan, judged again under the trading gate; Alpaca's clock for the cutoff."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.fakes.broker import FakeBroker
from tests.services.conftest import LIMITS, bracket
from tests.support.db import orm_session
from tradectl.config import Amount
from tradectl.db.models import Event, Position, utcnow
from tradectl.db.session import Database
from tradectl.domain.day_rules import Cooldown, DayLimits
from tradectl.domain.pre_trade import RiskLimits
from tradectl.errors import ExitCode, RefusedError
from tradectl.services.open.open_plan import open_dry_run, plan_open, quote_open
from tradectl.services.open.open_position import CHANGED, execute_open, place_open
from tradectl.services.open.pre_trade import send_pre_trade_reads

CLOSE = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)  # 16:00 in New York


def limits(**day: object) -> RiskLimits:
    return replace(LIMITS, day=DayLimits(**day))  # type: ignore[arg-type]


def try_open(db: Database, broker: FakeBroker, rules: RiskLimits, symbol: str = "AAPL") -> None:
    broker.set_price(symbol, "150")  # between bracket()'s stop and target
    reads = send_pre_trade_reads(broker, bracket(symbol),
                                 market_clock=rules.day.entry_cutoff_minutes is not None)
    outcome = place_open(db, broker, rules, quote_open(db, reads))
    assert outcome.broker_error is None


def refused_events(db: Database) -> list[Event]:
    with orm_session(db) as session:
        events = session.query(Event).filter_by(kind="refused").all()
        session.expunge_all()
        return events


def test_an_open_one_minute_inside_the_cutoff_is_refused_by_alpacas_clock(
    db: Database, broker: FakeBroker,
) -> None:
    rules = limits(entry_cutoff_minutes=15)
    broker.set_clock(CLOSE - timedelta(minutes=14), next_close=CLOSE)
    with pytest.raises(RefusedError) as refused:
        try_open(db, broker, rules)
    assert refused.value.rule == "entry_cutoff" and refused.value.exit_code == ExitCode.REFUSED
    assert refused.value.figures["minutes_to_close"] == "14"
    assert broker.writes == [] and "clock" in broker.calls
    (event,) = refused_events(db)
    assert event.details is not None and event.details["rule"] == "entry_cutoff"
    broker.set_clock(CLOSE - timedelta(minutes=16), next_close=CLOSE)
    try_open(db, broker, rules)
    assert len(broker.writes) == 1


def test_the_clock_is_read_only_when_the_cutoff_is_set(db: Database,
                                                       broker: FakeBroker) -> None:
    try_open(db, broker, limits(max_trades_per_day=3))
    assert "clock" not in broker.calls


def test_the_nth_trade_of_the_day_goes_out_and_the_n_plus_first_is_refused(
    db: Database, broker: FakeBroker,
) -> None:
    rules = limits(max_trades_per_day=2)
    try_open(db, broker, rules, "AAPL")
    try_open(db, broker, rules, "TSLA")
    with pytest.raises(RefusedError, match="2 entries sent today") as refused:
        try_open(db, broker, rules, "MSFT")
    assert refused.value.figures == {"trades_today": "2", "limit": "2"}
    assert len(broker.writes) == 2


def test_a_trade_taken_after_the_plan_refuses_it_under_the_gate(
    db: Database, broker: FakeBroker,
) -> None:
    rules = limits(max_trades_per_day=1)
    plan = plan_open(db, broker, rules, quote_open(db, send_pre_trade_reads(broker, bracket())))
    assert plan.refusal is None
    try_open(db, broker, rules, "MSFT")
    with pytest.raises(RefusedError, match=CHANGED):
        execute_open(db, broker, rules, plan)
    assert len(broker.writes) == 1


def closed_trades(db: Database, *pnls: str, last: datetime) -> None:
    """Closed trades, oldest first, the last closed at `last`, a minute apart."""
    with orm_session(db) as session:
        from tradectl.db.models import Cycle

        cycle = Cycle(status="active")
        session.add(cycle)
        session.flush()
        for i, pnl in enumerate(pnls):
            at = last - timedelta(minutes=len(pnls) - 1 - i)
            session.add(Position(
                cycle_id=cycle.id, symbol=f"X{i}", side="buy", qty=Decimal(1),
                stop_loss=Decimal(1), take_profit=Decimal(3), status="closed",
                client_order_id=f"seed-{i}", realized_pl=Decimal(pnl), created_at=at,
                closed_at=at))


def test_two_losses_in_a_row_refuse_entries_until_the_cooldown_ends(
    db: Database, broker: FakeBroker,
) -> None:
    last = utcnow() - timedelta(minutes=10)
    closed_trades(db, "50", "-20", "-30", last=last)
    rules = limits(cooldown=Cooldown(2, 30))
    with pytest.raises(RefusedError, match="2 losing trades in a row") as refused:
        try_open(db, broker, rules)
    assert refused.value.rule == "cooldown"
    ends = (last + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    assert refused.value.figures["until"] == ends
    try_open(db, broker, limits(cooldown=Cooldown(2, 5)))  # its 5 minutes are over


def test_a_win_after_the_losses_breaks_the_streak(db: Database, broker: FakeBroker) -> None:
    closed_trades(db, "-20", "-30", "10", last=utcnow() - timedelta(minutes=1))
    try_open(db, broker, limits(cooldown=Cooldown(2, 30)))
    assert len(broker.writes) == 1


def test_at_the_profit_target_entries_are_refused_a_cent_under_they_go(
    db: Database, broker: FakeBroker,
) -> None:
    broker.state.last_equity -= Decimal("500")  # the day is up $500
    with pytest.raises(RefusedError) as refused:
        try_open(db, broker, limits(profit_target=Amount(Decimal("500"))))
    assert refused.value.rule == "profit_target"
    assert refused.value.figures["day_pnl"] == "500" and refused.value.figures["limit"] == "500"
    try_open(db, broker, limits(profit_target=Amount(Decimal("500.01"))))


def test_a_percent_profit_target_is_of_alpacas_last_equity(db: Database,
                                                          broker: FakeBroker) -> None:
    broker.state.last_equity = Decimal("50000")
    broker.state.cash = Decimal("50500")  # equity 50,500: up 1% on the day
    with pytest.raises(RefusedError, match="DAILY_PROFIT_TARGET \\$500.00") as refused:
        try_open(db, broker, limits(profit_target=Amount(Decimal("1"), percent=True)))
    assert refused.value.figures["setting"] == "1%"
    try_open(db, broker, limits(profit_target=Amount(Decimal("1.01"), percent=True)))  # $505


def test_the_dry_run_shows_the_day_rules_and_the_refusal(db: Database,
                                                         broker: FakeBroker) -> None:
    broker.set_clock(CLOSE - timedelta(minutes=5), next_close=CLOSE)
    rules = limits(entry_cutoff_minutes=15, max_trades_per_day=4)
    reads = send_pre_trade_reads(broker, bracket(), market_clock=True)
    dry = open_dry_run(plan_open(db, broker, rules, quote_open(None, reads)),
                       trading_mode="paper")
    checks = {c.rule: c.passed for c in dry.checks}
    assert checks["entry_cutoff"] is False and checks["max_trades_per_day"] is True
    assert dry.exit_code == ExitCode.REFUSED and "entry_cutoff" in (dry.refusal or "")
    assert broker.writes == []


def test_status_lists_each_rule_set_reading_alpacas_clock_only_for_the_cutoff(
    db: Database, broker: FakeBroker,
) -> None:
    from tradectl.services.report.status import trading_status

    try_open(db, broker, LIMITS)
    broker.calls.clear()
    day = DayLimits(max_trades_per_day=2, profit_target=Amount(Decimal("1000")))
    report = trading_status(db, broker, mode="paper", day=day)
    assert [(r.rule, r.current, r.state) for r in report.rules] == [
        ("max_trades_per_day", "1", "ok"), ("profit_target", "0.00", "ok")]
    assert "clock" not in broker.calls
    broker.set_clock(CLOSE - timedelta(minutes=20), next_close=CLOSE)
    report = trading_status(db, broker, mode="paper", day=DayLimits(entry_cutoff_minutes=15))
    (cutoff,) = report.rules
    assert (cutoff.current, cutoff.state) == ("20", "warning") and "clock" in broker.calls


def test_status_without_a_broker_judges_the_day_on_the_journal(db: Database) -> None:
    from tradectl.services.report.status import trading_status

    closed_trades(db, "-20", "-30", last=utcnow())
    day = DayLimits(entry_cutoff_minutes=15, cooldown=Cooldown(2, 30))
    cutoff, cooldown = trading_status(db, None, mode="paper", day=day).rules
    assert cutoff.state == "ok" and cutoff.current is None  # no clock to judge on
    assert cooldown.state == "tripped" and cooldown.until is not None
