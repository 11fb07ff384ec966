"""The fake Alpaca's order lifecycle over real HTTP: pending cancels, OCO exit pairs, replaces,
the end of the trading day, partial closes, and the faults tests steer (paging, rewrites).

Every exchange a test makes is checked against Alpaca's OpenAPI spec when the test ends
(the `spec_checked` fixture); the few a test breaks on purpose are exempted by name.
What each behaviour is modelled on is written in tests/fakes/alpaca/broker.py.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import requests

from tests.adapters.fake_alpaca.client import Client, bracket, limit, market, oco, statuses, submit
from tests.adapters.spec_check import load_spec, spec_path, validate_exchange

NOT_SENT = "unable to replace order, order isn't sent to exchange yet"


def already(status: str) -> dict:
    return {"code": 42210000, "message": f'order is already in "{status}" state'}


class SpecCheck:
    """Exchanges a test breaks on purpose: (method, path regex) pairs left out of the check."""

    def __init__(self) -> None:
        self.exempt_rules: list[tuple[str, re.Pattern]] = []

    def exempt(self, method: str, path_regex: str) -> None:
        self.exempt_rules.append((method, re.compile(path_regex)))

    def is_exempt(self, method: str, path: str) -> bool:
        return any(m == method and p.search(path) for m, p in self.exempt_rules)



@pytest.fixture(autouse=True)
def spec_checked(fake):
    """After the test: every exchange it made matches the spec (when the spec is at hand;
    test_spec_conformance.py fails or skips on its absence)."""
    check = SpecCheck()
    yield check
    path = spec_path()
    if path is None:
        return
    spec = load_spec(path)
    problems = {
        f"#{index} {e.method} {e.path} {e.status}": errors
        for index, e in enumerate(fake.requests)
        if e.status is not None
        and not check.is_exempt(e.method, e.path)
        and (errors := validate_exchange(
            spec, e.method, e.path, e.query, e.json, e.status, e.response_json))
    }
    assert problems == {}


def get(api: Client, order_id: str, nested: bool = False) -> dict:
    response = api.get(f"/v2/orders/{order_id}", params={"nested": str(nested).lower()})
    assert response.status_code == 200, response.text
    return response.json()


def patch(api: Client, order_id: str, body: dict) -> requests.Response:
    return api.patch(f"/v2/orders/{order_id}", json=body)


def cash(api: Client) -> str:
    return api.get("/v2/account").json()["cash"]


# ----- pending_cancel ------------------------------------------------------------------------


def test_a_pending_cancel_stays_open_until_released(fake, api):
    order = submit(api, limit(price="149"))
    fake.set_cancels_pending(True)

    assert api.delete(f"/v2/orders/{order['id']}").status_code == 204
    pending = get(api, order["id"])
    assert (pending["status"], pending["canceled_at"]) == ("pending_cancel", None)
    assert [o["id"] for o in api.get("/v2/orders").json()] == [order["id"]]  # still open
    again = api.delete(f"/v2/orders/{order['id']}")
    assert (again.status_code, again.json()) == (422, already("pending_cancel"))
    replace = patch(api, order["id"], {"limit_price": "148"})
    assert (replace.status_code, replace.json()) == (422, already("pending_cancel"))

    assert fake.release_cancels() == [order["id"]]
    canceled = get(api, order["id"])
    assert canceled["status"] == "canceled" and canceled["canceled_at"] is not None
    assert api.get("/v2/orders").json() == []
    assert fake.release_cancels() == []


def test_a_pending_cancel_can_still_fill(fake, api):
    order = submit(api, limit(price="149"))
    fake.set_cancels_pending(True)
    api.delete(f"/v2/orders/{order['id']}")

    fake.partial_fill(order["id"], "4", "149")
    partly = get(api, order["id"])
    assert (partly["status"], partly["filled_qty"]) == ("pending_cancel", "4")
    fake.set_price("AAPL", "148")  # crosses the limit: the rest fills before the cancel lands
    filled = get(api, order["id"])
    assert (filled["status"], filled["filled_qty"], filled["filled_avg_price"]) == (
        "filled", "10", "148.4")
    assert fake.release_cancels() == []
    assert api.get("/v2/positions/AAPL").json()["qty"] == "10"
    assert cash(api) == "98516"  # 100000 - 4 * 149 - 6 * 148


def test_pending_cancels_keep_bracket_legs_holding_the_shares(fake, api):
    parent = submit(api, bracket())  # filled at 150, both legs working
    leg_ids = [leg["id"] for leg in parent["legs"]]
    fake.set_cancels_pending(True)

    cancel_all = api.delete("/v2/orders")
    assert cancel_all.status_code == 207
    assert [(e["id"], e["status"], e["body"]["status"]) for e in cancel_all.json()] == [
        (leg_id, 200, "pending_cancel") for leg_id in leg_ids]
    assert api.delete("/v2/orders").json() == []  # nothing left whose cancel is not pending

    close = api.delete("/v2/positions/AAPL")
    assert close.status_code == 403
    assert close.json() == {
        "code": 40310000,
        "message": "insufficient qty available for order (requested: 10, available: 0)",
        "symbol": "AAPL", "available": "0", "existing_qty": "10", "held_for_orders": "10",
        "related_orders": leg_ids,
    }
    flatten = api.delete("/v2/positions", params={"cancel_orders": "true"})
    assert [(e["symbol"], e["status"]) for e in flatten.json()] == [("AAPL", 403)]

    assert fake.release_cancels() == leg_ids
    assert statuses(api, parent["id"]) == ("filled", ["canceled", "canceled"])
    assert api.delete("/v2/positions/AAPL").status_code == 200
    assert api.get("/v2/positions").json() == []


def test_a_pending_cancel_of_a_bracket_leg_can_still_fill_and_cancel_its_sibling(fake, api):
    parent = submit(api, bracket())
    fake.set_cancels_pending(True)
    api.delete(f"/v2/orders/{parent['legs'][0]['id']}")
    assert statuses(api, parent["id"]) == ("filled", ["pending_cancel", "pending_cancel"])

    fake.set_price("AAPL", "139")  # the stop fires before its cancel lands
    assert statuses(api, parent["id"]) == ("filled", ["canceled", "filled"])
    assert api.get("/v2/positions").json() == []
    assert cash(api) == "99890"


def test_held_legs_and_queued_orders_cancel_at_once_even_when_cancels_pend(fake, api):
    fake.set_cancels_pending(True)
    fake.set_market_open(False)
    queued = submit(api, bracket())  # accepted, legs held: Alpaca has sent nothing to a venue
    assert api.delete(f"/v2/orders/{queued['id']}").status_code == 204
    assert statuses(api, queued["id"]) == ("canceled", ["canceled", "canceled"])

    fake.set_market_open(True)
    entry = submit(api, {**bracket(), "type": "limit", "limit_price": "149"})  # routed, unfilled
    api.delete(f"/v2/orders/{entry['id']}")
    assert statuses(api, entry["id"]) == ("pending_cancel", ["canceled", "canceled"])
    fake.set_price("AAPL", "148.5")  # the entry fills before its cancel lands: no legs left
    assert statuses(api, entry["id"]) == ("filled", ["canceled", "canceled"])
    position = api.get("/v2/positions/AAPL").json()
    assert (position["qty"], position["qty_available"]) == ("10", "10")  # unprotected


@pytest.mark.usefixtures("fake")
def test_cancel_orders_true_cancels_orders_in_symbols_without_a_position(api):
    waiting = submit(api, limit("MSFT", "1", price="250"))
    submit(api, bracket())
    flatten = api.delete("/v2/positions", params={"cancel_orders": "true"})
    assert [(e["symbol"], e["status"]) for e in flatten.json()] == [("AAPL", 200)]
    assert get(api, waiting["id"])["status"] == "canceled"
    assert api.get("/v2/orders").json() == []
    assert api.get("/v2/positions").json() == []


# ----- OCO exit pairs --------------------------------------------------------------------------


def test_an_oco_pair_exits_a_position_at_the_take_profit(fake, api):
    fake.add_position("AAPL", "10", "150")
    pair = submit(api, oco(sl="140", sl_limit="139.5"))
    assert (pair["order_class"], pair["type"], pair["side"], pair["status"]) == (
        "oco", "limit", "sell", "new")
    assert (pair["limit_price"], pair["stop_price"], pair["position_intent"]) == (
        "160", None, "sell_to_close")
    [stop] = pair["legs"]
    assert (stop["order_class"], stop["type"], stop["status"]) == ("oco", "stop_limit", "new")
    assert (stop["stop_price"], stop["limit_price"], stop["qty"]) == ("140", "139.5", "10")
    assert api.get("/v2/positions/AAPL").json()["qty_available"] == "0"  # held once, not twice
    assert {o["id"] for o in api.get("/v2/orders").json()} == {pair["id"], stop["id"]}
    nested = api.get("/v2/orders", params={"nested": "true"}).json()
    assert [(o["id"], [leg["id"] for leg in o["legs"]]) for o in nested] == [
        (pair["id"], [stop["id"]])]

    fake.set_price("AAPL", "160")
    assert statuses(api, pair["id"]) == ("filled", ["canceled"])
    assert api.get("/v2/positions").json() == []
    assert cash(api) == "101600"


def test_an_oco_stop_fills_and_cancels_the_take_profit(fake, api):
    fake.add_position("AAPL", "10", "150")
    pair = submit(api, oco())
    fake.set_price("AAPL", "139")
    assert statuses(api, pair["id"]) == ("canceled", ["filled"])
    assert get(api, pair["legs"][0]["id"])["filled_avg_price"] == "139"
    assert cash(api) == "101390"


def test_an_oco_pair_covers_a_short_position(fake, api):
    fake.add_position("AAPL", "-10", "150")
    pair = submit(api, oco(side="buy", tp="140", sl="160"))
    assert pair["position_intent"] == "buy_to_close"
    fake.set_price("AAPL", "161")
    assert statuses(api, pair["id"]) == ("canceled", ["filled"])
    assert api.get("/v2/positions").json() == []
    assert cash(api) == "98390"


def test_a_partly_filled_take_profit_shrinks_the_stop_to_what_is_left(fake, api):
    fake.add_position("AAPL", "10", "150")
    pair = submit(api, oco())
    fake.partial_fill(pair["id"], "4", "160")
    assert get(api, pair["legs"][0]["id"])["qty"] == "6"
    position = api.get("/v2/positions/AAPL").json()
    assert (position["qty"], position["qty_available"]) == ("6", "0")
    fake.set_price("AAPL", "139")
    assert statuses(api, pair["id"]) == ("canceled", ["filled"])
    assert api.get("/v2/positions").json() == []  # sold 4 + 6, never short
    assert cash(api) == "101474"  # 100000 + 640 + 834


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (oco(side="buy", tp="140", sl="160"), 422, "oco orders must be exit orders"),
        (oco(qty="11"), 403, "insufficient qty available for order (requested: 11, available: 10)"),
        (oco(type="market"), 422, "oco orders must be limit orders"),
        (oco(tp="160", sl="160"), 422, "stop_loss.stop_price must be <= base_price - 0.01"),
        (oco(sl="150"), 422, "stop_loss.stop_price must be <= base_price - 0.01"),  # market: 150
        (oco(sl_limit="139.999"), 422,
         "sub-penny increment does not fulfill minimum pricing criteria"),
        ({k: v for k, v in oco().items() if k != "take_profit"}, 422,
         "oco orders require take_profit.limit_price"),
        ({**oco(), "stop_loss": {"limit_price": "139"}}, 422,
         "oco orders require stop_loss.stop_price"),
        (oco(qty="2.5"), 422, "fractional orders are not supported for oco orders"),
        (oco(time_in_force="ioc"), 422, "time_in_force ioc is not supported by the fake"),
    ],
)
def test_oco_refusals(fake, api, body, status, message):
    fake.add_position("AAPL", "10", "150")
    response = api.post("/v2/orders", json=body)
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert api.get("/v2/orders").json() == []


def test_an_oco_needs_a_position_and_its_unheld_shares(fake, api):
    refused = api.post("/v2/orders", json=oco())
    assert refused.json() == {"code": 42210000, "message": "oco orders must be exit orders"}
    fake.add_position("AAPL", "10", "150")
    first = submit(api, oco(qty="6", time_in_force="day"))
    second = api.post("/v2/orders", json=oco(qty="5"))
    assert second.status_code == 403
    assert second.json()["message"] == (
        "insufficient qty available for order (requested: 5, available: 4)")
    assert second.json()["held_for_orders"] == "6"  # the pair holds its shares once
    assert second.json()["related_orders"] == [first["id"], first["legs"][0]["id"]]
    assert submit(api, oco(qty="4"))["qty"] == "4"
    assert api.delete("/v2/positions/AAPL").status_code == 403


def test_brackets_are_entry_orders_only(fake, api):
    fake.add_position("AAPL", "10", "150")
    refused = api.post("/v2/orders", json=bracket(side="sell", tp="140", sl="160"))
    assert refused.json() == {"code": 42210000, "message": "bracket orders must be entry orders"}
    adding = submit(api, bracket(qty="2"))  # adding to the long is an entry
    assert statuses(api, adding["id"]) == ("filled", ["new", "new"])
    assert api.get("/v2/positions/AAPL").json()["qty"] == "12"


# ----- replace (PATCH /v2/orders/{order_id}) ------------------------------------------------------


def test_replacing_a_limit_order_makes_a_new_order(fake, api):
    old = submit(api, limit(price="149", client_order_id="entry-1"))
    response = patch(api, old["id"], {"limit_price": "148", "qty": "5"})
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["id"] != old["id"] and new["replaces"] == old["id"]
    assert new["client_order_id"] not in ("entry-1", old["id"])
    assert (new["qty"], new["limit_price"], new["status"], new["time_in_force"]) == (
        "5", "148", "new", "gtc")
    assert (new["side"], new["type"], new["order_class"]) == ("buy", "limit", "")
    replaced = get(api, old["id"])
    assert (replaced["status"], replaced["replaced_by"]) == ("replaced", new["id"])
    assert replaced["replaced_at"] is not None and replaced["replaces"] is None
    assert [o["id"] for o in api.get("/v2/orders").json()] == [new["id"]]

    newer = patch(api, new["id"], {"time_in_force": "day", "client_order_id": "entry-1b"})
    assert (newer.json()["client_order_id"], newer.json()["time_in_force"]) == ("entry-1b", "day")
    fake.set_price("AAPL", "147")
    filled = get(api, newer.json()["id"])
    assert (filled["status"], filled["filled_qty"], filled["filled_avg_price"]) == (
        "filled", "5", "147")


def test_a_replaced_stop_leg_stays_in_its_bracket(fake, api):
    parent = submit(api, bracket())
    take_profit, stop = parent["legs"]
    new_stop = patch(api, stop["id"], {"stop_price": "145"}).json()
    assert (new_stop["stop_price"], new_stop["order_class"], new_stop["status"]) == (
        "145", "bracket", "new")
    assert [leg["id"] for leg in get(api, parent["id"], nested=True)["legs"]] == [
        take_profit["id"], new_stop["id"]]
    assert api.get("/v2/positions/AAPL").json()["qty_available"] == "0"

    fake.set_price("AAPL", "144.5")
    assert statuses(api, parent["id"]) == ("filled", ["canceled", "filled"])
    assert get(api, stop["id"])["status"] == "replaced"
    assert api.get("/v2/positions").json() == []
    assert cash(api) == "99945"


@pytest.mark.usefixtures("fake")
def test_a_marketable_take_profit_replace_exits_at_once(api):
    """The forum's way to exit a bracket without breaking it (t/bracket-order-closing-positions)."""
    parent = submit(api, bracket())
    new = patch(api, parent["legs"][0]["id"], {"limit_price": "149"}).json()
    assert new["status"] == "new"  # the answer is the order as accepted
    assert statuses(api, parent["id"]) == ("filled", ["filled", "canceled"])
    assert get(api, new["id"])["filled_avg_price"] == "150"
    assert cash(api) == "100000"


