"""The strict parsers (tradectl.broker.wire) on answers near Alpaca's spec: what real answers
drift into (fields removed in 2026, `held`, 9-digit fractions, New York offsets) reads; what
tradectl cannot read (a missing decision field, NaN, loose number text, leap seconds, naive
times, "false" as a boolean, a null body, a 207 item without its id) is BrokerProtocolError
naming the field, never a guess and never another exception."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradectl.broker import wire
from tradectl.errors import BrokerProtocolError, BrokerTimeout

ACCOUNT = {
    "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98", "account_number": "PA3Q1XZ0QF9X",
    "status": "ACTIVE", "currency": "USD", "cash": "-23140.2", "portfolio_value": "103820.56",
    "equity": "103820.56", "last_equity": "103529.24", "buying_power": "262113.632",
    "trading_blocked": False, "account_blocked": False, "trade_suspended_by_user": False,
    "pattern_day_trader": False, "daytrade_count": 0, "daytrading_buying_power": "262113.632",
    "transfers_blocked": False, "multiplier": "4", "created_at": "2019-06-12T22:47:07.99658Z",
}
CLOCK = {"timestamp": "2025-06-24T14:15:22-04:00", "is_open": True,
         "next_open": "2025-06-25T09:30:00-04:00", "next_close": "2025-06-24T16:00:00-04:00"}
LEG = {"id": "b3b1e1a0-0c2e-4c3f-9a53-0d3c3a3a0001", "client_order_id": "leg-1",
       "symbol": "AAPL", "side": "sell", "type": "limit", "status": "held", "qty": "1",
       "filled_qty": "0", "filled_avg_price": None, "limit_price": "160", "stop_price": None,
       "order_class": "bracket", "submitted_at": "2026-11-25T14:30:00.123456789Z",
       "legs": None}
ORDER = {**LEG, "id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "client_order_id": "entry-1",
         "side": "buy", "type": "market", "status": "filled", "filled_qty": "1",
         "filled_avg_price": "150.25", "limit_price": None, "filled_at": "2026-11-25T14:30:01Z",
         "legs": [LEG]}
POSITION = {"asset_id": "904837e3-3b76-47ec-b432-046db621571b", "symbol": "AAPL",
            "qty": "5", "side": "long", "avg_entry_price": "100.0", "market_value": "600.0",
            "current_price": "120.0", "unrealized_pl": "100.0", "exchange": "NASDAQ"}


def read(parse: Callable[[Any], Any], answer: Any) -> Any:
    """An answer as Alpaca's bytes, through the adapter's own path."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return parse(wire.decode(text.encode()))


def unreadable(parse: Callable[[Any], Any], answer: Any) -> BrokerProtocolError:
    with pytest.raises(BrokerProtocolError) as caught:
        read(parse, answer)
    assert isinstance(caught.value, BrokerTimeout)  # the outcome of a write is unknown
    assert "\n" not in caught.value.message
    return caught.value


def changed(base: dict, **fields: Any) -> dict:
    out = copy.deepcopy(base)
    for name, value in fields.items():
        if value is ...:
            out.pop(name, None)
        else:
            out[name] = value
    return out


# -- the account ------------------------------------------------------------------------------


def test_an_account_answer_reads_into_exact_decimals() -> None:
    account = read(wire.parse_account, ACCOUNT)
    assert (account.equity, account.last_equity, account.cash) == (
        Decimal("103820.56"), Decimal("103529.24"), Decimal("-23140.2"))
    assert account.day_pnl == Decimal("291.32")
    assert account.trading_blocked is False


@pytest.mark.parametrize("name", ["equity", "last_equity", "status"])
def test_an_account_without_a_field_tradectl_decides_on_is_unreadable(name: str) -> None:
    # {"status": "ACTIVE", "last_equity": "100000"} once read as a day P&L of -$100,000
    assert unreadable(wire.parse_account, changed(ACCOUNT, **{name: ...})).field == \
        f"account.{name}"
    assert unreadable(wire.parse_account, changed(ACCOUNT, **{name: None})).field == \
        f"account.{name}"


def test_the_seen_account_without_equity_is_unreadable_not_a_loss() -> None:
    error = unreadable(wire.parse_account, {"status": "ACTIVE", "last_equity": "100000"})
    assert error.message == "Alpaca sent an answer tradectl cannot read: account.equity is missing"


