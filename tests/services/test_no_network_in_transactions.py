"""No broker call and no alert is sent while a database transaction is open: the fakes fail the
test when that happens, and every use case runs here on them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.fakes.broker import FakeBroker, FakeChannel, OpenTransactions
from tests.services.conftest import LIMITS, bracket, open_position
from tests.support.db import orm_session
from tradectl.db.models import Alert, Cycle, Position, utcnow
from tradectl.db.session import Database
from tradectl.errors import BrokerTimeout
from tradectl.notify import Channels
from tradectl.services.halt.emergency_stop import emergency_stop
from tradectl.services.halt.resume import resume_trading
from tradectl.services.open.open_position import place_open, quote_open
from tradectl.services.open.pre_trade import send_pre_trade_reads
from tradectl.services.watch.watch import Watcher


def test_the_guard_fails_a_broker_call_made_inside_a_transaction(
    db: Database, broker: FakeBroker, channel: FakeChannel, transactions: OpenTransactions,
) -> None:
    """The control: without it, every test below could pass by a guard that never fires."""
    with db.transaction() as journal:
        journal.latest_cycle()
        assert transactions.count == 1
        with pytest.raises(AssertionError, match="broker.account"):
            broker.account()
        with pytest.raises(AssertionError, match="channel.send"):
            channel.send([])
    assert transactions.count == 0
    broker.account()  # and it stays quiet outside one


def test_open_settles_an_unknown_order_and_submits_outside_any_transaction(
    db: Database, broker: FakeBroker,
) -> None:
    broker.fail("submit_bracket", BrokerTimeout("Alpaca did not answer in time"))
    spec = bracket("MSFT", "390", "410")
    lost = place_open(db, broker, LIMITS, quote_open(db, send_pre_trade_reads(broker, spec)))
    assert lost.broker_error is not None and lost.position.alpaca_status == "unknown"
    open_position(db, broker, bracket())  # reads the orders to settle MSFT first
    assert broker.calls.count("list_orders") == 1
    assert broker.calls.count("submit_bracket") == 2


def test_a_watch_tick_reconciles_an_orphan_and_sends_alerts_outside_transactions(
    db: Database, broker: FakeBroker, channel: FakeChannel, channels: Channels,
) -> None:
    open_position(db, broker, bracket())
    order = broker.state.submit({  # an order whose submitter died before recording it
        "symbol": "TSLA", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
        "order_class": "bracket", "client_order_id": "orphan-1",
        "take_profit": {"limit_price": "260"}, "stop_loss": {"stop_price": "240"}})
    with orm_session(db) as session:
        session.add(Position(cycle_id=1, symbol="TSLA", side="buy", qty=Decimal(1),
                             stop_loss=Decimal(240), take_profit=Decimal(260), status="pending",
                             client_order_id="orphan-1",
                             created_at=utcnow() - timedelta(minutes=2)))
        session.add(Alert(kind="test", subject="queued", body="b", recipients="r",
                          status="pending", attempts=0))
    report = Watcher(db, broker, channels, daily_loss_limit=Decimal(2000),
                     drives_stops=True).tick()
    assert report.error is None, report.error
    tsla = next(p for p in report.positions if p.symbol == "TSLA")
    assert tsla.alpaca_order_id == order["id"] and tsla.status == "open"
    assert [n.subject for n in channel.sent] == ["queued"] and report.alerts_sent == 1


def test_the_loss_limit_stop_runs_its_broker_calls_outside_transactions(
    db: Database, broker: FakeBroker, channel: FakeChannel, channels: Channels,
) -> None:
    open_position(db, broker, bracket())
    open_position(db, broker, bracket("MSFT", "390", "410", entry="395"))  # not filled
    broker.state.last_equity = Decimal(103_000)  # a 3,000 loss today
    report = Watcher(db, broker, channels, daily_loss_limit=Decimal(2000),
                     drives_stops=True).tick()
    assert report.stop is not None and report.stop.exit_code == 0
    assert {s.symbol: s.state for s in report.stop.symbols} == {"AAPL": "closed",
                                                                "MSFT": "cancelled"}
    assert channel.sent[0].subject.startswith("EMERGENCY STOP")


@pytest.mark.usefixtures("channel")
def test_halt_cancels_an_entry_the_close_all_left_working_outside_transactions(
    db: Database, broker: FakeBroker, channels: Channels, monkeypatch: pytest.MonkeyPatch,
) -> None:
    open_position(db, broker, bracket("MSFT", "390", "410", entry="395"))
    real_close_all = broker.state.close_all
    monkeypatch.setattr(broker.state, "close_all", lambda _cancel_orders: real_close_all(False))
    report = emergency_stop(db, broker, channels, "test")
    (msft,) = report.symbols
    assert msft.state == "cancelling" and "cancel sent" in (msft.error or "")
    assert "cancel_order" in broker.calls and report.exit_code == 0


def test_resume_reads_the_account_and_sends_alerts_outside_transactions(
    db: Database, broker: FakeBroker, channel: FakeChannel, channels: Channels,
) -> None:
    emergency_stop(db, broker, channels, "test")
    channel.error = "SMTP down"
    emergency_stop(db, broker, channels, "again")  # queued, not sent
    channel.error = None
    report = resume_trading(db, broker, channels, "reviewed", daily_loss_limit=Decimal(2000))
    assert report.resumed and report.alerts_sent == 1
    with orm_session(db) as session:
        assert [c.status for c in session.query(Cycle).order_by(Cycle.id)] == [
            "stopped", "active"]


def test_a_claimed_alert_is_not_sent_twice_while_its_claim_holds(
    db: Database, channel: FakeChannel, channels: Channels,
) -> None:
    from tradectl.services.alerts import deliver_pending

    with orm_session(db) as session:
        session.add(Alert(kind="test", subject="once", body="b", recipients="r",
                          status="pending", attempts=0,
                          claimed_until=utcnow() + timedelta(minutes=1)))  # being sent
    assert deliver_pending(db, channels).sent == 0 and channel.sent == []
    with orm_session(db) as session:  # its sender died: the lease ran out
        alert = session.query(Alert).one()
        alert.claimed_until = utcnow() - timedelta(seconds=1)
    assert deliver_pending(db, channels).sent == 1
    assert deliver_pending(db, channels).sent == 0
    assert [n.subject for n in channel.sent] == ["once"]