def test_held_legs_can_be_replaced_before_the_entry_fills(fake, api):
    parent = submit(api, {**bracket(), "type": "limit", "limit_price": "149"})
    take_profit = patch(api, parent["legs"][0]["id"], {"limit_price": "165"}).json()
    stop = patch(api, parent["legs"][1]["id"], {"stop_price": "138"}).json()
    assert (take_profit["status"], stop["status"]) == ("held", "held")
    nested = get(api, parent["id"], nested=True)
    assert [(leg["id"], leg["status"]) for leg in nested["legs"]] == [
        (take_profit["id"], "held"), (stop["id"], "held")]

    fake.set_price("AAPL", "148")
    assert statuses(api, parent["id"]) == ("filled", ["new", "new"])
    fake.set_price("AAPL", "165")
    assert statuses(api, parent["id"]) == ("filled", ["filled", "canceled"])
    assert cash(api) == "100170"  # 100000 - 1480 + 1650


def test_replacing_a_bracket_entry_moves_the_legs_to_the_new_entry(fake, api):
    parent = submit(api, {**bracket(), "type": "limit", "limit_price": "149"})
    new = patch(api, parent["id"], {"limit_price": "148.5"}).json()
    assert [leg["id"] for leg in new["legs"]] == [leg["id"] for leg in parent["legs"]]
    assert get(api, parent["id"], nested=True)["legs"] is None
    fake.set_price("AAPL", "148")
    assert statuses(api, new["id"]) == ("filled", ["new", "new"])


