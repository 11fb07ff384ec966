"""Property tests of the strict parsers (tradectl.broker.wire), generated from Alpaca's OpenAPI
schemas with hypothesis-jsonschema: Order (with legs), Position, Account, Clock and the 207
arrays of DELETE /v2/orders and DELETE /v2/positions.

Two properties. Any answer the spec allows (it marks almost every field optional) either parses
into values that are finite, exact Decimals and timezone-aware UTC times, or raises
BrokerProtocolError: nothing else escapes. And a spec answer whose decision fields follow the
rules (plain decimal text, JSON booleans, RFC 3339 with an offset) always parses, to exactly the
values sent; with one field set to a near miss (NaN, "1_000", a leap second, ...) it is held
to the first property. The schemas are read from ../shared/alpaca/trading-api.json (skipped
with a clear reason without it, failed under CI=true); their $refs are resolved here.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.adapters.spec_check import require_spec
from tradectl.broker import Account, BrokerPosition, Clock, Order, SymbolOutcome, wire
from tradectl.errors import BrokerProtocolError

EXAMPLES = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
READABLE = settings(EXAMPLES, max_examples=100)  # the rule-following variants: a complement
NOT_VALIDATION = {"description", "example", "x-examples", "title", "deprecated"}
ARRAY_MAX = 2  # items per generated array (and legs per order): every branch, fast enough
# Fields the spec does not name, as Alpaca adds them: any scalar (nested values cost much more
# to generate; tests/adapters/test_wire.py sends nested unknown fields by hand).
UNKNOWN_FIELDS = {"type": ["string", "number", "integer", "boolean", "null"]}

# -- the spec's schemas, resolved -------------------------------------------------------------


def resolve(spec: dict, node: Any, stack: tuple[str, ...] = ()) -> Any:
    """A schema with its $refs inlined, OpenAPI's `nullable` as JSON Schema's null type, arrays
    capped, unknown fields scalar; a reference back into itself (OrderLeg.legs) becomes null,
    as Alpaca sends it."""
    if isinstance(node, list):
        return [resolve(spec, item, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name in stack:
            return {"type": "null"}
        return resolve(spec, spec["components"]["schemas"][name], (*stack, name))
    out = {key: value if key in ("enum", "required") else resolve(spec, value, stack)
           for key, value in node.items() if key not in NOT_VALIDATION and key != "nullable"}
    if out.get("type") == "array":
        out["maxItems"] = ARRAY_MAX
    if out.get("type") == "object":
        out.setdefault("additionalProperties", UNKNOWN_FIELDS)
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


ABSENT = object()  # a field left out of the answer altogether


def component(name: str, *, without: str = "") -> dict:
    """A component schema of the spec, resolved, optionally without one of its properties."""
    spec = require_spec()
    shape = copy.deepcopy(spec["components"]["schemas"][name])
    if without:
        shape["properties"].pop(without, None)
        shape["required"] = [field for field in shape.get("required", ()) if field != without]
    return resolve(spec, shape)


def json_objects(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """from_schema() of an object schema (typed for any JSON value, it draws objects here)."""
    return from_schema(schema).map(_json_object)


def _json_object(value: object) -> dict[str, Any]:
    assert isinstance(value, dict), value
    return value


def with_field(objects: st.SearchStrategy[dict[str, Any]], name: str,
               values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects whose `name` is absent, null, or drawn from `values`."""
    choices = st.one_of(st.just(ABSENT), st.none(), values)
    return st.tuples(objects, choices).map(
        lambda pair: pair[0] if pair[1] is ABSENT else {**pair[0], name: pair[1]})


@functools.cache
def answers(name: str) -> st.SearchStrategy[Any]:
    """Spec-valid answers of one schema. Each object comes from its own schema; nested ones
    (legs, 207 bodies) are drawn apart and set in place, because hypothesis-jsonschema re-reads
    a nested schema at every draw (minutes, not seconds, for arrays of orders with legs)."""
    if name == "Order":
        return with_field(answers(f"{name} without legs"), "legs",
                          st.lists(answers("OrderLeg without legs"), max_size=ARRAY_MAX))
    if name.endswith(" without legs"):
        return from_schema(component(name.split()[0], without="legs"))
    if name in ("cancel-all", "close-all"):
        # Alpaca sends each canceled order as "body" too, which the spec does not declare.
        item = "CanceledOrderResponse" if name == "cancel-all" else "PositionClosedReponse"
        items = json_objects(component(item, without="body"))
        return st.lists(with_field(items, "body", answers("Order")), max_size=ARRAY_MAX)
    return from_schema(component(name))


