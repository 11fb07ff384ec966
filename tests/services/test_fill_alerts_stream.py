"""ALERT_FILLS on the trade-updates stream (Watcher.apply_updates), on the in-process fakes: the
entry's fill and the take-profit's fill each queue one alert in the transaction that records
them, and the next tick neither repeats them nor loses them."""

from __future__ import annotations

from decimal import Decimal

from tests.fakes.broker import FakeBroker, FakeChannel
from tests.services.conftest import bracket, open_position
from tests.services.test_stream_protection import CONNECTED, Updates
from tradectl.db.session import Database
from tradectl.notify import Channels
from tradectl.services.alerts import deliver_pending
from tradectl.services.watch.watch import Watcher


def test_fills_seen_on_the_stream_are_alerted_once(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    channels = Channels((channel,))
    watch = Watcher(db, broker, channels, daily_loss_limit=Decimal(2000), drives_stops=True,
                    alert_fills=True)
    updates = Updates(broker)
    open_position(db, broker, bracket())  # the fake fills the entry at once
    watch.apply_updates(updates.take(), CONNECTED)
    broker.set_price("AAPL", "161")  # the take-profit fills
    watch.apply_updates(updates.take(), CONNECTED)
    deliver_pending(db, channels)
    assert [n.subject for n in channel.sent] == [
        "Entry filled: AAPL buy 2 @ 150.00",
        "Exit filled: AAPL sell 2 @ 161.00, P&L $22.00 (+2.20R)"]
    watch.tick()
    assert len(channel.sent) == 2  # the tick saw nothing new to alert


def test_without_alert_fills_the_stream_alerts_nobody(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    watch = Watcher(db, broker, Channels((channel,)), daily_loss_limit=Decimal(2000),
                    drives_stops=True)
    updates = Updates(broker)
    open_position(db, broker, bracket())
    watch.apply_updates(updates.take(), CONNECTED)
    broker.set_price("AAPL", "161")
    watch.apply_updates(updates.take(), CONNECTED)
    watch.tick()
    assert channel.sent == []
