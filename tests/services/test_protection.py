"""Protection, `close` and `adjust` as services, on the in-process fakes (which fail the test if
Alpaca or the alert channel is called while a transaction is open): exactly one restore per gap,
lost answers never sent again, one alert per gap, siblings left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.broker import FakeBroker, FakeChannel
from tests.services.conftest import bracket, open_position
from tests.support.db import orm_session
from tradectl.db.models import Cycle, Event, Position
from tradectl.db.session import Database
from tradectl.domain.clock import FixedClock
from tradectl.errors import BrokerError, BrokerTimeout, InputError
from tradectl.notify import Channels
from tradectl.services.position.adjust import adjust_position
from tradectl.services.position.close_position import close_position
from tradectl.services.protection import RESTORE_RETRY
from tradectl.services.watch.reconcile import UNKNOWN_GRACE
from tradectl.services.watch.tick_report import TickReport
from tradectl.services.watch.watch import Watcher


def tick(db: Database, broker: FakeBroker, channel: FakeChannel, **options: Any) -> TickReport:
    watcher = Watcher(db, broker, Channels((channel,)), daily_loss_limit=Decimal(2000),
                      drives_stops=options.pop("drives_stops", True), **options)
    return watcher.tick()


def expire_the_legs(db: Database, broker: FakeBroker, channel: FakeChannel) -> None:
    """An open AAPL whose day bracket's legs expired at the close; the market open again."""
    open_position(db, broker, bracket())
    assert tick(db, broker, channel).positions[0].protected is True
    broker.state.end_day()
    broker.state.market_open = True


def an_open_aapl(db: Database, broker: FakeBroker, channel: FakeChannel) -> None:
    open_position(db, broker, bracket())
    tick(db, broker, channel)


def row(db: Database, position_id: int = 1) -> Position:
    with orm_session(db) as session:
        found = session.get_one(Position, position_id)
        session.expunge(found)
        return found


def kinds(db: Database) -> list[str]:
    with orm_session(db) as session:
        return [e.kind for e in session.query(Event).order_by(Event.id)]


def age(db: Database, **moved: timedelta) -> None:
    """Move the row's protection times back, as if that much time had passed."""
    with orm_session(db) as session:
        position = session.get_one(Position, 1)
        for name, delta in moved.items():
            setattr(position, name, getattr(position, name) - delta)