@pytest.mark.parametrize("text", [
    "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "-inf", "Inf",
    " 12.5 ", "12.5 ", "1_000", "1,000.00", "١٢٣", "１２", "+5", "1e3", "1E3", "1e-3", "0x10",
    "12.", ".5", "--5", "", "1/2", "12.5.1", "\u200b12",
])
def test_an_amount_that_is_not_plain_finite_decimal_text_is_unreadable(text: str) -> None:
    error = unreadable(wire.parse_account, changed(ACCOUNT, equity=text))
    assert error.field == "account.equity"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e3", "1E+3", "1.5e-7",
                                     "true", "false", "[]", "{}"])
def test_a_json_literal_that_is_not_a_plain_number_is_unreadable(literal: str) -> None:
    text = json.dumps(ACCOUNT).replace('"equity": "103820.56"', f'"equity": {literal}')
    assert unreadable(wire.parse_account, text).field == "account.equity"


@pytest.mark.parametrize(("literal", "value"), [
    ("103820.56", "103820.56"), ("100000", "100000"), ("-0.5", "-0.5"),
    ("0.000000001", "0.000000001"), ("122011.09751111286868", "122011.09751111286868"),
])
def test_a_json_number_reads_exactly_through_its_text(literal: str, value: str) -> None:
    text = json.dumps(ACCOUNT).replace('"equity": "103820.56"', f'"equity": {literal}')
    assert read(wire.parse_account, text).equity == Decimal(value)  # never through a float


@pytest.mark.parametrize("value", ["false", "true", 0, 1, "", "no"])
def test_a_flag_that_is_not_a_json_boolean_is_unreadable(value: Any) -> None:
    # bool("false") is True: a blocked account must not read as allowed, nor the reverse
    assert unreadable(wire.parse_account, changed(ACCOUNT, trading_blocked=value)).field == \
        "account.trading_blocked"


def test_the_pdt_fields_removed_in_2026_are_not_missed() -> None:
    removed = changed(ACCOUNT, pattern_day_trader=..., daytrade_count=...,
                      daytrading_buying_power=..., multiplier=...)
    assert read(wire.parse_account, removed).equity == Decimal("103820.56")


def test_what_an_account_only_shows_is_none_when_alpaca_leaves_it_out() -> None:
    bare = read(wire.parse_account, {"status": "ACTIVE", "equity": "10", "last_equity": "9"})
    assert (bare.cash, bare.buying_power, bare.currency) == (None, None, None)
    assert (bare.trading_blocked, bare.account_blocked, bare.trade_suspended_by_user) == (
        None, None, None)  # unknown, not "not blocked"
    assert bare.portfolio_value == Decimal("10")  # documented as equal to equity
    assert bare.account_number == ""


def test_unknown_fields_are_kept_out_of_the_way() -> None:
    extra = changed(ACCOUNT, crypto_status="ACTIVE", admin_configurations={"a": [1, 2.5, None]},
                    user_configurations=None, bod_dtbp=0, future_amount=1e300)
    assert read(wire.parse_account, extra) == read(wire.parse_account, ACCOUNT)


@pytest.mark.parametrize("parse", [wire.parse_account, wire.parse_clock, wire.parse_order,
                                   wire.parse_orders, wire.parse_positions,
                                   wire.parse_canceled_orders, wire.parse_closed_positions])
@pytest.mark.parametrize("body", ["null", '"ok"', "42", "true", "[]", "{}"])
def test_a_null_or_misshapen_body_is_unreadable(parse: Callable[[Any], Any], body: str) -> None:
    if body == "[]" and parse in (wire.parse_orders, wire.parse_positions,
                                  wire.parse_canceled_orders, wire.parse_closed_positions):
        assert read(parse, body) == []  # an empty list is an answer
        return
    unreadable(parse, body)


@pytest.mark.parametrize("body", [b"", b"<html>502 Bad Gateway</html>", b"{", b'{"a": 1}}',
                                  b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000])
def test_what_is_not_json_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(BrokerProtocolError) as caught:
        wire.decode(body)
    assert caught.value.field is None and "non-JSON" in caught.value.message