def test_a_replaced_oco_order_keeps_its_pair(fake, api):
    fake.add_position("AAPL", "10", "150")
    pair = submit(api, oco())
    new_parent = patch(api, pair["id"], {"limit_price": "158"}).json()
    assert [leg["id"] for leg in new_parent["legs"]] == [pair["legs"][0]["id"]]
    new_stop = patch(api, pair["legs"][0]["id"], {"stop_price": "141"}).json()
    nested = api.get("/v2/orders", params={"nested": "true"}).json()
    assert [(o["id"], [leg["id"] for leg in o["legs"]]) for o in nested] == [
        (new_parent["id"], [new_stop["id"]])]
    fake.set_price("AAPL", "158")
    assert statuses(api, new_parent["id"]) == ("filled", ["canceled"])
    assert cash(api) == "101580"


def test_a_replace_after_a_partial_fill_keeps_the_original_qty(fake, api):
    """alpacahq/Alpaca-API#165: the new order gets the old qty, not what was left."""
    old = submit(api, limit(price="149"))
    fake.partial_fill(old["id"], "4", "149")
    new = patch(api, old["id"], {"limit_price": "148"}).json()
    assert (new["qty"], new["filled_qty"]) == ("10", "0")
    replaced = get(api, old["id"])
    assert (replaced["status"], replaced["filled_qty"]) == ("replaced", "4")
    assert api.get("/v2/positions/AAPL").json()["qty"] == "4"