def _one_position(raw: Any) -> BrokerPosition:
    (position,) = wire.parse_positions([raw])
    return position


PARSERS: dict[str, Callable[[Any], Any]] = {
    "Order": wire.parse_order,
    "Position": _one_position,
    "Account": wire.parse_account,
    "legacy_clock": wire.parse_clock,
    "cancel-all": wire.parse_canceled_orders,
    "close-all": wire.parse_closed_positions,
}


def read(text: str, name: str) -> Any:
    """An answer's text through the adapter's own path: decode, then the schema's parser."""
    return PARSERS[name](wire.decode(text.encode()))


def assert_sound(value: Any) -> None:
    """Every amount a finite Decimal, every time aware and in UTC, every flag a bool."""
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            assert_sound(getattr(value, field.name))
    elif isinstance(value, list | tuple):
        for item in value:
            assert_sound(item)
    elif isinstance(value, Decimal):
        assert value.is_finite(), value
    elif isinstance(value, datetime):
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value
    else:
        assert value is None or isinstance(value, str | bool | int), repr(value)
        assert not isinstance(value, float)


# What drifting answers put in a field: random text seldom hits these, so some are planted.
NEAR_MISSES: st.SearchStrategy[object] = st.sampled_from([
    "NaN", "sNaN", "Infinity", "-Infinity", "inf", float("nan"), float("inf"), " 12.5 ", "1_000",
    "+5", "1e3", "١٢", "", "-0", 1e300, 10**40, True, "false", None, [], {},
    "2026-06-30T23:59:60Z", "2026-11-25t08:21:45z", "2026-11-25T08:21:45",
    "2026-11-25T08:21:45.123456789-04:00", "0001-01-01T00:00:00+01:00",
])


def plant(answer: Any, data: st.DataObject) -> Any:
    """The answer with one field, somewhere inside it, set to a near miss."""
    objects: list[dict] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            objects.append(node)
        for child in node.values() if isinstance(node, dict) else \
                node if isinstance(node, list) else ():
            collect(child)

    answer = copy.deepcopy(answer)
    collect(answer)
    target = data.draw(st.sampled_from(objects)) if objects else None
    if target:
        target[data.draw(st.sampled_from(sorted(target)))] = data.draw(NEAR_MISSES)
    return answer


@pytest.mark.parametrize("name", list(PARSERS))
def test_any_spec_answer_parses_soundly_or_is_a_protocol_error(name: str) -> None:
    @EXAMPLES
    @given(answers(name))
    def check(answer: Any) -> None:
        sound_or_unreadable(json.dumps(answer), name)

    check()


def sound_or_unreadable(text: str, name: str) -> None:
    try:
        value = read(text, name)
    except BrokerProtocolError as err:
        assert err.message.startswith("Alpaca sent")
        return
    assert_sound(value)


def planted(answer: Any, name: str, data: st.DataObject) -> bool:
    """For half the rule-following answers: plant a near miss and hold them to the first
    property only (these answers read but for the planted field, so a NaN let through shows)."""
    if not data.draw(st.booleans()):
        return False
    sound_or_unreadable(dumps(plant(answer, data)), name)
    return True


# -- answers whose decision fields follow the rules -----------------------------------------------

NUMBER = "\x00number:"  # a JSON number written as exactly this text (see dumps())
OFFSETS = st.sampled_from(["Z", "+00:00", "-00:00", "-04:00", "-05:00", "+05:30", "+14:00"])
STATUSES = st.sampled_from(["new", "partially_filled", "filled", "canceled", "expired",
                            "accepted", "pending_new", "held", "calculated",
                            "a_status_of_2031"])  # unknown ones are kept


