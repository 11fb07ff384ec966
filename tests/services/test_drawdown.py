"""MAX_DRAWDOWN_FROM_PEAK in `watch`, on real SQLite with the in-process fake broker: the day's
peak kept in `day_peaks` (through a restart; recovered from Alpaca's portfolio history after a
gap), and the emergency stop when the equity falls the limit below it, once, alerted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tests.conftest import closed_port
from tests.fakes.broker import FakeBroker, FakeChannel
from tradectl.db.session import Database
from tradectl.domain.clock import FixedClock
from tradectl.notify import Channels
from tradectl.rule_settings import Amount
from tradectl.services.watch.watch import Watcher

NOON = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 12:00 in New York, a Monday
DAY = date(2026, 11, 30)
LIMIT = Amount(Decimal("500"))


def at(broker: FakeBroker, moment: datetime, equity: str) -> FixedClock:
    """Alpaca's clock and the account's equity (cash alone: no position) at `moment`."""
    broker.set_clock(moment, next_close=NOON + timedelta(hours=4))
    broker.state.cash = Decimal(equity)
    return FixedClock(moment)


def watcher(db: Database, broker: FakeBroker, channel: FakeChannel, clock: FixedClock, *,
            drives: bool = True) -> Watcher:
    return Watcher(db, broker, Channels((channel,)), daily_loss_limit=Decimal(2000),
                   drives_stops=drives, clock=clock, drawdown=LIMIT)


def recorded(db: Database) -> tuple[Decimal, datetime] | None:
    with db.read() as journal:
        return journal.day_peak(DAY)


def test_a_green_day_that_gives_back_550_of_600_is_stopped_once_with_one_alert(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    clock = at(broker, NOON, "100600")
    watch = watcher(db, broker, channel, clock)
    first = watch.tick()
    assert [(r.rule, r.current, r.state) for r in first.rules] == [
        ("drawdown_from_peak", "0.00", "ok")]
    assert recorded(db) == (Decimal("100600"), NOON)

    clock.at = NOON + timedelta(hours=3)
    at(broker, clock.at, "100050")  # still up $50 on the day
    broker.calls.clear()
    stopped = watch.tick()
    assert stopped.stop is not None and stopped.cycle_status == "stopped"
    assert stopped.day_pnl == Decimal("50")
    assert stopped.stop_reason == (
        "drawdown_from_peak: equity $100,050.00 fell $550.00 from the day's peak $100,600.00, "
        "reaching MAX_DRAWDOWN_FROM_PEAK $500.00")
    (rule,) = stopped.rules
    assert rule.state == "tripped" and rule.figures["drop"] == "550"
    # the tick's three reads, then a second account read confirms before the stop's calls
    assert sorted(broker.calls[:3]) == ["account", "list_orders", "list_positions"]
    assert broker.calls[3] == "account"
    assert len(channel.sent) == 1 and "drawdown_from_peak" in channel.sent[0].body

    again = watch.tick()
    assert again.stop is None and again.cycle_status == "stopped"
    assert len(channel.sent) == 1


def test_the_peak_is_written_only_when_it_rises(db: Database, broker: FakeBroker,
                                                channel: FakeChannel) -> None:
    clock = at(broker, NOON, "100600")
    watch = watcher(db, broker, channel, clock)
    watch.tick()
    clock.at = NOON + timedelta(minutes=5)
    at(broker, clock.at, "100300")
    warned = watch.tick()
    assert (warned.rules[0].state, warned.rules[0].current) == ("ok", "300.00")
    assert recorded(db) == (Decimal("100600"), NOON)
    clock.at = NOON + timedelta(minutes=10)
    at(broker, clock.at, "100700")
    watch.tick()
    assert recorded(db) == (Decimal("100700"), NOON + timedelta(minutes=10))


def test_a_restart_between_the_peak_and_the_give_back_keeps_the_peak(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    clock = at(broker, NOON, "100600")
    watcher(db, broker, channel, clock).tick()
    assert broker.calls.count("equity_history") == 1  # nothing recorded yet today

    clock.at = NOON + timedelta(hours=3)
    at(broker, clock.at, "100050")
    broker.set_equity_history([(clock.at, "100050")])  # the record, not the history, counts
    restarted = watcher(db, broker, channel, clock).tick()
    assert restarted.stop is not None
    assert "peak $100,600.00" in (restarted.stop_reason or "")
    assert broker.calls.count("equity_history") == 1


def test_after_a_gap_the_peak_comes_from_alpacas_portfolio_history(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    three_pm = NOON + timedelta(hours=3)
    broker.set_equity_history([(NOON - timedelta(days=3), "120000"),  # Friday: not today
                               (NOON, "100600"), (three_pm - timedelta(minutes=1), "100100")])
    clock = at(broker, three_pm, "100050")
    report = watcher(db, broker, channel, clock).tick()
    assert report.stop is not None
    assert report.stop_reason is not None and "peak $100,600.00" in report.stop_reason
    assert recorded(db) == (Decimal("100600"), NOON)


def test_a_read_only_watch_shows_the_tripped_rule_and_never_stops(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    broker.set_equity_history([(NOON, "100600")])
    clock = at(broker, NOON + timedelta(hours=3), "100050")
    report = watcher(db, broker, channel, clock, drives=False).tick()
    assert report.stop is None and report.rules[0].state == "tripped"
    assert channel.sent == []


def test_status_shows_the_drop_from_the_recorded_peak(db: Database, broker: FakeBroker,
                                                      channel: FakeChannel) -> None:
    from tradectl.services.report.status import trading_status

    clock = at(broker, NOON, "100600")
    watcher(db, broker, channel, clock).tick()
    clock.at = NOON + timedelta(minutes=30)
    at(broker, clock.at, "100150")
    report = trading_status(db, broker, mode="paper", clock=clock, drawdown=LIMIT)
    (rule,) = report.rules
    assert (rule.rule, rule.limit, rule.current, rule.state) == (
        "drawdown_from_peak", "500", "450.00", "warning")


def test_an_unreadable_history_keeps_the_readings_and_is_tried_again(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    from tradectl.errors import BrokerError

    broker.set_equity_history([(NOON, "100600")])
    broker.fail("equity_history", BrokerError("Alpaca 500: internal error", status=500))
    clock = at(broker, NOON + timedelta(hours=1), "100300")
    watch = watcher(db, broker, channel, clock)
    first = watch.tick()
    assert first.stop is None and "drawdown: portfolio history: Alpaca 500" in first.changes[-1]
    assert recorded(db) == (Decimal("100300"), clock.at)  # this reading, kept meanwhile

    clock.at += timedelta(minutes=1)
    at(broker, clock.at, "100100")
    second = watch.tick()  # the history read again: its noon peak counts
    assert second.stop is not None and "peak $100,600.00" in (second.stop_reason or "")
    assert broker.calls.count("equity_history") == 2


def test_without_its_database_the_peak_in_memory_still_stops_the_day(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    clock = at(broker, NOON, "100600")
    watch = watcher(db, broker, channel, clock)
    watch.tick()
    gone = Database(f"postgresql://nobody@127.0.0.1:{closed_port()}/tradectl")
    assert watch.stops is not None and watch.stops.peaks is not None
    # the database is unreachable from here on, for the tick and for the stops
    watch.db = watch.stops.db = watch.stops.peaks.db = gone
    broker.transactions = channel.transactions = None
    clock.at = NOON + timedelta(hours=3)
    at(broker, clock.at, "100050")
    report = watch.tick()
    assert report.database_failed and report.rules[0].state == "tripped"
    assert broker.calls.count("close_all_positions") == 1  # the stop, from the peak in memory
    assert report.stop is not None and report.stop.database_error is not None
    gone.dispose()