def test_replace_refusals(fake, api):
    filled = submit(api, market(qty="1"))
    assert patch(api, filled["id"], {"qty": "2"}).json() == already("filled")
    canceled = submit(api, limit(price="140"))
    api.delete(f"/v2/orders/{canceled['id']}")
    assert patch(api, canceled["id"], {"qty": "2"}).json() == already("canceled")
    old = submit(api, limit(price="149"))
    patch(api, old["id"], {"limit_price": "148"})
    refused = patch(api, old["id"], {"limit_price": "147"})
    assert (refused.status_code, refused.json()) == (422, already("replaced"))

    waiting = submit(api, limit(price="130", client_order_id="taken"))
    for body, message in [
        ({}, "order parameters are not changed"),
        ({"limit_price": "130", "time_in_force": "gtc"}, "order parameters are not changed"),
        ({"stop_price": "125"}, "limit orders must not have stop_price"),
        ({"limit_price": "129.999"},
         "sub-penny increment does not fulfill minimum pricing criteria"),
        ({"qty": "1.5"}, "qty must be a whole number of shares when replacing"),
        ({"qty": "0"}, "qty must be > 0"),
        ({"trail": "1"}, "trail can only be replaced on trailing_stop orders"),
        ({"time_in_force": "ioc"}, "time_in_force ioc is not supported by the fake"),
    ]:
        response = patch(api, waiting["id"], body)
        assert (response.status_code, response.json()["message"]) == (422, message), body
    duplicate = patch(api, waiting["id"], {"qty": "2", "client_order_id": "taken"})
    assert duplicate.json() == {"code": 40010001, "message": "client_order_id must be unique"}
    missing = patch(api, "00000000-0000-4000-8000-000000000000", {"qty": "2"})
    assert (missing.status_code, missing.json()["message"]) == (404, "order not found")

    fake.set_market_open(False)
    queued = submit(api, limit(price="140"))
    assert patch(api, queued["id"], {"qty": "2"}).json() == {"code": 42210000, "message": NOT_SENT}
    assert get(api, queued["id"])["status"] == "accepted"  # nothing was replaced


