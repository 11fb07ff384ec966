"""FLATTEN_BEFORE_CLOSE in `watch` (services/watch/day_close.py), on the in-process fakes (which
fail the test if Alpaca or the alert channel is called inside a transaction): the day trades
exited through `close`'s use case with close_reason flatten_before_close and one alert, a --gtc
position kept with its stop, Alpaca's clock (never ours) read beside the tick's other reads, a
failed close flagged and tried again, nothing closed twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.fakes.broker import FakeBroker, FakeChannel
from tests.services.conftest import bracket, open_position
from tests.support.db import orm_session
from tradectl.db.models import Event, Position
from tradectl.db.session import Database
from tradectl.domain.day_rules import DayLimits
from tradectl.errors import BrokerError
from tradectl.notify import Channels
from tradectl.services.watch.tick_report import TickReport
from tradectl.services.watch.watch import Watcher

CLOSE = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)  # 16:00 in New York
HALF_DAY_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00 in New York


def tick(db: Database, broker: FakeBroker, channel: FakeChannel, minutes: int | None = 10,
         **day: object) -> TickReport:
    limits = DayLimits(flatten_minutes=minutes, **day)  # type: ignore[arg-type]
    return Watcher(db, broker, Channels((channel,)), daily_loss_limit=Decimal(2000),
                   drives_stops=True, day=limits).tick()


def rows(db: Database) -> list[Position]:
    with orm_session(db) as session:
        found = session.query(Position).order_by(Position.id).all()
        session.expunge_all()
        return found


def events(db: Database, kind: str) -> list[Event]:
    with orm_session(db) as session:
        found = session.query(Event).filter_by(kind=kind).all()
        session.expunge_all()
        return found


def day_and_swing(db: Database, broker: FakeBroker, channel: FakeChannel) -> None:
    """AAPL opened as a day trade, MSFT with --gtc, both filled and protected."""
    broker.set_price("MSFT", "150")
    open_position(db, broker, bracket("AAPL"))
    open_position(db, broker, replace(bracket("MSFT"), time_in_force="gtc"))
    tick(db, broker, channel, minutes=None)
    assert [r.status for r in rows(db)] == ["open", "open"]


def test_one_minute_inside_the_window_the_day_trade_is_flattened_and_the_gtc_one_kept(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    day_and_swing(db, broker, channel)
    broker.set_clock(CLOSE - timedelta(minutes=11), next_close=CLOSE)
    outside = tick(db, broker, channel)
    assert [r.status for r in rows(db)] == ["open", "open"]
    (rule,) = outside.rules
    assert (rule.rule, rule.state, rule.current, rule.limit) == \
        ("flatten_before_close", "warning", "11", "10")
    assert "clock" in broker.calls

    broker.set_clock(CLOSE - timedelta(minutes=9), next_close=CLOSE)
    inside = tick(db, broker, channel)
    aapl, msft = rows(db)
    assert aapl.status == "closing" and aapl.close_reason == "flatten_before_close"
    assert msft.status == "open" and msft.close_reason is None
    assert inside.rules[0].state == "tripped"
    assert any("AAPL #1: flattened before the close: close order" in c for c in inside.changes)
    # the swing trade keeps its stop working at Alpaca
    assert msft.stop_order_id is not None
    assert broker.get_order(msft.stop_order_id).status in ("new", "accepted", "held")
    assert [p.protected for p in inside.positions if p.symbol == "MSFT"] == [True]
    assert [a.kind for a in channel.sent] == ["flatten_before_close"]
    assert len(events(db, "flatten_before_close")) == 1

    again = tick(db, broker, channel)  # the close filled; not sent again, no second alert
    assert not any("flattened" in c for c in again.changes)
    assert rows(db)[0].status == "closed"
    assert [a.kind for a in channel.sent] == ["flatten_before_close"]
    assert sum(1 for w in broker.writes if w.method == "DELETE" and "positions" in w.path) == 1


def test_a_half_days_early_close_is_alpacas_not_the_calendars(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    open_position(db, broker, bracket("AAPL"))
    tick(db, broker, channel, minutes=None)
    broker.set_clock(HALF_DAY_CLOSE - timedelta(minutes=16), next_close=HALF_DAY_CLOSE)
    assert tick(db, broker, channel, minutes=15).rules[0].state == "warning"
    assert rows(db)[0].status == "open"
    broker.set_clock(HALF_DAY_CLOSE - timedelta(minutes=14), next_close=HALF_DAY_CLOSE)
    tick(db, broker, channel, minutes=15)
    assert rows(db)[0].status == "closing"
    tick(db, broker, channel, minutes=15)
    assert rows(db)[0].status == "closed"


def test_a_closed_market_flattens_nothing(db: Database, broker: FakeBroker,
                                          channel: FakeChannel) -> None:
    open_position(db, broker, bracket("AAPL"))
    tick(db, broker, channel, minutes=None)
    broker.set_clock(CLOSE + timedelta(hours=1), next_close=CLOSE + timedelta(hours=24),
                     is_open=False)
    report = tick(db, broker, channel, minutes=1440)
    assert report.rules[0].state == "ok" and rows(db)[0].status == "open"


def test_a_failed_flatten_is_flagged_alerted_and_tried_again_next_tick(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    open_position(db, broker, bracket("AAPL"))
    tick(db, broker, channel, minutes=None)
    broker.set_clock(CLOSE - timedelta(minutes=5), next_close=CLOSE)
    refused = BrokerError("market closed for this symbol", status=422)
    broker.fail("close_position", refused, times=2)
    failed = tick(db, broker, channel)
    (aapl,) = rows(db)
    assert aapl.status == "open" and aapl.close_reason is None
    assert failed.protection_error is not None and "AAPL #1" in failed.protection_error
    assert [a.subject for a in channel.sent if a.kind == "flatten_before_close"] == [
        "FLATTEN BEFORE CLOSE FAILED for some day trades"]

    again = tick(db, broker, channel)  # refused again: tried, flagged, not alerted twice
    assert again.protection_error is not None and rows(db)[0].status == "open"
    assert len([a for a in channel.sent if a.kind == "flatten_before_close"]) == 1

    tick(db, broker, channel)
    (aapl,) = rows(db)
    assert aapl.status == "closing" and aapl.close_reason == "flatten_before_close"
    assert [a.subject for a in channel.sent if a.kind == "flatten_before_close"][1:] == [
        "Flattened the day trades before the close"]
    assert len(events(db, "flatten_before_close")) == 3


def test_the_clock_is_read_only_when_a_rule_needs_it(db: Database, broker: FakeBroker,
                                                    channel: FakeChannel) -> None:
    open_position(db, broker, bracket("AAPL"))
    report = tick(db, broker, channel, minutes=None, max_trades_per_day=3)
    assert "clock" not in broker.calls
    assert [r.rule for r in report.rules] == ["max_trades_per_day"]