def test_a_key_sent_twice_is_unreadable() -> None:
    # which equity is meant? neither can be trusted
    text = '{"status": "ACTIVE", "equity": "1", "equity": "100000", "last_equity": "1"}'
    error = unreadable(wire.parse_account, text)
    assert "'equity' appears twice" in error.message


# -- the clock ---------------------------------------------------------------------------------


def test_the_clock_in_new_york_time_comes_back_in_utc() -> None:
    clock = read(wire.parse_clock, CLOCK)
    assert clock.timestamp == datetime(2025, 6, 24, 18, 15, 22, tzinfo=UTC)
    assert clock.next_open == datetime(2025, 6, 25, 13, 30, tzinfo=UTC)
    assert {t.tzinfo for t in (clock.timestamp, clock.next_open, clock.next_close)} == {UTC}


@pytest.mark.parametrize(("text", "moment"), [
    ("2026-11-25T08:21:45Z", datetime(2026, 11, 25, 8, 21, 45, tzinfo=UTC)),
    ("2026-11-25T03:21:45-05:00", datetime(2026, 11, 25, 8, 21, 45, tzinfo=UTC)),
    ("2026-11-25T13:51:45+05:30", datetime(2026, 11, 25, 8, 21, 45, tzinfo=UTC)),
    ("2026-11-25T08:21:45-00:00", datetime(2026, 11, 25, 8, 21, 45, tzinfo=UTC)),
    ("2026-11-25T08:21:45.123456789Z", datetime(2026, 11, 25, 8, 21, 45, 123456, tzinfo=UTC)),
    ("2026-11-25T08:21:45.999999999Z", datetime(2026, 11, 25, 8, 21, 45, 999999, tzinfo=UTC)),
    ("2026-11-25T08:21:45.5Z", datetime(2026, 11, 25, 8, 21, 45, 500000, tzinfo=UTC)),
])
def test_rfc3339_times_read_as_the_moment_they_name(text: str, moment: datetime) -> None:
    assert read(wire.parse_clock, changed(CLOCK, timestamp=text)).timestamp == moment


@pytest.mark.parametrize("text", [
    "2026-06-30T23:59:60Z",  # a leap second
    "2026-11-25t08:21:45Z", "2026-11-25T08:21:45z",  # lower-case t / z
    "2026-11-25T08:21:45", "2026-11-25 08:21:45Z", "2026-11-25T08:21:45.1234567890Z",
    "2026-11-25T08:21Z", "2026-11-25", "2026-11-25T08:21:45+0500", "2026-11-25T08:21:45+05",
    "2026-11-25T08:21:45+24:00", "2026-11-25T08:21:45+05:60", "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "10000-01-01T00:00:00Z", "２０２６-11-25T08:21:45Z",
    " 2026-11-25T08:21:45Z", "1764058905", "",
])
def test_a_time_that_is_not_rfc3339_with_an_offset_is_unreadable(text: str) -> None:
    assert unreadable(wire.parse_clock, changed(CLOCK, timestamp=text)).field == \
        "clock.timestamp"


def test_a_clock_number_or_missing_field_is_unreadable() -> None:
    assert unreadable(wire.parse_clock, changed(CLOCK, timestamp=1764058905)).field == \
        "clock.timestamp"
    assert unreadable(wire.parse_clock, changed(CLOCK, next_close=...)).field == \
        "clock.next_close"
    assert unreadable(wire.parse_clock, changed(CLOCK, is_open="true")).field == "clock.is_open"


# -- orders -----------------------------------------------------------------------------------


def test_an_order_reads_with_its_legs() -> None:
    order = read(wire.parse_order, ORDER)
    assert (order.status, order.filled_qty, order.filled_avg_price) == (
        "filled", Decimal(1), Decimal("150.25"))
    (leg,) = order.legs
    assert (leg.status, leg.limit_price, leg.legs) == ("held", Decimal(160), ())
    assert leg.submitted_at == datetime(2026, 11, 25, 14, 30, 0, 123456, tzinfo=UTC)


