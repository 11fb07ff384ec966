"""Protection checked on each trade update (Watcher.apply_updates), on the in-process fakes: an
expired leg is restored on its event and the next tick adds nothing; the tick's rules hold (the
driving watch only, the cycle active, REARM_PROTECTION, one restore per gap); a restore sent
since the orders were read is not judged from those older orders."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.broker import FakeBroker, FakeChannel
from tests.services.conftest import bracket, open_position
from tests.support.db import orm_session
from tradectl.broker import Order, StreamStatus, wire
from tradectl.db.models import Cycle, Event
from tradectl.db.session import Database
from tradectl.notify import Channels
from tradectl.services.watch.watch import Watcher

CONNECTED = StreamStatus("connected")


def watcher(db: Database, broker: FakeBroker, channel: FakeChannel, **options: Any) -> Watcher:
    return Watcher(db, broker, Channels((channel,)), daily_loss_limit=Decimal(2000),
                   drives_stops=options.pop("drives_stops", True), **options)


class Updates:
    """The fake's trade updates, read as the stream reads them."""

    def __init__(self, broker: FakeBroker) -> None:
        self.orders: list[Order] = []
        broker.state.on_trade_update = self._add

    def _add(self, data: dict[str, Any]) -> None:
        message = json.dumps({"stream": "trade_updates", "data": data}).encode()
        self.orders.append(wire.parse_trade_update(wire.decode(message)))

    def take(self) -> list[Order]:
        taken, self.orders = self.orders, []
        return taken


def kinds(db: Database) -> list[str]:
    with orm_session(db) as session:
        return [e.kind for e in session.query(Event).order_by(Event.id)]


def held_aapl_with_its_legs_expiring(db: Database, broker: FakeBroker, channel: FakeChannel,
                                     **options: Any) -> tuple[Watcher, Updates]:
    """An open AAPL, read by a tick; then the close expires its day legs."""
    open_position(db, broker, bracket())
    watch = watcher(db, broker, channel, **options)
    assert watch.tick().positions[0].protected is True
    updates = Updates(broker)
    broker.state.end_day()
    return watch, updates


def test_an_expired_leg_is_restored_on_its_event_and_the_next_tick_adds_nothing(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    watch, updates = held_aapl_with_its_legs_expiring(db, broker, channel)
    expired = updates.take()
    assert sorted(o.status for o in expired) == ["expired", "expired"]

    report = watch.apply_updates(expired, CONNECTED)
    assert broker.calls.count("submit_oco_exit") == 1
    assert any("protection restored" in c for c in report.changes)
    assert report.positions is not None and report.positions[0].protected is True
    assert report.error is None and report.protection_error is None

    later = watch.tick()
    assert later.positions[0].protected is True and later.changes == ()
    assert broker.calls.count("submit_oco_exit") == 1
    assert "unprotected" not in kinds(db) and channel.sent == []


def test_each_leg_on_its_own_event_still_makes_one_restore(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    watch, updates = held_aapl_with_its_legs_expiring(db, broker, channel)
    for order in updates.take():
        watch.apply_updates([order], CONNECTED)
    watch.apply_updates(updates.take(), CONNECTED)  # the OCO's own updates, if any
    assert broker.calls.count("submit_oco_exit") == 1
    assert kinds(db).count("protection_restored") == 1


def test_a_restore_sent_since_the_orders_were_read_is_not_judged_from_them(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    """The tick restored the stop; the legs' expiry reaches the stream only after that, and the
    orders known to it do not hold the OCO yet: judged on them the position would look bare."""
    watch, updates = held_aapl_with_its_legs_expiring(db, broker, channel)
    late = updates.take()
    assert watch.tick().positions[0].protected is True  # restored by the tick
    assert broker.calls.count("submit_oco_exit") == 1
    watch.known_orders.reset([o for o in broker.list_orders(status="all")
                              if o.order_class != "oco"])  # as read before the restore

    report = watch.apply_updates(late, CONNECTED)
    assert report.error is None
    assert [c for c in report.changes if "leg expired" not in c] == []
    assert broker.calls.count("submit_oco_exit") == 1
    assert "unprotected" not in kinds(db) and channel.sent == []


@pytest.mark.parametrize("setting", ["read-only", "stopped", "REARM_PROTECTION=false"])
def test_the_event_restores_nothing_where_the_tick_would_not(
    db: Database, broker: FakeBroker, channel: FakeChannel, setting: str,
) -> None:
    options = {"read-only": {"drives_stops": False},
               "REARM_PROTECTION=false": {"rearm_protection": False}}.get(setting, {})
    watch, updates = held_aapl_with_its_legs_expiring(db, broker, channel, **options)
    if setting == "stopped":
        with orm_session(db) as session:
            session.get_one(Cycle, 1).status = "stopped"
    calls = len(broker.calls)

    watch.apply_updates(updates.take(), CONNECTED)
    assert broker.calls.count("submit_oco_exit") == 0
    if setting == "read-only":  # it only looks: nothing read, written or alerted
        assert broker.calls[calls:] == [] and "unprotected" not in kinds(db)
    else:  # the driving watch says so, once, as the tick does
        assert kinds(db).count("unprotected") == 1
        watch.apply_updates(updates.take(), CONNECTED)
        assert kinds(db).count("unprotected") == 1