def test_a_gap_is_restored_by_one_oco_outside_any_transaction(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    report = tick(db, broker, channel)
    (view,) = report.positions
    assert broker.calls.count("submit_oco_exit") == 1
    assert view.protected is True and view.working_stop == Decimal(145)
    assert view.working_target == Decimal(160) and report.exit_code == 0
    assert row(db).restore_order_id == view.target_order_id
    tick(db, broker, channel)
    assert broker.calls.count("submit_oco_exit") == 1 and channel.sent == []


def test_a_lost_restore_answer_is_found_by_its_client_order_id(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    broker.lose_answer("submit_oco_exit")
    (view,) = tick(db, broker, channel).positions
    assert view.protected is True
    assert broker.calls.count("find_order_by_client_id") == 1
    assert "protection_unknown" not in kinds(db) and channel.sent == []


def test_an_unknown_restore_is_settled_from_the_orders_and_never_sent_again(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    broker.lose_answer("submit_oco_exit")
    broker.fail("find_order_by_client_id", BrokerTimeout("Alpaca did not answer in time"))
    report = tick(db, broker, channel)
    assert report.positions[0].protection == "unprotected" and report.exit_code == 4
    assert "outcome unknown" in (report.positions[0].protection_error or "")
    assert [n.subject[:11] for n in channel.sent] == ["UNPROTECTED"]

    (view,) = tick(db, broker, channel).positions  # the orders read shows the OCO
    assert view.protected is True and broker.calls.count("submit_oco_exit") == 1
    assert row(db).restore_order_id is not None and row(db).unprotected_since is None
    assert len(channel.sent) == 1


def test_a_restore_that_never_reached_alpaca_is_sent_again_only_after_the_grace(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    broker.fail("submit_oco_exit", BrokerTimeout("Alpaca did not answer in time"))
    assert tick(db, broker, channel).positions[0].protected is False
    assert tick(db, broker, channel).positions[0].protected is False
    assert broker.calls.count("submit_oco_exit") == 1  # unknown: not sent again
    age(db, restore_sent_at=UNKNOWN_GRACE)
    assert tick(db, broker, channel).positions[0].protected is True
    assert broker.calls.count("submit_oco_exit") == 2
    assert len(channel.sent) == 1  # one gap, one alert


def test_a_refused_restore_alerts_once_and_is_tried_again_after_the_retry_delay(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    broker.fail("submit_oco_exit", BrokerError("Alpaca 403: account is restricted", status=403))
    report = tick(db, broker, channel)
    assert report.exit_code == 4 and report.unprotected == ("AAPL #1",)
    assert "account is restricted" in (report.protection_error or "")
    assert row(db).restore_client_order_id is None  # no such order exists
    tick(db, broker, channel)
    assert broker.calls.count("submit_oco_exit") == 1  # not every tick
    age(db, restore_sent_at=RESTORE_RETRY)
    assert tick(db, broker, channel).positions[0].protected is True
    assert [n.subject for n in channel.sent] == ["UNPROTECTED - AAPL #1 has no working stop"]
    assert kinds(db).count("unprotected") == 1 and "protection_restored" in kinds(db)


def test_nothing_is_restored_while_trading_is_stopped(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    with orm_session(db) as session:
        session.get_one(Cycle, 1).status = "stopped"
    for _ in range(2):
        (view,) = tick(db, broker, channel).positions
        assert view.protection == "unprotected" and "trading is stopped" in (
            view.protection_error or "")
    assert "submit_oco_exit" not in broker.calls and len(channel.sent) == 1


def test_rearm_off_shows_the_gap_and_sends_nothing(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    (view,) = tick(db, broker, channel, rearm_protection=False).positions
    assert view.protected is False and "REARM_PROTECTION=false" in (view.note or "")
    assert "submit_oco_exit" not in broker.calls


def test_a_read_only_watch_shows_a_gap_and_writes_nothing(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    before = kinds(db)
    (view,) = tick(db, broker, channel, drives_stops=False).positions
    assert view.protection == "unprotected"
    assert "submit_oco_exit" not in broker.calls and channel.sent == []
    assert [k for k in kinds(db) if k not in before] == []


def test_a_gap_through_the_stop_is_closed_at_market_with_an_alert(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    broker.set_price("AAPL", "139.50")
    report = tick(db, broker, channel)
    assert any("gapped through the stop" in c for c in report.changes)
    assert "submit_oco_exit" not in broker.calls and broker.calls.count("close_position") == 1
    tick(db, broker, channel)
    closed = row(db)
    assert (closed.status, closed.close_reason, closed.exit_price) == (
        "closed", "stop_loss", Decimal("139.5"))
    assert [n.subject[:24] for n in channel.sent] == ["GAPPED THROUGH THE STOP "]


def test_a_refused_close_through_the_stop_is_unprotected_alerted_once_and_tried_again_later(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    expire_the_legs(db, broker, channel)
    broker.set_price("AAPL", "139.50")
    broker.fail("close_position", BrokerError("Alpaca 403: position close rejected", status=403))
    report = tick(db, broker, channel)
    assert report.exit_code == 4 and report.unprotected == ("AAPL #1",)
    assert "the close at market through the stop failed" in (
        report.positions[0].protection_error or "")
    assert row(db).status == "open"
    tick(db, broker, channel)
    assert broker.calls.count("close_position") == 1  # not every tick
    age(db, exit_sent_at=RESTORE_RETRY)
    tick(db, broker, channel)
    assert broker.calls.count("close_position") == 2 and row(db).status == "closing"
    assert [n.subject[:24] for n in channel.sent] == ["GAPPED THROUGH THE STOP "]


def two_aapl(db: Database, broker: FakeBroker, channel: FakeChannel) -> None:
    """Two tracked AAPL positions of 2 shares each, both with working legs."""
    open_position(db, broker, bracket())
    order = broker.state.submit({
        "symbol": "AAPL", "qty": "2", "side": "buy", "type": "market", "time_in_force": "gtc",
        "order_class": "bracket", "client_order_id": "sibling",
        "take_profit": {"limit_price": "165"}, "stop_loss": {"stop_price": "140"}})
    with orm_session(db) as session:
        session.add(Position(cycle_id=1, symbol="AAPL", side="buy", qty=Decimal(2),
                             stop_loss=Decimal(140), take_profit=Decimal(165), status="pending",
                             client_order_id="sibling", alpaca_order_id=order["id"]))
    assert [v.protected for v in tick(db, broker, channel).positions] == [True, True]


def test_close_sells_only_its_own_shares_and_the_sibling_keeps_its_stop(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    two_aapl(db, broker, channel)
    with pytest.raises(InputError, match="has 2 live positions"):
        close_position(db, broker, Channels((channel,)), "AAPL")
    outcome = close_position(db, broker, Channels((channel,)), "1")
    assert outcome.state in ("closing", "closed") and outcome.exit_code == 0
    (held,) = broker.state.positions_list()
    assert held["qty"] == "2"  # DELETE with qty: the sibling's shares stay
    views = {v.id: v for v in tick(db, broker, channel).positions}
    assert views[2].protected is True and views[2].working_stop == Decimal(140)
    assert row(db, 1).status == "closed" and row(db, 1).close_reason == "manual"
    assert "submit_oco_exit" not in broker.calls


def test_a_lost_close_answer_is_settled_from_the_orders(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    an_open_aapl(db, broker, channel)
    broker.lose_answer("close_position")
    outcome = close_position(db, broker, Channels((channel,)), "AAPL")
    assert outcome.state == "unknown" and outcome.exit_code == 4
    assert row(db).status == "closing"  # never restored meanwhile
    tick(db, broker, channel)
    closed = row(db)
    assert closed.exit_order_id is not None and closed.status == "closed"
    assert broker.calls.count("close_position") == 1 and "submit_oco_exit" not in broker.calls


def test_close_sends_nothing_when_the_stop_filled_before_its_cancel(
    db: Database, broker: FakeBroker, channel: FakeChannel, monkeypatch: pytest.MonkeyPatch,
) -> None:
    an_open_aapl(db, broker, channel)
    cancel = broker.cancel_order

    def fill_then_cancel(order_id: str) -> None:
        broker.set_price("AAPL", "144")  # the stop fills between the read and its cancel
        cancel(order_id)

    monkeypatch.setattr(broker, "cancel_order", fill_then_cancel)
    outcome = close_position(db, broker, Channels((channel,)), "AAPL")
    assert outcome.state == "failed" and "filled while closing" in (outcome.error or "")
    assert "close_position" not in broker.calls
    tick(db, broker, channel)
    assert (row(db).status, row(db).close_reason) == ("closed", "stop_loss")


def test_a_lost_replace_answer_is_followed_by_the_next_tick(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    an_open_aapl(db, broker, channel)
    broker.lose_answer("replace_order")
    report = adjust_position(db, broker, "AAPL", stop=Decimal(147), target=None)
    assert [leg.state for leg in report.legs] == ["unknown"] and report.exit_code == 4
    assert row(db).stop_loss == Decimal(145)  # not what was asked: what Alpaca said
    (view,) = tick(db, broker, channel).positions
    assert view.working_stop == Decimal(147) and row(db).stop_loss == Decimal(147)
    assert "exit_moved" in kinds(db) and broker.calls.count("replace_order") == 1


def test_close_of_a_position_whose_stop_already_filled_records_that_and_sends_nothing(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    an_open_aapl(db, broker, channel)
    broker.set_price("AAPL", "144")  # filled at Alpaca; no tick has seen it yet
    outcome = close_position(db, broker, Channels((channel,)), "AAPL")
    assert outcome.state == "closed" and outcome.position.close_reason == "stop_loss"
    assert "cancel_order" not in broker.calls and "close_position" not in broker.calls


def test_a_refused_restore_is_tried_again_once_the_injected_clock_passes_the_retry_delay(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    """Time comes from the clock the watch is given: the gap's times are its, and moving it
    (not the rows) is what lets the restore go again."""
    expire_the_legs(db, broker, channel)
    clock = FixedClock(datetime.now(UTC))
    watcher = Watcher(db, broker, Channels((channel,)), daily_loss_limit=Decimal(2000),
                      drives_stops=True, clock=clock)
    broker.fail("submit_oco_exit", BrokerError("Alpaca 403: account is restricted", status=403))
    assert watcher.tick().at == clock.now()
    assert (row(db).unprotected_since, row(db).restore_sent_at) == (clock.now(), clock.now())
    clock.advance(RESTORE_RETRY.total_seconds() - 1)
    assert watcher.tick().positions[0].protected is False
    assert broker.calls.count("submit_oco_exit") == 1
    clock.advance(1)
    assert watcher.tick().positions[0].protected is True
    assert broker.calls.count("submit_oco_exit") == 2


def test_close_records_when_it_was_sent_by_the_clock_it_is_given(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    an_open_aapl(db, broker, channel)
    clock = FixedClock(datetime.now(UTC) + timedelta(seconds=3))
    close_position(db, broker, Channels((channel,)), "AAPL", clock=clock)
    assert row(db).exit_sent_at == clock.now()
