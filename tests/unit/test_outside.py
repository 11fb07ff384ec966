"""Trades at Alpaca outside tradectl (issue 23), as pure rules: which shares a row lost to a hand
sale and at what price, when a row is settled, and how a symbol's shares split between the rows
and the external part. Plain values, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tradectl.broker import BrokerPosition, Order
from tradectl.db.models import Position
from tradectl.services.orders import close
from tradectl.services.row_views import position_view
from tradectl.services.watch.holdings import split_holdings
from tradectl.services.watch.outside import NOT_HELD, OUTSIDE, outside_exits
from tradectl.services.watch.reconcile import OrderBook

OPENED = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
LATER = OPENED + timedelta(minutes=5)


def row(**fields: Any) -> Position:
    values: dict[str, Any] = dict(
        id=1, cycle_id=1, symbol="AAPL", side="buy", qty=Decimal(10), stop_loss=Decimal(145),
        take_profit=Decimal(160), status="open", client_order_id="tradectl-1",
        alpaca_order_id="entry", alpaca_status="filled", filled_qty=Decimal(10),
        filled_avg_price=Decimal(150), created_at=OPENED)
    values.update(fields)
    return Position(**values)


def entry(*legs: Order) -> Order:
    return Order("entry", "tradectl-1", "AAPL", "buy", "market", "filled", Decimal(10),
                 Decimal(10), Decimal(150), order_class="bracket", legs=legs, filled_at=OPENED)


def leg(status: str = "canceled") -> Order:
    return Order("stop-1", "", "AAPL", "sell", "stop", status, Decimal(10), Decimal(0), None,
                 stop_price=Decimal(145))


def by_hand(order_id: str, qty: str, price: str, side: str = "sell",
            minutes: int = 5) -> Order:
    return Order(order_id, "", "AAPL", side, "market", "filled", Decimal(qty), Decimal(qty),
                 Decimal(price), filled_at=OPENED + timedelta(minutes=minutes))


def holding(qty: str, avg: str = "150", price: str = "150") -> BrokerPosition:
    q = Decimal(qty)
    return BrokerPosition("AAPL", "long" if q > 0 else "short", q, Decimal(avg), Decimal(price),
                          q * Decimal(price), q * (Decimal(price) - Decimal(avg)))


def test_a_hand_sale_is_taken_from_the_row_at_the_newest_fills() -> None:
    position = row()
    book = OrderBook.of([entry(leg()), by_hand("old", "3", "140", minutes=-30),
                         by_hand("a", "3", "150", minutes=2), by_hand("b", "1", "154")])
    (done,) = outside_exits([position], {"AAPL": holding("6")}, book, LATER)
    assert (done.qty, done.price, done.settled) == (Decimal(4), Decimal("151"), False)
    assert (position.outside_qty, position.outside_pl) == (Decimal(4), Decimal(4))
    assert outside_exits([position], {"AAPL": holding("6")}, book, LATER) == []  # once
    close(position, Decimal(152), "manual", by_hand("close", "6", "152", minutes=9), LATER)
    assert position.realized_pl == Decimal(4) + Decimal(12)  # share for share


def test_a_row_alpaca_no_longer_holds_is_settled_from_its_fills() -> None:
    position = row()
    book = OrderBook.of([entry(leg()), by_hand("a", "10", "148")])
    (done,) = outside_exits([position], {}, book, LATER)
    assert done.settled and position.status == "closed"
    assert (position.close_reason, position.exit_price, position.realized_pl) == (
        OUTSIDE, Decimal(148), Decimal(-20))
    assert position.closed_at == OPENED + timedelta(minutes=5)


def test_without_a_fill_the_row_is_settled_a_tick_later_with_its_price_unknown() -> None:
    position, book = row(), OrderBook.of([entry(leg())])
    assert outside_exits([position], {}, book, LATER) == []  # maybe a read that crossed a fill
    position.alpaca_error = NOT_HELD  # the sync's flag, at the first tick
    (done,) = outside_exits([position], {}, book, LATER)
    assert done.settled and done.price is None
    assert (position.realized_pl, position.exit_price) == (None, None)
    assert position.alpaca_error is not None and "no fill" in position.alpaca_error


def test_nothing_is_decided_while_one_of_its_own_exits_still_works() -> None:
    position = row(alpaca_error=NOT_HELD)
    book = OrderBook.of([entry(leg("new")), by_hand("a", "10", "148")])
    assert outside_exits([position], {}, book, LATER) == []
    assert position.status == "open" and position.outside_qty is None


def test_shares_bought_by_hand_are_not_the_rows() -> None:
    position = row()
    book = OrderBook.of([entry(leg()), by_hand("sold", "2", "151", minutes=1),
                         by_hand("bought", "4", "151", side="buy", minutes=2)])
    (done,) = outside_exits([position], {"AAPL": holding("12")}, book, LATER)
    assert (done.qty, position.outside_qty, position.outside_pl) == (Decimal(2), Decimal(2),
                                                                     Decimal(2))


def test_rows_plus_external_add_up_to_alpacas_position() -> None:
    tracked = position_view(row(outside_qty=Decimal(2)))  # 8 left at 150
    alpaca = BrokerPosition("AAPL", "long", Decimal(13), Decimal("150.4"), Decimal(148),
                            Decimal(1924), Decimal("-31.2"))  # 8 at 150 and 5 at 151.04
    (mine,), (external,) = split_holdings([tracked], [alpaca])
    assert mine.unrealized_pl == Decimal(-16) and external.unrealized_pl is not None
    assert (external.qty, external.tracked_qty) == (Decimal(5), Decimal(8))
    assert external.avg_entry_price == Decimal("151.04")
    assert mine.unrealized_pl + external.unrealized_pl == Decimal("-31.2")
    alone = BrokerPosition("MSFT", "long", Decimal(1), Decimal(400), Decimal(401),
                           Decimal(401), Decimal(1))
    assert split_holdings([], [alone])[1][0].tracked_qty == 0