@pytest.mark.parametrize("status", ["accepted", "pending_new", "pending_cancel",
                                    "pending_replace"])
def test_no_replace_while_an_order_is_in_a_passing_status(fake, api, status):
    """The spec (patchOrderByOrderId): "Order cannot be replaced when the status is
    `accepted`, `pending_new`, `pending_cancel` or `pending_replace`"."""
    if status == "accepted":
        fake.set_market_open(False)
    waiting = submit(api, limit(price="140"))
    if status == "pending_cancel":
        fake.set_cancels_pending(True)
        api.delete(f"/v2/orders/{waiting['id']}")
    elif status != "accepted":
        fake.hold_status(waiting["id"], status)
    assert get(api, waiting["id"])["status"] == status
    refused = patch(api, waiting["id"], {"limit_price": "141"})
    message = NOT_SENT if status in ("accepted", "pending_new") else (
        f'order is already in "{status}" state')
    assert (refused.status_code, refused.json()) == (422, {"code": 42210000,
                                                           "message": message})
    assert get(api, waiting["id"])["status"] == status  # nothing was replaced
    assert len(fake.orders_list()) == 1


def test_a_replaced_exit_cannot_sell_more_than_the_position(fake, api):
    fake.add_position("AAPL", "10", "150")
    exit_order = submit(api, limit(side="sell", price="160"))
    too_many = patch(api, exit_order["id"], {"qty": "12"})
    assert too_many.status_code == 403
    assert too_many.json()["message"] == (
        "insufficient qty available for order (requested: 12, available: 10)")
    assert patch(api, exit_order["id"], {"qty": "8"}).json()["qty"] == "8"
    assert api.get("/v2/positions/AAPL").json()["qty_available"] == "2"