def dumps(answer: Any) -> str:
    """JSON text in which NUMBER-marked strings become JSON numbers with exactly that text."""
    return re.sub(r'"\\u0000number:([^"]*)"', r"\1", json.dumps(answer))


@st.composite
def decimals(draw: st.DrawFn, *, negative: bool = True) -> tuple[Any, Decimal]:
    """(what is sent, what it means): plain decimal text as a JSON string or a JSON number."""
    sign = "-" if negative and draw(st.booleans()) else ""
    whole = str(draw(st.integers(0, 10**12)))
    places = draw(st.integers(0, 20))
    fraction = str(draw(st.integers(0, 10**places - 1))).zfill(places) if places else ""
    text = sign + whole + (f".{fraction}" if fraction else "")
    return (NUMBER + text if draw(st.booleans()) else text), Decimal(text)


@st.composite
def times(draw: st.DrawFn) -> tuple[str, datetime]:
    """(RFC 3339 text with 0-9 fraction digits and an offset, the moment it names, in UTC)."""
    offset = draw(OFFSETS)
    local = draw(st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)))
    digits = draw(st.integers(0, 9))
    nanos = f"{local.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    text = (f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:"
            f"{local.minute:02d}:{local.second:02d}" + (f".{nanos}" if digits else "") + offset)
    sign = -1 if offset.startswith("-") else 1
    shift = timedelta(0) if offset == "Z" else sign * timedelta(hours=int(offset[1:3]),
                                                                minutes=int(offset[4:6]))
    micro = int(nanos[:6].ljust(6, "0"))
    moment = local.replace(microsecond=micro, tzinfo=timezone(shift)).astimezone(UTC)
    return text, moment


def optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


@st.composite
def orders(draw: st.DrawFn, depth: int = 0) -> tuple[dict, dict]:
    """(order fields to lay over a spec-generated order, the values they must read as)."""
    sent: dict[str, Any] = {}
    meant: dict[str, Any] = {}
    sent["id"] = meant["id"] = draw(st.uuids()).hex
    sent["symbol"] = meant["symbol"] = draw(st.sampled_from(["AAPL", "MSFT", "BRK.B"]))
    sent["status"] = meant["status"] = draw(STATUSES)
    sent["filled_qty"], meant["filled_qty"] = draw(decimals(negative=False))
    for name in ("qty", "filled_avg_price", "limit_price", "stop_price"):
        pair = draw(optional(decimals(negative=False)))
        sent[name], meant[name] = pair if pair else (None, None)
    for name in ("submitted_at", "filled_at", "canceled_at"):
        pair = draw(optional(times()))
        sent[name], meant[name] = pair if pair else (None, None)
    legs = draw(st.lists(orders(depth + 1), max_size=2)) if depth == 0 else []
    sent["legs"] = [leg for leg, _ in legs] if bool(legs) or draw(st.booleans()) else None
    meant["legs"] = [values for _, values in legs]
    return sent, meant


def assert_order(order: Order, meant: dict) -> None:
    for name, value in meant.items():
        if name == "legs":
            assert len(order.legs) == len(value)
            for leg, leg_meant in zip(order.legs, value, strict=True):
                assert_order(leg, leg_meant)
        else:
            assert getattr(order, name) == value, name


def overlay(base: Any, sent: dict) -> dict:
    """A spec-generated object with the rule-following fields laid over it. Legs are laid over
    spec-generated legs too, so that their other fields stay the spec's."""
    out = dict(base) if isinstance(base, dict) else {}
    for name, value in sent.items():
        out[name] = value
    return out


@READABLE
@given(data=st.data())
def test_a_spec_order_with_readable_decision_fields_reads_exactly(data: st.DataObject) -> None:
    spec_order, spec_leg = answers("Order without legs"), answers("OrderLeg without legs")
    sent, meant = data.draw(orders())
    answer = overlay(data.draw(spec_order), sent)
    if sent["legs"]:
        answer["legs"] = [overlay(data.draw(spec_leg), leg) for leg in sent["legs"]]
    if planted(answer, "Order", data):
        return
    order = read(dumps(answer), "Order")
    assert_sound(order)
    assert_order(order, meant)


