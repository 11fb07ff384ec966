"""How broker orders land on a position: what changes, and that nothing else is touched."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from tests.support.db import orm_session
from tradectl.broker import Order
from tradectl.db.models import Cycle, Money, Position
from tradectl.db.session import Database
from tradectl.services.orders import apply_bracket, apply_entry_order

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def entry(status: str = "filled", filled: str = "10", legs: tuple[Order, ...] = ()) -> Order:
    return Order("order-1", "client-1", "AAPL", "buy", "market", status, Decimal(10),
                 Decimal(filled), Decimal("150.00") if filled != "0" else None,
                 order_class="bracket", legs=legs)


def leg(kind: str, status: str, price: str | None = None) -> Order:
    return Order(f"leg-{kind}", "", "AAPL", "sell", kind, status, Decimal(10),
                 Decimal(10) if status == "filled" else Decimal(0),
                 Decimal(price) if price else None)


def stored_position(db: Database) -> None:
    with orm_session(db) as session:
        session.add(Cycle(status="active"))
        session.flush()
        session.add(Position(cycle_id=1, symbol="AAPL", side="buy", qty=Decimal(10),
                             stop_loss=Decimal(140), take_profit=Decimal(160), status="pending",
                             client_order_id="client-1"))


def test_an_unchanged_order_leaves_the_position_untouched(db: Database) -> None:
    """A quiet `watch` tick must not mark every position modified for the flush to re-examine."""
    stored_position(db)
    with orm_session(db) as session:
        position = session.scalars(select(Position)).one()
        assert apply_entry_order(position, entry(), NOW) is True
        assert position.status == "open" and position.filled_avg_price == Decimal("150.00")
    with orm_session(db) as session:
        position = session.scalars(select(Position)).one()
        assert apply_entry_order(position, entry(), NOW) is False
        assert apply_bracket(position, entry(legs=(leg("limit", "new"), leg("stop", "new"))), NOW) \
            is None
        assert not session.dirty


def test_a_partial_fill_then_a_filled_leg_close_the_position(db: Database) -> None:
    stored_position(db)
    with orm_session(db) as session:
        position = session.scalars(select(Position)).one()
        assert apply_bracket(position, entry("partially_filled", "4"), NOW) == \
            "open (partially_filled)"
        assert position.filled_qty == 4
        change = apply_bracket(position, entry(legs=(leg("limit", "filled", "160.00"),
                                                     leg("stop", "canceled"))), NOW)
        assert change == "closed by take_profit at 160.00"
        assert position.realized_pl == Decimal("100.00")  # 10 x (160 - 150)
        assert position.closed_at == NOW  # the leg's order says no fill time: the clock's


def test_an_entry_cancelled_unfilled_ends_at_the_time_it_is_seen(db: Database) -> None:
    stored_position(db)
    with orm_session(db) as session:
        position = session.scalars(select(Position)).one()
        assert apply_entry_order(position, entry("expired", "0"), NOW) is True
        assert (position.status, position.closed_at) == ("cancelled", NOW)


def test_money_reads_back_its_value_and_sign() -> None:
    """Reads are memoized by stored text: equal numbers must not borrow each other's form."""
    read = Money().process_result_value
    dialect = sqlite.dialect()  # unused on the read path
    assert str(read("0", dialect)) == "0"
    assert str(read("-0", dialect)) == "-0"
    assert str(read("145.000000", dialect)) == "145"
    assert str(read(Decimal("150.500000"), dialect)) == "150.5"
    assert read(None, dialect) is None