# ----- the end of the trading day --------------------------------------------------------------


def test_the_close_expires_day_orders_and_rolls_the_day_over(fake, api):
    fake.set_price("TSLA", "250")
    day_limit = submit(api, limit("MSFT", "1", price="250", tif="day"))
    gtc_limit = submit(api, limit("MSFT", "1", price="251"))
    day_bracket = submit(api, bracket(  # filled, legs working; their own tif is ignored
        time_in_force="day", take_profit={"limit_price": "160", "time_in_force": "gtc"}))
    assert {leg["time_in_force"] for leg in day_bracket["legs"]} == {"day"}
    gtc_bracket = submit(api, bracket("TSLA", "2", tp="260", sl="240"))
    fake.add_position("NVDA", "5", "100")
    day_oco = submit(api, oco("NVDA", "5", tp="110", sl="90", time_in_force="day"))
    pending = submit(api, limit("MSFT", "1", price="240", tif="day"))
    fake.set_cancels_pending(True)
    api.delete(f"/v2/orders/{pending['id']}")
    fake.set_price("AAPL", "155")
    equity = api.get("/v2/account").json()["equity"]
    assert api.get("/v2/account").json()["last_equity"] == "100000"

    expired = fake.end_trading_day()

    assert expired == [
        day_limit["id"], *[leg["id"] for leg in day_bracket["legs"]],
        day_oco["id"], day_oco["legs"][0]["id"], pending["id"]]
    for order_id in expired:
        order = get(api, order_id)
        assert order["status"] == "expired" and order["expired_at"] is not None
    assert get(api, gtc_limit["id"])["status"] == "new"
    assert statuses(api, gtc_bracket["id"]) == ("filled", ["new", "new"])
    assert api.get("/v2/clock").json()["is_open"] is False
    account = api.get("/v2/account").json()
    assert account["last_equity"] == account["equity"] == equity
    aapl = api.get("/v2/positions/AAPL").json()
    assert (aapl["lastday_price"], aapl["unrealized_intraday_pl"], aapl["qty_available"]) == (
        "155", "0", "10")  # the expired legs no longer hold the shares

    fake.start_trading_day()
    assert api.get("/v2/clock").json()["is_open"] is True
    assert [o["id"] for o in fake.open_orders()] == [
        gtc_limit["id"], *[leg["id"] for leg in gtc_bracket["legs"]]]