@READABLE
@given(data=st.data())
def test_a_spec_account_with_readable_decision_fields_reads_exactly(data: st.DataObject) -> None:
    answer = data.draw(answers("Account"))
    meant: dict[str, Any] = {"status": data.draw(st.sampled_from(["ACTIVE", "ONBOARDING"]))}
    answer["status"] = meant["status"]
    for name in ("equity", "last_equity"):
        answer[name], meant[name] = data.draw(decimals())
    for name in ("cash", "buying_power", "portfolio_value"):
        pair = data.draw(optional(decimals()))
        answer[name], meant[name] = pair if pair else (None, None)
    for name in ("trading_blocked", "account_blocked", "trade_suspended_by_user"):
        answer[name] = meant[name] = data.draw(optional(st.booleans()))
    for name in ("pattern_day_trader", "daytrade_count", "daytrading_buying_power"):
        if data.draw(st.booleans()):  # the PDT fields Alpaca removed in 2026
            answer.pop(name, None)
    if meant["portfolio_value"] is None:
        meant["portfolio_value"] = meant["equity"]  # documented as equal
    if planted(answer, "Account", data):
        return
    account: Account = read(dumps(answer), "Account")
    assert_sound(account)
    assert {name: getattr(account, name) for name in meant} == meant
    assert account.day_pnl == meant["equity"] - meant["last_equity"]


@READABLE
@given(data=st.data())
def test_a_spec_position_with_readable_fields_reads_exactly(data: st.DataObject) -> None:
    answer = data.draw(answers("Position"))
    answer["symbol"] = data.draw(st.sampled_from(["AAPL", "TSLA"]))
    answer["qty"], qty = data.draw(decimals())
    meant = {"symbol": answer["symbol"], "qty": qty}
    for name in ("avg_entry_price", "current_price", "market_value", "unrealized_pl"):
        pair = data.draw(optional(decimals()))
        answer[name], meant[name] = pair if pair else (None, None)
    if planted(answer, "Position", data):
        return
    position: BrokerPosition = read(dumps(answer), "Position")
    assert_sound(position)
    assert {name: getattr(position, name) for name in meant} == meant


@READABLE
@given(data=st.data())
def test_a_clock_in_any_offset_reads_as_the_same_moment_in_utc(data: st.DataObject) -> None:
    answer = data.draw(answers("legacy_clock"))
    answer["is_open"] = data.draw(st.booleans())
    meant = {"is_open": answer["is_open"]}
    for name in ("timestamp", "next_open", "next_close"):
        answer[name], meant[name] = data.draw(times())
    if planted(answer, "legacy_clock", data):
        return
    clock: Clock = read(dumps(answer), "legacy_clock")
    assert_sound(clock)
    assert dataclasses.asdict(clock) == meant


@READABLE
@given(data=st.data(), closing=st.booleans())
def test_multi_status_answers_read_item_by_item(data: st.DataObject, closing: bool) -> None:
    name, key = ("close-all", "symbol") if closing else ("cancel-all", "id")
    items = data.draw(st.lists(json_objects(component(
        "CanceledOrderResponse" if name == "cancel-all" else "PositionClosedReponse",
        without="body")), max_size=ARRAY_MAX))  # each body is laid over below
    expected: list[tuple[str, int, str | None, str | None]] = []
    for item in items:
        item[key] = data.draw(st.sampled_from(["AAPL", "MSFT", "9f0c", "TSLA"]))
        item["status"] = data.draw(st.sampled_from([200, 204, 207, 403, 404, 422, 500]))
        if 200 <= item["status"] < 300:
            sent, meant = data.draw(orders(depth=1))  # no legs
            item["body"] = sent
            expected.append((item[key], item["status"], meant["id"], None))
        else:
            item["body"] = {"code": 40310000, "message": "position close rejected"}
            expected.append((item[key], item["status"], None,
                             f"Alpaca {item['status']}: position close rejected"))
    if planted(items, name, data):
        return
    outcomes: list[SymbolOutcome] = read(dumps(items), name)
    assert_sound(outcomes)
    assert [(o.key, o.http_status, o.order and o.order.id, o.error) for o in outcomes] == expected