def test_a_replaced_order_reads_with_its_links_and_time_in_force() -> None:
    """A PATCH's old order names its replacement and the new one names the old (Order schema);
    absent (or null, as on every order never replaced) they read as None."""
    old = read(wire.parse_order, changed(LEG, status="replaced", time_in_force="gtc",
                                         replaced_by="c0ffee00-0000-4000-8000-000000000002"))
    new = read(wire.parse_order, changed(LEG, id="c0ffee00-0000-4000-8000-000000000002",
                                         replaces=LEG["id"], replaced_by=None))
    assert (old.replaced_by, old.replaces, old.time_in_force) == (new.id, None, "gtc")
    assert (new.replaces, new.replaced_by, new.time_in_force) == (LEG["id"], None, "")
    assert unreadable(wire.parse_order, changed(LEG, replaced_by=7)).field == \
        "order.replaced_by"


def test_a_filled_order_without_filled_qty_is_unreadable_not_zero() -> None:
    assert unreadable(wire.parse_order, changed(ORDER, filled_qty=...)).field == \
        "order.filled_qty"
    assert unreadable(wire.parse_order, changed(ORDER, filled_qty=None)).field == \
        "order.filled_qty"


@pytest.mark.parametrize("name", ["id", "status", "symbol", "filled_qty"])
def test_an_order_without_a_decision_field_is_unreadable(name: str) -> None:
    assert unreadable(wire.parse_order, changed(ORDER, **{name: ...})).field == f"order.{name}"
    assert unreadable(wire.parse_order, changed(ORDER, **{name: ""})).field == f"order.{name}"


def test_a_leg_is_read_as_strictly_as_its_parent() -> None:
    broken = changed(ORDER, legs=[LEG, changed(LEG, status=...)])
    assert unreadable(wire.parse_order, broken).field == "order.legs[1].status"
    sent_nan = changed(ORDER, legs=[changed(LEG, limit_price="NaN")])
    assert unreadable(wire.parse_order, sent_nan).field == "order.legs[0].limit_price"


@pytest.mark.parametrize("legs", [None, ..., []])
def test_legs_null_absent_or_empty_are_no_legs(legs: Any) -> None:
    assert read(wire.parse_order, changed(ORDER, legs=legs)).legs == ()


def test_legs_that_are_not_a_list_are_unreadable() -> None:
    assert unreadable(wire.parse_order, changed(ORDER, legs=LEG)).field == "order.legs"


@pytest.mark.parametrize("status", ["held", "pending_review", "accepted_for_bidding", "calculated"])
def test_unknown_and_rare_statuses_are_kept_as_sent(status: str) -> None:
    assert read(wire.parse_order, changed(ORDER, status=status)).status == status


@pytest.mark.parametrize(("name", "value"), [
    ("filled_qty", "-1"), ("qty", "-2"), ("limit_price", "-150"), ("filled_avg_price", "inf"),
    ("status", 3), ("id", 61), ("symbol", ["AAPL"]), ("side", False),
    ("submitted_at", "2026-11-25T14:30:00"), ("filled_at", "yesterday"),
])
def test_an_order_field_of_the_wrong_kind_is_unreadable(name: str, value: Any) -> None:
    assert unreadable(wire.parse_order, changed(ORDER, **{name: value})).field == f"order.{name}"


def test_a_list_of_orders_names_the_order_it_cannot_read() -> None:
    error = unreadable(wire.parse_orders, [ORDER, changed(ORDER, status=...)])
    assert error.field == "orders[1].status"


# -- positions ----------------------------------------------------------------------------------


def test_positions_read_and_a_short_one_says_so() -> None:
    long, short = read(wire.parse_positions, [POSITION, changed(POSITION, qty="-3", side=...)])
    assert (long.symbol, long.qty, long.side, long.avg_entry_price) == (
        "AAPL", Decimal(5), "long", Decimal(100))
    assert (short.qty, short.side) == (Decimal(-3), "short")


@pytest.mark.parametrize("name", ["symbol", "qty"])
def test_a_position_without_symbol_or_qty_is_unreadable(name: str) -> None:
    assert unreadable(wire.parse_positions, [changed(POSITION, **{name: ...})]).field == \
        f"positions[0].{name}"


def test_what_a_position_only_shows_may_be_missing() -> None:
    (bare,) = read(wire.parse_positions, [{"symbol": "AAPL", "qty": "5"}])
    assert (bare.avg_entry_price, bare.current_price, bare.unrealized_pl) == (None, None, None)


