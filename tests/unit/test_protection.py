"""The protection verdict: from one position, one read of Alpaca's orders, the last trade and the
time, whether a stop covers the held shares and what to do about a gap. Plain values, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradectl.broker import Order
from tradectl.db.models import Position
from tradectl.services.protection import (
    CLOSE_GAPPED,
    CLOSING,
    GAP_CLOSE_FAILED,
    PROTECTED,
    RESTORE,
    RESTORE_RETRY,
    UNPROTECTED,
    Verdict,
    cancel_targets,
    gapped_through,
    lost_close,
    protection_verdict,
)
from tradectl.services.watch.reconcile import UNKNOWN_GRACE, OrderBook, sync_position

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def order(order_id: str, kind: str, status: str = "new", *, side: str = "sell",
          qty: str = "10", filled: str = "0", price: str | None = None, **fields: Any) -> Order:
    prices = {"limit": "limit_price", "stop": "stop_price"}
    values: dict[str, Any] = {prices[kind]: Decimal(price)} if price and kind in prices else {}
    return Order(order_id, fields.pop("client_order_id", ""), "AAPL", side, kind, status,
                 Decimal(qty), Decimal(filled), fields.pop("filled_avg_price", None),
                 **values, **fields)


def bracket(*legs: Order, status: str = "filled", filled: str = "10") -> Order:
    return Order("entry", "tradectl-1", "AAPL", "buy", "market", status, Decimal(10),
                 Decimal(filled), Decimal(150), order_class="bracket", legs=legs)


def stop_leg(status: str = "new", **fields: Any) -> Order:
    return order("stop-1", "stop", status, price=fields.pop("price", "145"), **fields)


def target_leg(status: str = "new", **fields: Any) -> Order:
    return order("target-1", "limit", status, price="160", **fields)


def position(**fields: Any) -> Position:
    values: dict[str, Any] = dict(
        id=1, cycle_id=1, symbol="AAPL", side="buy", qty=Decimal(10), stop_loss=Decimal(145),
        take_profit=Decimal(160), status="open", client_order_id="tradectl-1",
        alpaca_order_id="entry", alpaca_status="filled", filled_qty=Decimal(10),
        filled_avg_price=Decimal(150))
    values.update(fields)
    return Position(**values)


def verdict(row: Position, *orders: Order, last: str | None = "150",
            blocked: str | None = None, holds: bool = True) -> Verdict:
    return protection_verdict(row, OrderBook.of(orders), now=NOW, broker_holds=holds,
                              last_trade=Decimal(last) if last else None, restore_blocked=blocked)


@pytest.mark.parametrize("status", ["new", "accepted", "held", "pending_new", "partially_filled"])
def test_a_working_stop_leg_protects_the_held_shares(status: str) -> None:
    found = verdict(position(), bracket(stop_leg(status), target_leg()))
    assert (found.state, found.protected, found.action) == (PROTECTED, True, None)
    assert found.view_fields()["working_stop"] == Decimal(145)
    assert found.view_fields()["stop_order_id"] == "stop-1"


@pytest.mark.parametrize("status", ["expired", "canceled", "pending_cancel", "rejected"])
def test_a_stop_that_no_longer_works_is_a_gap_to_restore(status: str) -> None:
    found = verdict(position(), bracket(stop_leg(status), target_leg(status)))
    assert (found.state, found.protected, found.action) == (UNPROTECTED, False, RESTORE)
    assert found.view_fields()["working_stop"] is None


def test_a_replaced_leg_counts_by_its_replacement() -> None:
    old = stop_leg("replaced", replaced_by="stop-2")
    new = order("stop-2", "stop", price="147", replaces="stop-1")
    found = verdict(position(), bracket(old, target_leg()), new)
    assert found.state == PROTECTED and found.stop == new


def test_a_replacement_that_is_gone_does_not_protect() -> None:
    old = stop_leg("replaced", replaced_by="stop-2")
    new = order("stop-2", "stop", "canceled", price="147", replaces="stop-1")
    assert verdict(position(), bracket(old), new).action == RESTORE


def test_a_stop_covering_fewer_shares_than_held_is_not_protection() -> None:
    found = verdict(position(), bracket(stop_leg(qty="4"), target_leg()))
    assert found.state == UNPROTECTED and "covers 4 of 10" in (found.reason or "")


def test_shares_already_sold_by_a_partly_filled_target_are_not_held() -> None:
    found = verdict(position(), bracket(stop_leg(qty="6"),
                                        target_leg("partially_filled", filled="4")))
    assert found.state == PROTECTED and found.held == Decimal(6)


def test_a_stop_on_the_entry_side_is_not_an_exit() -> None:
    wrong_side = order("stop-9", "stop", side="buy", price="145")
    assert verdict(position(stop_order_id="stop-9"), bracket(), wrong_side).action == RESTORE


@pytest.mark.parametrize(("side", "stop", "last", "gapped"), [
    ("buy", "145", "145", True), ("buy", "145", "144.99", True), ("buy", "145", "145.01", False),
    ("sell", "155", "155", True), ("sell", "155", "156", True), ("sell", "155", "154.99", False),
])
def test_the_market_at_or_beyond_the_stop_is_a_gap_through_it(
    side: str, stop: str, last: str, gapped: bool
) -> None:
    assert gapped_through(side, Decimal(stop), Decimal(last)) is gapped


def test_a_gap_through_the_stop_closes_at_market_instead_of_restoring() -> None:
    found = verdict(position(), bracket(stop_leg("expired")), last="140")
    assert found.action == CLOSE_GAPPED and "gapped through the stop 145" in (found.reason or "")


def test_a_refused_restore_does_not_hold_back_the_close_of_a_gap() -> None:
    refused = position(unprotected_since=NOW - timedelta(seconds=10),
                       restore_sent_at=NOW - timedelta(seconds=10),
                       protection_error="restore refused: stop_price must be <= base - 0.01")
    assert verdict(refused, bracket(), last="144.90").action == CLOSE_GAPPED


def test_a_failed_close_through_the_stop_waits_before_it_is_sent_again() -> None:
    failed = position(unprotected_since=NOW - timedelta(seconds=10),
                      exit_sent_at=NOW - timedelta(seconds=10),
                      protection_error=f"{GAP_CLOSE_FAILED}: Alpaca 403: rejected")
    found = verdict(failed, bracket(), last="140")
    assert (found.action, found.reason) == (None, failed.protection_error)
    later = position(unprotected_since=NOW - RESTORE_RETRY, exit_sent_at=NOW - RESTORE_RETRY,
                     protection_error=f"{GAP_CLOSE_FAILED}: Alpaca 403: rejected")
    assert verdict(later, bracket(), last="140").action == CLOSE_GAPPED


def test_a_short_is_protected_by_a_buy_stop_above() -> None:
    short = position(side="sell", stop_loss=Decimal(155), take_profit=Decimal(140))
    entry = Order("entry", "tradectl-1", "AAPL", "sell", "market", "filled", Decimal(10),
                  Decimal(10), Decimal(150), legs=(
                      order("stop-1", "stop", side="buy", price="155"),))
    assert verdict(short, entry).state == PROTECTED
    assert verdict(short, entry, last="156").state == PROTECTED  # a working stop is enough


def test_nothing_is_restored_when_it_is_not_allowed_and_it_says_why() -> None:
    found = verdict(position(), bracket(), blocked="trading is stopped")
    assert (found.state, found.action) == (UNPROTECTED, None)
    assert found.reason == "no stop order working at Alpaca; trading is stopped"


def test_a_restore_whose_outcome_is_unknown_is_not_sent_again_within_the_grace() -> None:
    sent = position(restore_client_order_id="tradectl-oco-1", restore_sent_at=NOW - timedelta(
        minutes=3), protection_error="restore outcome unknown (timeout)")
    found = verdict(sent, bracket())
    assert (found.state, found.action) == (UNPROTECTED, None)
    assert found.reason == "restore outcome unknown (timeout)"
    late = position(restore_client_order_id="tradectl-oco-1",
                    restore_sent_at=NOW - UNKNOWN_GRACE)
    assert verdict(late, bracket()).action == RESTORE  # never reached Alpaca: a new restore


def test_the_restore_found_in_the_orders_protects() -> None:
    oco = order("oco-1", "limit", price="160", order_class="oco",
                client_order_id="tradectl-oco-1",
                legs=(order("oco-stop", "stop", price="145", order_class="oco"),))
    row = position(restore_client_order_id="tradectl-oco-1", restore_sent_at=NOW)
    found = verdict(row, bracket(stop_leg("expired")), oco)
    assert found.state == PROTECTED and found.restore == oco
    assert (found.stop and found.stop.id, found.target and found.target.id) == ("oco-stop",
                                                                                 "oco-1")


def test_a_refused_restore_is_tried_again_only_after_the_retry_delay() -> None:
    refused = position(unprotected_since=NOW - timedelta(seconds=10),
                       restore_sent_at=NOW - timedelta(seconds=10),
                       protection_error="restore refused: Alpaca 403")
    found = verdict(refused, bracket())
    assert (found.action, found.reason) == (None, "restore refused: Alpaca 403")
    later = position(unprotected_since=NOW - RESTORE_RETRY, restore_sent_at=NOW - RESTORE_RETRY)
    assert verdict(later, bracket()).action == RESTORE


@pytest.mark.parametrize(("fields", "holds"), [
    ({"status": "pending", "filled_qty": None}, True),  # nothing filled yet
    ({"alpaca_status": "alpaca_disabled"}, True),  # never at a broker
    ({}, False),  # Alpaca holds no such position: the sync flags it
])
def test_no_verdict_without_shares_held(fields: dict[str, Any], holds: bool) -> None:
    found = verdict(position(**fields), bracket(), holds=holds)
    assert (found.state, found.protected, found.action) == (None, None, None)


def test_a_closing_position_is_not_restored() -> None:
    found = verdict(position(status="closing"), bracket())
    assert (found.state, found.action) == (CLOSING, None)


def test_one_cancel_per_group_and_a_working_entry_first() -> None:
    partly = bracket(stop_leg("held"), target_leg("held"), status="partially_filled",
                     filled="4")
    targets = cancel_targets(position(filled_qty=Decimal(4)), OrderBook.of([partly]))
    assert [(t.order.id, t.group) for t in targets] == [("entry", "entry")]
    filled = bracket(stop_leg(), target_leg())
    oco = order("oco-1", "limit", price="160", client_order_id="tradectl-oco-1",
                legs=(order("oco-stop", "stop", price="145"),))
    targets = cancel_targets(position(restore_client_order_id="tradectl-oco-1"),
                             OrderBook.of([filled, oco]))
    assert sorted(t.group for t in targets) == ["entry", "oco-1"]


def test_a_lost_close_is_the_untracked_market_exit_sent_since() -> None:
    row = position(status="closing", exit_sent_at=NOW)
    mine = order("close-1", "market", submitted_at=NOW + timedelta(seconds=1))
    theirs = order("close-0", "market", submitted_at=NOW + timedelta(seconds=2))
    before = order("close-old", "market", submitted_at=NOW - timedelta(minutes=1))
    assert lost_close(row, [before, theirs, mine], taken={"close-0"}) == mine
    assert lost_close(row, [before], taken=set()) is None


def test_a_filled_restore_closes_the_position_like_a_bracket_leg() -> None:
    oco = order("oco-1", "limit", "canceled", price="160", client_order_id="tradectl-oco-1",
                legs=(order("oco-stop", "stop", "filled", filled="10", price="145",
                            filled_avg_price=Decimal("144.90"), filled_at=NOW),))
    row = position(restore_client_order_id="tradectl-oco-1")
    change = sync_position(row, OrderBook.of([bracket(stop_leg("expired")), oco]), NOW)
    assert change == "closed by stop_loss at 144.90"
    assert (row.status, row.close_reason, row.realized_pl) == ("closed", "stop_loss",
                                                               Decimal("-51.00"))