def test_orders_queued_after_the_close_wait_for_the_next_session(fake, api):
    assert fake.end_trading_day() == []
    queued = submit(api, market(qty="2"))
    entry = submit(api, bracket("MSFT", "1", tp="310", sl="290", time_in_force="day"))
    assert (queued["status"], entry["status"]) == ("accepted", "accepted")
    assert fake.end_trading_day() == []  # a second close (a weekend) expires none of them
    fake.start_trading_day()
    assert get(api, queued["id"])["status"] == "filled"
    assert statuses(api, entry["id"]) == ("filled", ["new", "new"])


# ----- a bracket entry that fills in part --------------------------------------------------------


def test_a_partly_filled_entry_that_expires_leaves_the_position_unprotected(fake, api):
    fake.auto_fill = False
    parent = submit(api, bracket())
    fake.partial_fill(parent["id"], "4")
    assert statuses(api, parent["id"]) == ("partially_filled", ["held", "held"])
    fake.expire(parent["id"])
    expired = get(api, parent["id"])
    assert (expired["status"], expired["filled_qty"]) == ("expired", "4")
    assert expired["expired_at"] is not None
    assert statuses(api, parent["id"]) == ("expired", ["canceled", "canceled"])
    position = api.get("/v2/positions/AAPL").json()
    assert (position["qty"], position["qty_available"]) == ("4", "4")
    assert cash(api) == "99400"


def test_a_partly_filled_entry_canceled_over_the_api_takes_its_legs_along(fake, api):
    fake.auto_fill = False
    parent = submit(api, bracket())
    fake.partial_fill(parent["id"], "4", "149.5")
    assert api.delete(f"/v2/orders/{parent['id']}").status_code == 204
    assert statuses(api, parent["id"]) == ("canceled", ["canceled", "canceled"])
    assert api.get("/v2/positions/AAPL").json()["qty"] == "4"


def test_a_partly_filled_day_entry_expires_with_its_legs_at_the_close(fake, api):
    fake.auto_fill = False
    parent = submit(api, bracket(time_in_force="day"))
    fake.partial_fill(parent["id"], "4")
    fake.end_trading_day()
    assert statuses(api, parent["id"]) == ("expired", ["expired", "expired"])
    assert api.get("/v2/positions/AAPL").json()["qty_available"] == "4"


# ----- partial closes (DELETE /v2/positions/{symbol}?qty|percentage) ------------------------------


def test_partial_closes_by_qty_and_percentage(fake, api):
    fake.add_position("AAPL", "10", "100")
    close = api.delete("/v2/positions/AAPL", params={"qty": "4"}).json()
    assert (close["qty"], close["side"], close["type"]) == ("4", "sell", "market")
    assert api.get("/v2/positions/AAPL").json()["qty"] == "6"

    beyond = api.delete("/v2/positions/AAPL", params={"qty": "7"})
    assert beyond.status_code == 403
    assert beyond.json() == {
        "code": 40310000,
        "message": "insufficient qty available for order (requested: 7, available: 6)",
        "symbol": "AAPL", "available": "6", "existing_qty": "6", "held_for_orders": "0",
        "related_orders": [],
    }
    assert api.delete("/v2/positions/AAPL", params={"percentage": "50"}).json()["qty"] == "3"

    pair = submit(api, oco(qty="2"))
    held = api.delete("/v2/positions/AAPL", params={"qty": "2"})
    assert held.json()["message"] == (
        "insufficient qty available for order (requested: 2, available: 1)")
    assert held.json()["related_orders"] == [pair["id"], pair["legs"][0]["id"]]
    assert api.delete("/v2/positions/AAPL", params={"qty": "1"}).status_code == 200
    everything = api.delete("/v2/positions/AAPL", params={"percentage": "100"})
    assert everything.json()["message"] == (
        "insufficient qty available for order (requested: 2, available: 0)")
    for params, message in [
        ({"qty": "1", "percentage": "10"}, "qty and percentage cannot be used together"),
        ({"percentage": "101"}, "percentage must be between 0 and 100"),
        ({"qty": "0"}, "qty must be > 0"),
    ]:
        response = api.delete("/v2/positions/AAPL", params=params)
        assert (response.status_code, response.json()["message"]) == (422, message)
    assert api.get("/v2/positions/AAPL").json()["qty"] == "2"
    assert Decimal(cash(api)) == 100000 + 8 * 150