# -- the 207 answers of cancel-all and close-all ------------------------------------------------


def test_close_all_reads_each_symbols_outcome() -> None:
    answer = [{"symbol": "AAPL", "status": 200, "body": ORDER},
              {"symbol": "MSFT", "status": 403,
               "body": {"code": 40310000, "message": "insufficient qty available"}}]
    aapl, msft = read(wire.parse_closed_positions, answer)
    assert (aapl.key, aapl.ok, aapl.order and aapl.order.id) == ("AAPL", True, ORDER["id"])
    assert (msft.key, msft.ok, msft.order) == ("MSFT", False, None)
    assert msft.error == "Alpaca 403: insufficient qty available"


def test_cancel_all_reads_each_order_with_or_without_its_body() -> None:
    answer = [{"id": "o-1", "status": 200}, {"id": "o-2", "status": 200, "body": ORDER},
              {"id": "o-3", "status": 500, "body": None}]
    first, second, third = read(wire.parse_canceled_orders, answer)
    assert (first.key, first.ok, first.order) == ("o-1", True, None)
    assert second.order is not None and second.order.status == "filled"
    assert (third.ok, third.error) == (False, "Alpaca 500: failed")


@pytest.mark.parametrize("status", ["200", 200.0, True, None, 99, 600, [200]])
def test_a_207_item_whose_status_is_not_an_integer_is_unreadable(status: Any) -> None:
    for parse, item in ((wire.parse_canceled_orders, {"id": "o-1", "status": status}),
                        (wire.parse_closed_positions, {"symbol": "AAPL", "status": status,
                                                       "body": ORDER})):
        field = unreadable(parse, [item]).field
        assert field is not None and field.endswith("[0].status")


def test_a_207_item_without_its_key_is_unreadable() -> None:
    assert unreadable(wire.parse_canceled_orders, [{"status": 200}]).field == "cancel-all[0].id"
    assert unreadable(wire.parse_closed_positions, [{"status": 403, "body": None}]).field == \
        "close-all[0].symbol"


@pytest.mark.parametrize("body", [..., None, {}, changed(ORDER, id=...), "closed"])
def test_a_closed_position_without_an_order_with_an_id_is_unreadable(body: Any) -> None:
    item = changed({"symbol": "AAPL", "status": 200}, body=body)
    error = unreadable(wire.parse_closed_positions, [item])
    assert error.field is not None and error.field.startswith("close-all[0].body")


# -- the latest trade -----------------------------------------------------------------------------


def test_the_latest_trade_price_reads_exactly_from_its_json_number() -> None:
    text = '{"symbol": "AAPL", "trade": {"t": "2022-08-17T09:53:16.845580544Z", "p": 172.6}}'
    assert read(lambda raw: wire.parse_latest_trade(raw, "AAPL"), text) == Decimal("172.6")


@pytest.mark.parametrize("trade", ['{"p": NaN}', '{"p": 0}', '{"p": -1.5}', '{"p": "1e2"}',
                                   '{"x": "V"}', "null", '"172.6"'])
def test_a_latest_trade_without_a_positive_plain_price_is_unreadable(trade: str) -> None:
    text = f'{{"symbol": "AAPL", "trade": {trade}}}'
    error = unreadable(lambda raw: wire.parse_latest_trade(raw, "AAPL"), text)
    assert error.field is not None and error.field.startswith("latest trade.trade")


def test_a_latest_trade_of_another_symbol_is_unreadable() -> None:
    text = '{"symbol": "MSFT", "trade": {"p": 400}}'
    assert unreadable(lambda raw: wire.parse_latest_trade(raw, "AAPL"), text).field == \
        "latest trade.symbol"


# -- Alpaca's error body -------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"code": 40310000, "message": "insufficient qty"}', (40310000, "insufficient qty")),
    (b'{"message": "line one\\nline two"}', (None, "line one line two")),
    (b'{"code": "x", "message": "m"}', (None, "m")),
    (b'{"code": 1}', None), (b"<html>", None), (b"null", None),
])
def test_alpacas_error_body_is_read_when_it_is_one(body: bytes, expected: Any) -> None:
    assert wire.error_body(body) == expected
