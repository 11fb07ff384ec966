"""Every alert goes to each configured channel through the one outbox, and each channel is
delivered and retried on its own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import closed_port
from tests.fakes.broker import FakeBroker, FakeChannel, OpenTransactions
from tests.services.conftest import LIMITS
from tests.support.db import orm_session
from tradectl.broker import BracketRequest
from tradectl.db.models import Alert, Event
from tradectl.db.session import Database
from tradectl.errors import InputError
from tradectl.notify import Channels
from tradectl.services.alerts import deliver_pending, send_test_alert
from tradectl.services.halt.emergency_stop import emergency_stop
from tradectl.services.open.open_position import place_open, quote_open
from tradectl.services.open.pre_trade import send_pre_trade_reads
from tradectl.services.watch.watch import Watcher


@pytest.fixture
def hook(transactions: OpenTransactions) -> FakeChannel:
    return FakeChannel(transactions, name="webhook")


@pytest.fixture
def both(channel: FakeChannel, hook: FakeChannel) -> Channels:
    return Channels((channel, hook))


def alerts(db: Database) -> list[tuple[str, str, int]]:
    with orm_session(db) as session:
        return [(a.channel, a.status, a.attempts)
                for a in session.query(Alert).order_by(Alert.id)]


def open_aapl(db: Database, broker: FakeBroker) -> None:
    spec = BracketRequest("AAPL", "buy", 2, Decimal(145), Decimal(160), None, "day")
    place_open(db, broker, LIMITS, quote_open(db, send_pre_trade_reads(broker, spec)))


def test_a_stop_is_queued_once_per_channel_and_sent_to_both(
    db: Database, broker: FakeBroker, channel: FakeChannel, hook: FakeChannel, both: Channels,
) -> None:
    open_aapl(db, broker)
    report = emergency_stop(db, broker, both, "news")
    assert report.alert == "sent"
    assert alerts(db) == [("e-mail", "sent", 1), ("webhook", "sent", 1)]
    (mail,), (posted,) = channel.sent, hook.sent
    assert mail.subject == posted.subject == (
        "EMERGENCY STOP - trading halted: all closed or closing")
    # the webhook carries the stop's figures, not only its text
    assert posted.kind == "emergency_stop" and posted.facts is not None
    assert posted.facts["reason"] == "news" and posted.facts["symbols"][0]["symbol"] == "AAPL"
    with orm_session(db) as session:
        recipients = {a.channel: a.recipients for a in session.query(Alert)}
    assert recipients == {"e-mail": "trader@example.test", "webhook": "trader@example.test"}


def test_a_failed_webhook_is_retried_alone_by_the_next_tick(
    db: Database, broker: FakeBroker, channel: FakeChannel, hook: FakeChannel, both: Channels,
) -> None:
    hook.error = "HTTP 500"
    report = emergency_stop(db, broker, both, "news")
    assert report.exit_code == 0  # a failed alert never fails the stop
    assert report.alert == ("e-mail sent; webhook queued, not sent (HTTP 500); retried by watch, "
                            "halt or resume")
    assert alerts(db) == [("e-mail", "sent", 1), ("webhook", "pending", 1)]
    hook.error = None
    tick = Watcher(db, broker, both, daily_loss_limit=Decimal(2000), drives_stops=True).tick()
    assert tick.alerts_sent == 1
    assert alerts(db) == [("e-mail", "sent", 1), ("webhook", "sent", 2)]
    assert len(channel.sent) == 1 and len(hook.sent) == 1  # the e-mail did not go twice
    with orm_session(db) as session:
        failed = [e.message for e in session.query(Event).filter(Event.kind == "alert_failed")]
    assert failed == ["1 webhook alert(s) still queued: HTTP 500"]


def test_rows_of_a_channel_no_longer_configured_wait_without_holding_up_the_others(
    db: Database, broker: FakeBroker, channel: FakeChannel, hook: FakeChannel, both: Channels,
) -> None:
    hook.error = "down"
    emergency_stop(db, broker, both, "news")
    delivery = deliver_pending(db, Channels((channel,)))  # the webhook was unset since
    assert delivery.sent == 0 and alerts(db)[1] == ("webhook", "pending", 1)


def test_without_a_channel_the_alert_is_logged_as_skipped(db: Database, broker: FakeBroker,
                                                          ) -> None:
    report = emergency_stop(db, broker, None, "news")
    assert report.alert.startswith("not configured") and alerts(db) == []
    with orm_session(db) as session:
        (skipped,) = session.query(Event).filter(Event.kind == "alert_skipped")
    assert "ALERT_WEBHOOK_URL" in skipped.message


def test_when_the_database_is_down_the_stop_alerts_every_channel_directly(
    channel: FakeChannel, hook: FakeChannel,
) -> None:
    db = Database(f"postgresql://nobody@127.0.0.1:{closed_port()}/tradectl")
    broker = FakeBroker()
    broker.set_price("AAPL", "150")
    hook.transactions = channel.transactions = None
    hook.error = "HTTP 502"
    report = emergency_stop(db, broker, Channels((channel, hook)), "database down")
    db.dispose()
    assert report.database_error is not None
    assert report.alert == ("e-mail sent directly; webhook NOT SENT (HTTP 502) (the database "
                            "could not queue it)")
    (mail,) = channel.sent
    assert "NOT RECORDED" in mail.subject


def test_the_test_alert_goes_to_each_channel_and_says_which_failed(
    channel: FakeChannel, hook: FakeChannel, both: Channels,
) -> None:
    hook.error = "HTTP 404: no such hook"
    report = send_test_alert(both, trading_mode="paper")
    assert [(c.channel, c.sent, c.error) for c in report.channels] == [
        ("e-mail", True, None), ("webhook", False, "HTTP 404: no such hook")]
    assert report.exit_code == 4
    assert channel.sent[0].kind == "test" and "paper" in channel.sent[0].body
    with pytest.raises(InputError, match="no alert channel is configured"):
        send_test_alert(None, trading_mode="paper")