# ----- faults: broken paging, rewritten answers ---------------------------------------------------


def test_ignore_paging_answers_the_newest_page_again(fake, api):
    ids = [submit(api, limit(price=price))["id"] for price in ("140", "141", "142")]
    first = api.get("/v2/orders", params={"limit": "1"}).json()
    assert [o["id"] for o in first] == [ids[2]]
    fake.ignore_paging(True)
    again = api.get("/v2/orders", params={"limit": "1", "before_order_id": ids[2]}).json()
    assert [o["id"] for o in again] == [ids[2]]
    oldest = api.get("/v2/orders", params={"limit": "1", "direction": "asc",
                                           "after_order_id": ids[0]}).json()
    assert [o["id"] for o in oldest] == [ids[0]]
    fake.ignore_paging(False)
    second = api.get("/v2/orders", params={"limit": "1", "before_order_id": ids[2]}).json()
    assert [o["id"] for o in second] == [ids[1]]


def test_rewrite_edits_what_the_fake_answers(fake, api, spec_checked):
    spec_checked.exempt("GET", r"^/v2/(account|clock|orders/)")
    fake.rewrite("GET", r"^/v2/account$",
                 lambda account: {k: v for k, v in account.items() if k != "equity"}, times=1)
    assert "equity" not in api.get("/v2/account").json()
    assert api.get("/v2/account").json()["equity"] == "100000"  # times=1 is used up

    fake.rewrite("GET", r"^/v2/account$", lambda account: {**account, "equity": "NaN"})
    fake.rewrite("GET", r"^/v2/account$", lambda account: {**account, "cash": account["equity"]})
    assert [api.get("/v2/account").json()[k] for k in ("equity", "cash")] == ["NaN", "NaN"]
    fake.inject("GET", r"^/v2/account$", 503)  # an injected fault answers instead
    assert api.get("/v2/account").json() == {"code": 50310000, "message": "service unavailable"}

    leap = "2026-12-31T23:59:60Z"
    fake.rewrite("GET", r"^/v2/clock$", lambda clock: {**clock, "timestamp": leap})
    assert api.get("/v2/clock").json()["timestamp"] == leap

    parent = submit(api, bracket())
    fake.rewrite("GET", r"^/v2/orders/", lambda order: {**order, "legs": None})
    assert get(api, parent["id"], nested=True)["legs"] is None
    assert len(fake.order(parent["id"], nested=True)["legs"]) == 2  # the state is untouched

    seen = []
    fake.rewrite("DELETE", r"^/v2/orders/", lambda payload: seen.append(payload))
    assert api.delete(f"/v2/orders/{parent['legs'][0]['id']}").status_code == 204
    assert seen == [None]  # an empty answer is None; the cancel happened all the same
    assert statuses(api, parent["id"]) == ("filled", [])  # legs: null, as rewritten

    fake.rewrite("POST", r"^/v2/orders$", lambda order: {**order, "status": "accepted"})
    answer = submit(api, market("MSFT", "1"))
    assert answer["status"] == "accepted"
    assert fake.order(answer["id"])["status"] == "filled"

    fake.rewrite("GET", r"^/v2/positions$", lambda positions: positions[5])
    broken = api.get("/v2/positions")
    assert broken.status_code == 500
    assert broken.json()["message"].startswith("fake_alpaca rewrite error: IndexError")

    fake.clear_faults()
    assert api.get("/v2/account").json()["equity"] != "NaN"
    assert api.get("/v2/positions").status_code == 200
