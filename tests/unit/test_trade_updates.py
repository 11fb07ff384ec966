"""Trade updates applied between ticks (services/watch/trade_updates.py): a leg's update finds its
bracket, an older update never takes back a fill, only the positions a batch is about are
touched, and what happened is recorded. On SQLite and Postgres."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from tests.conftest import rows
from tests.support.db import orm_session
from tradectl.broker import Order, StreamStatus
from tradectl.db.models import Cycle, Event, Position, utcnow
from tradectl.db.session import Database
from tradectl.services.watch.reconcile import UNKNOWN_GRACE
from tradectl.services.watch.trade_updates import (
    KnownOrders,
    apply_trade_updates,
    note_refused_keys,
)

TAKE_PROFIT = Order("leg-tp", "", "AAPL", "sell", "limit", "new", Decimal(10), Decimal(0), None,
                    limit_price=Decimal(160))
STOP_LOSS = Order("leg-sl", "", "AAPL", "sell", "stop", "new", Decimal(10), Decimal(0), None,
                  stop_price=Decimal(140))
ENTRY = Order("entry-1", "client-1", "AAPL", "buy", "market", "new", Decimal(10), Decimal(0),
              None, order_class="bracket", legs=(TAKE_PROFIT, STOP_LOSS))
FILLED = replace(ENTRY, status="filled", filled_qty=Decimal(10), filled_avg_price=Decimal(150))


def seed(db: Database, **position: object) -> None:
    values: dict[str, object] = dict(
        cycle_id=1, symbol="AAPL", side="buy", qty=Decimal(10), stop_loss=Decimal(140),
        take_profit=Decimal(160), status="pending", client_order_id="client-1",
        alpaca_order_id="entry-1", alpaca_status="new")
    with orm_session(db) as session:
        if session.get(Cycle, 1) is None:
            session.add(Cycle(status="active"))
            session.flush()
        session.add(Position(**{**values, **position}))


def position(db: Database, client_order_id: str = "client-1") -> Position:
    with orm_session(db) as session:
        found = session.scalars(select(Position).where(
            Position.client_order_id == client_order_id)).one()
        session.expunge(found)
        return found


def apply(db: Database, known: KnownOrders, *orders: Order) -> tuple[str, ...]:
    return apply_trade_updates(db, known, orders, utcnow(), 8).changes


def test_an_entry_fill_opens_the_position_and_says_it_came_from_the_stream(db: Database) -> None:
    seed(db)
    assert apply(db, KnownOrders(), FILLED) == ("AAPL: open (filled)",)
    row = position(db)
    assert (row.status, row.filled_qty, row.filled_avg_price) == ("open", 10, 150)
    (event,) = rows(db.url, Event)
    assert event.kind == "position_synced" and event.details is not None
    assert event.details["source"] == "trade_updates"


def test_a_leg_fill_alone_closes_the_position_through_its_bracket(db: Database) -> None:
    seed(db, status="open", filled_qty=Decimal(10), filled_avg_price=Decimal(150))
    known = KnownOrders()
    known.reset([FILLED])  # the tick's read
    stop_fill = replace(STOP_LOSS, status="filled", filled_qty=Decimal(10),
                        filled_avg_price=Decimal("139.50"))
    assert apply(db, known, stop_fill) == ("AAPL: closed by stop_loss at 139.50",)
    row = position(db)
    assert (row.status, row.close_reason, row.realized_pl) == ("closed", "stop_loss",
                                                               Decimal("-105"))


def test_a_leg_found_through_the_streams_own_entry_update(db: Database) -> None:
    """No tick has read the bracket yet: the entry's update carried its legs."""
    seed(db)
    known = KnownOrders()
    target_fill = replace(TAKE_PROFIT, status="filled", filled_qty=Decimal(10),
                          filled_avg_price=Decimal(160))
    assert apply(db, known, FILLED, target_fill) == ("AAPL: closed by take_profit at 160.00",)
    row = position(db)
    assert (row.filled_avg_price, row.realized_pl) == (150, Decimal(100))  # one batch, one sync


def test_an_expired_leg_of_an_open_position_is_recorded_at_once(db: Database) -> None:
    seed(db, status="open", filled_qty=Decimal(10), filled_avg_price=Decimal(150),
         alpaca_status="filled")
    known = KnownOrders()
    known.reset([FILLED])
    changes = apply(db, known, replace(STOP_LOSS, status="expired"))
    assert changes == ("AAPL: the stop-loss leg expired at Alpaca while the position is open",)
    (event,) = rows(db.url, Event)
    assert event.kind == "bracket_leg_ended"
    assert event.details == {"order_id": "leg-sl", "order_status": "expired",
                             "source": "trade_updates"}
    assert position(db).status == "open"


def test_an_older_update_never_takes_back_a_fill(db: Database) -> None:
    seed(db)
    known = KnownOrders()
    known.reset([FILLED])  # the tick read the fill while the "new" update was still queued
    assert apply(db, known, ENTRY) == ("AAPL: open (filled)",)
    row = position(db)
    assert (row.status, row.alpaca_status, row.filled_qty) == ("open", "filled", 10)


def test_updates_about_other_orders_touch_no_position(db: Database) -> None:
    """Above all, a row whose order outcome is unknown is not failed by a batch that does not
    mention it (the tick, which reads every order, decides that)."""
    seed(db, client_order_id="lost-answer", alpaca_order_id=None, alpaca_status="unknown",
         created_at=utcnow() - UNKNOWN_GRACE - timedelta(minutes=1))
    seed(db, client_order_id="local", alpaca_order_id=None, alpaca_status="alpaca_disabled",
         symbol="MSFT")
    other = Order("someone-elses", "", "TSLA", "buy", "market", "filled", Decimal(1),
                  Decimal(1), Decimal(250))
    assert apply(db, KnownOrders(), other) == ()
    assert position(db, "lost-answer").status == "pending"
    assert position(db, "local").status == "pending"
    assert rows(db.url, Event) == []


def test_refused_stream_keys_are_recorded_once_until_the_stream_connects(db: Database) -> None:
    refused = StreamStatus("unauthorized", "Alpaca refused the keys; next try in 60 s")
    recorded = note_refused_keys(db, refused, False)
    recorded = note_refused_keys(db, StreamStatus("reconnecting"), recorded)
    recorded = note_refused_keys(db, refused, recorded)
    assert [e.kind for e in rows(db.url, Event)] == ["trade_updates_refused"]
    recorded = note_refused_keys(db, StreamStatus("connected"), recorded)
    note_refused_keys(db, refused, recorded)
    assert [e.kind for e in rows(db.url, Event)] == ["trade_updates_refused"] * 2
