"""The fake Alpaca broker over real HTTP, and the spec validator that polices it."""

from __future__ import annotations

import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.adapters.fake_alpaca.client import Client, bracket, limit, market, statuses, submit
from tests.adapters.spec_check import require_spec, validate_exchange

REPO = Path(__file__).resolve().parents[3]


# ----- brackets and the fill engine -------------------------------------------------------


def test_bracket_legs_are_held_until_the_parent_fills(fake, api):
    fake.set_market_open(False)
    order = submit(api, bracket())
    assert order["order_class"] == "bracket" and order["status"] == "accepted"
    assert [(leg["type"], leg["side"], leg["status"]) for leg in order["legs"]] == [
        ("limit", "sell", "held"),
        ("stop", "sell", "held"),
    ]
    assert order["legs"][0]["limit_price"] == "160" and order["legs"][1]["stop_price"] == "140"
    assert api.get("/v2/positions").json() == []

    fake.set_market_open(True)
    assert statuses(api, order["id"]) == ("filled", ["new", "new"])
    position = api.get("/v2/positions/AAPL").json()
    assert (position["qty"], position["qty_available"], position["side"]) == ("10", "0", "long")


def test_stop_loss_triggers_on_a_price_drop_and_cancels_take_profit(fake, api):
    order = submit(api, bracket())
    fake.set_price("AAPL", "140.5")
    assert statuses(api, order["id"]) == ("filled", ["new", "new"])
    fake.set_price("AAPL", "139")
    assert statuses(api, order["id"]) == ("filled", ["canceled", "filled"])
    stop = api.get(f"/v2/orders/{order['legs'][1]['id']}").json()
    assert (stop["filled_avg_price"], stop["filled_qty"]) == ("139", "10")
    assert api.get("/v2/positions").json() == []
    account = api.get("/v2/account").json()
    assert account["cash"] == account["equity"] == "99890"  # 100000 - 1500 + 1390


def test_take_profit_fills_on_a_price_rise_and_cancels_stop(fake, api):
    order = submit(api, bracket())
    fake.set_price("AAPL", "160")
    assert statuses(api, order["id"]) == ("filled", ["filled", "canceled"])
    assert api.get("/v2/account").json()["cash"] == "100100"


@pytest.mark.usefixtures("fake")
def test_cancelling_one_leg_cancels_its_oco_sibling(api):
    order = submit(api, bracket())
    assert api.delete(f"/v2/orders/{order['legs'][0]['id']}").status_code == 204
    assert statuses(api, order["id"]) == ("filled", ["canceled", "canceled"])
    again = api.delete(f"/v2/orders/{order['legs'][0]['id']}")
    assert again.status_code == 422
    assert again.json() == {"code": 42210000, "message": 'order is already in "canceled" state'}


def test_cancelling_a_bracket_parent_cancels_its_legs(fake, api):
    fake.set_market_open(False)
    order = submit(api, bracket())
    assert api.delete(f"/v2/orders/{order['id']}").status_code == 204
    assert statuses(api, order["id"]) == ("canceled", ["canceled", "canceled"])


def test_limit_and_stop_orders_fill_when_the_price_crosses(fake, api):
    buy = submit(
        api,
        limit("AAPL", "2", price="149", tif="day"),
    )
    assert buy["status"] == "new"
    fake.set_price("AAPL", "148.5")
    filled = api.get(f"/v2/orders/{buy['id']}").json()
    assert (filled["status"], filled["filled_avg_price"]) == (
        "filled",
        "148.5",
    )  # min(limit, price)
    stop = submit(
        api,
        {
            "symbol": "AAPL",
            "qty": "2",
            "side": "sell",
            "type": "stop",
            "stop_price": "145",
            "time_in_force": "gtc",
        },
    )
    fake.set_price("AAPL", "146")
    assert api.get(f"/v2/orders/{stop['id']}").json()["status"] == "new"
    fake.set_price("AAPL", "144.9")
    assert api.get(f"/v2/orders/{stop['id']}").json()["filled_avg_price"] == "144.9"


# ----- closing positions --------------------------------------------------------------------


@pytest.mark.usefixtures("fake")
def test_plain_close_fails_while_bracket_legs_hold_the_shares(api):
    order = submit(api, bracket())
    response = api.delete("/v2/positions/AAPL")
    assert response.status_code == 403
    body = response.json()
    assert (body["code"], body["message"]) == (
        40310000,
        "insufficient qty available for order (requested: 10, available: 0)",
    )
    assert api.delete(f"/v2/orders/{order['id']}").status_code == 422  # the parent has filled
    assert api.delete(f"/v2/orders/{order['legs'][1]['id']}").status_code == 204  # and its OCO
    close = api.delete("/v2/positions/AAPL")
    assert close.status_code == 200
    assert (close.json()["side"], close.json()["qty"], close.json()["type"]) == (
        "sell",
        "10",
        "market",
    )
    assert api.get("/v2/positions").json() == []


@pytest.mark.usefixtures("fake")
def test_close_all_with_cancel_orders_flattens_the_account(api):
    submit(api, bracket())
    submit(api, bracket("MSFT", "3", tp="310", sl="290"))
    submit(
        api,
        limit("MSFT", "1", price="250", tif="gtc"),
    )
    response = api.delete("/v2/positions", params={"cancel_orders": "true"})
    assert response.status_code == 207
    entries = response.json()
    assert [(e["symbol"], e["status"], e["body"]["side"]) for e in entries] == [
        ("AAPL", 200, "sell"),
        ("MSFT", 200, "sell"),
    ]
    assert api.get("/v2/positions").json() == []
    assert api.get("/v2/orders").json() == []
    account = api.get("/v2/account").json()
    assert account["equity"] == account["cash"] == "100000"
    assert account["long_market_value"] == "0"


def test_close_all_without_cancel_reports_held_symbols(fake, api):
    submit(api, bracket())
    fake.add_position("MSFT", "4", "250")
    entries = api.delete("/v2/positions").json()
    assert [(e["symbol"], e["status"]) for e in entries] == [("AAPL", 403), ("MSFT", 200)]
    assert entries[0]["body"]["message"].startswith("insufficient qty available")
    assert [p["symbol"] for p in api.get("/v2/positions").json()] == ["AAPL"]


def test_fail_close_makes_one_symbol_fail_until_undone(fake, api):
    fake.add_position("AAPL", "5", "100")
    fake.add_position("MSFT", "2", "300")
    fake.fail_close("AAPL", 403, "trade denied due to pattern day trading protection")
    single = api.delete("/v2/positions/AAPL")
    assert single.status_code == 403
    assert single.json()["message"] == "trade denied due to pattern day trading protection"
    entries = api.delete("/v2/positions").json()
    assert [(e["symbol"], e["status"]) for e in entries] == [("AAPL", 403), ("MSFT", 200)]
    fake.fail_close("AAPL", None)
    assert api.delete("/v2/positions/AAPL").status_code == 200
    assert fake.positions_list() == []


def test_close_by_qty_and_percentage(fake, api):
    fake.add_position("AAPL", "10", "100")
    assert api.delete("/v2/positions/AAPL", params={"qty": "4"}).json()["qty"] == "4"
    assert api.delete("/v2/positions/AAPL", params={"percentage": "50"}).json()["qty"] == "3"
    assert api.get("/v2/positions/AAPL").json()["qty"] == "3"
    missing = api.get("/v2/positions/TSLA")
    assert missing.status_code == 404
    assert missing.json() == {"code": 40410000, "message": "position does not exist"}


# ----- order validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"limit_price": "150.123"},
            "sub-penny increment does not fulfill minimum pricing criteria",
        ),
        ({"type": "limit"}, "limit_price is required"),
        ({"qty": "0"}, "qty must be > 0"),
        ({"side": "hold"}, "invalid side"),
        (
            {"time_in_force": "gtc", "qty": "1.5"},
            "fractional orders must be market orders with time_in_force day",
        ),
    ],
)
def test_invalid_orders_get_422(api, body, message):
    order = {**market(), **body}
    if "limit_price" in body:
        order["type"] = "limit"
    response = api.post("/v2/orders", json=order)
    assert response.status_code == 422
    assert response.json() == {"code": 42210000, "message": message}


def test_sub_penny_allows_four_decimals_below_one_dollar(fake, api):
    fake.set_price("PENNY", "0.5")
    order = {**market("PENNY", "100"), "type": "limit", "time_in_force": "gtc"}
    assert api.post("/v2/orders", json={**order, "limit_price": "0.4999"}).status_code == 200
    rejected = api.post("/v2/orders", json={**order, "limit_price": "0.49995"})
    assert rejected.status_code == 422 and "sub-penny" in rejected.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (bracket(tp="150"), "take_profit.limit_price must be >= base_price + 0.01"),
        (bracket(sl="149.995"), "sub-penny increment does not fulfill minimum pricing criteria"),
        (bracket(sl="150"), "stop_loss.stop_price must be <= base_price - 0.01"),
        (
            bracket(side="sell", tp="160", sl="170"),
            "take_profit.limit_price must be <= base_price - 0.01",
        ),
        (
            bracket(side="sell", tp="140", sl="149.99"),
            "stop_loss.stop_price must be >= base_price + 0.01",
        ),
        (bracket(qty="1.5"), "fractional orders are not supported for bracket orders"),
    ],
)
def test_invalid_brackets_get_422(api, body, message):
    response = api.post("/v2/orders", json=body)
    assert (response.status_code, response.json()["message"]) == (422, message)


def test_limit_bracket_uses_the_limit_price_as_base(api):
    body = {**bracket(tp="131", sl="125"), "type": "limit", "limit_price": "120"}  # market: 150
    assert api.post("/v2/orders", json=body).json()["message"] == (
        "stop_loss.stop_price must be <= base_price - 0.01"
    )
    assert api.post("/v2/orders", json={**body, "stop_loss": {"stop_price": "110"}}).ok


def test_duplicate_client_order_id_unknown_asset_and_buying_power(fake, api):
    submit(api, market(client_order_id="run-1"))
    duplicate = api.post("/v2/orders", json=market(client_order_id="run-1"))
    assert duplicate.status_code == 422
    assert duplicate.json() == {"code": 40010001, "message": "client_order_id must be unique"}
    unknown = api.post("/v2/orders", json=market("XYZ"))
    assert (unknown.status_code, unknown.json()) == (
        422,
        {"code": 40010001, "message": 'asset "XYZ" not found'},
    )
    fake.set_buying_power("1000")
    poor = api.post("/v2/orders", json=market(qty="7"))
    assert (poor.status_code, poor.json()) == (
        403,
        {"code": 40310000, "message": "insufficient buying power"},
    )


# ----- account, auth, market state ------------------------------------------------------------


def test_bad_keys_get_401_and_forbidden_mode_403(fake, api):
    bad = Client(fake, secret="wrong").get("/v2/account")
    assert (bad.status_code, bad.json()) == (
        401,
        {"code": 40110000, "message": "request is not authorized"},
    )
    fake.set_forbidden(True)
    assert api.get("/v2/account").json() == {"code": 40310000, "message": "forbidden"}
    fake.set_forbidden(False)
    assert api.get("/v2/account").ok
    assert all(fake.secret_key not in repr(record) for record in fake.requests)


def test_market_closed_orders_wait_for_the_open(fake, api):
    fake.set_market_open(False)
    assert api.get("/v2/clock").json()["is_open"] is False
    order = submit(api, market())
    assert order["status"] == "accepted"
    close = api.get(f"/v2/orders/{order['id']}").json()
    assert (close["status"], close["filled_qty"], close["filled_at"]) == ("accepted", "0", None)
    assert api.get("/v2/positions").json() == []
    fake.set_market_open(True)
    assert api.get(f"/v2/orders/{order['id']}").json()["status"] == "filled"


def test_partial_fills_average_exactly(fake, api):
    fake.auto_fill = False
    order = submit(api, market(qty="10"))
    fake.partial_fill(order["id"], "4", "151")
    partial = api.get(f"/v2/orders/{order['id']}").json()
    assert (partial["status"], partial["filled_qty"], partial["filled_avg_price"]) == (
        "partially_filled",
        "4",
        "151",
    )
    assert api.get("/v2/positions/AAPL").json()["qty"] == "4"
    fake.fill(order["id"], "152")
    done = api.get(f"/v2/orders/{order['id']}").json()
    assert (done["status"], done["filled_avg_price"]) == ("filled", "151.6")
    assert api.get("/v2/account").json()["cash"] == "98484"  # 100000 - 604 - 912


def test_cash_and_equity_arithmetic_is_exact(fake, api):
    fake.set_price("F", "0.1")
    fake.set_last_equity(Decimal("99000.5"))
    submit(api, market("F", "3.3"))
    fake.set_price("F", "0.2")
    account = api.get("/v2/account").json()
    assert account["cash"] == "99999.67"
    assert account["long_market_value"] == "0.66"
    assert account["equity"] == account["portfolio_value"] == "100000.33"
    assert account["last_equity"] == "99000.5"
    position = api.get("/v2/positions/F").json()
    assert (position["cost_basis"], position["unrealized_pl"], position["unrealized_plpc"]) == (
        "0.33",
        "0.33",
        "1",
    )
    submit(api, market("F", "3.3", side="sell"))
    assert api.get("/v2/account").json()["cash"] == "100000.33"


def test_short_positions(fake, api):
    submit(api, market(qty="2", side="sell"))
    position = api.get("/v2/positions/AAPL").json()
    assert (position["side"], position["qty"], position["market_value"]) == ("short", "-2", "-300")
    fake.set_price("AAPL", "140")
    account = api.get("/v2/account").json()
    assert (account["cash"], account["short_market_value"], account["equity"]) == (
        "100300",
        "-280",
        "100020",
    )
    assert api.delete("/v2/positions/AAPL").json()["side"] == "buy"
    assert api.get("/v2/account").json()["cash"] == "100020"


# ----- listing orders ---------------------------------------------------------------------------


@pytest.mark.usefixtures("fake")
def test_order_listing_filters_and_nesting(api):
    parent = submit(api, bracket())
    resting = submit(
        api,
        limit("MSFT", "1", price="250", tif="gtc", client_order_id="x:1"),
    )
    flat = api.get("/v2/orders").json()  # open, desc, not nested
    assert [o["id"] for o in flat] == [
        resting["id"],
        parent["legs"][1]["id"],
        parent["legs"][0]["id"],
    ]
    assert all(o["legs"] is None for o in flat)
    nested = api.get("/v2/orders", params={"nested": "true", "direction": "asc"}).json()
    assert [o["id"] for o in nested] == [parent["id"], resting["id"]]
    assert [leg["status"] for leg in nested[0]["legs"]] == ["new", "new"]
    closed = api.get("/v2/orders", params={"status": "closed"}).json()
    assert [o["id"] for o in closed] == [parent["id"]]
    assert len(api.get("/v2/orders", params={"status": "all", "limit": "2"}).json()) == 2
    assert [o["symbol"] for o in api.get("/v2/orders", params={"symbols": "MSFT,TSLA"}).json()] == [
        "MSFT"
    ]
    assert api.get("/v2/orders", params={"side": "buy"}).json()[0]["id"] == resting["id"]
    found = api.get("/v2/orders:by_client_order_id", params={"client_order_id": "x:1"})
    assert found.json()["id"] == resting["id"]
    missing = api.get("/v2/orders:by_client_order_id", params={"client_order_id": "nope"})
    assert (missing.status_code, missing.json()["message"]) == (404, "order not found")
    assert api.get(f"/v2/orders/{resting['id']}").json()["client_order_id"] == "x:1"


def test_cancel_all_orders_answers_207(fake, api):
    parent = submit(api, bracket())
    response = api.delete("/v2/orders")
    assert response.status_code == 207
    assert {(e["id"], e["status"]) for e in response.json()} == {
        (leg["id"], 200) for leg in parent["legs"]
    }
    assert fake.open_orders() == []


# ----- market data --------------------------------------------------------------------------


def test_latest_trades(fake, api):
    fake.set_price("AAPL", "151.25")
    single = api.get("/v2/stocks/AAPL/trades/latest", params={"feed": "iex"}).json()
    assert single["symbol"] == "AAPL" and single["trade"]["p"] == 151.25
    multi = api.get("/v2/stocks/trades/latest", params={"symbols": "AAPL,MSFT,NOPE"}).json()
    assert {s: t["p"] for s, t in multi["trades"].items()} == {"AAPL": 151.25, "MSFT": 300}
    assert api.get("/v2/stocks/NOPE/trades/latest").status_code == 404


# ----- fault injection and concurrency -----------------------------------------------------------


def test_injected_errors_hangs_and_malformed_bodies(fake, api):
    fake.inject("GET", r"^/v2/account$", status=500)
    failed = api.get("/v2/account")
    assert (failed.status_code, failed.json()["code"]) == (500, 50010000)
    assert api.get("/v2/account").ok  # times=1 by default

    fake.inject("POST", "/v2/orders", status=429, times=2)
    limited = [api.post("/v2/orders", json=market()) for _ in range(3)]
    assert [r.status_code for r in limited] == [429, 429, 200]
    assert limited[0].headers["X-RateLimit-Remaining"] == "0"
    assert {"X-RateLimit-Limit", "X-RateLimit-Reset"} <= set(limited[0].headers)

    fake.inject(None, "/v2/positions", raw=b'{"code": 5', status=200)
    with pytest.raises(ValueError):
        api.get("/v2/positions").json()

    fake.inject("GET", "/v2/clock", hang=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get("/v2/clock", timeout=0.3)
    assert fake.requests[-1].status is None
    assert Client(fake).get("/v2/clock").ok


def test_injected_fault_after_the_broker_acted(fake, api):
    fake.inject("POST", "/v2/orders", status=504, apply=True)
    assert api.post("/v2/orders", json=market(client_order_id="retry-me")).status_code == 504
    retry = api.post("/v2/orders", json=market(client_order_id="retry-me"))
    assert retry.json()["message"] == "client_order_id must be unique"
    found = api.get("/v2/orders:by_client_order_id", params={"client_order_id": "retry-me"})
    assert found.json()["status"] == "filled"
    fake.inject("POST", "/v2/orders", hang=True, apply=True)  # taken, answer never arrives
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("/v2/orders", json=market(client_order_id="lost"), timeout=0.3)
    lost = api.get("/v2/orders:by_client_order_id", params={"client_order_id": "lost"})
    assert lost.json()["status"] == "filled"


def test_log_counts_and_latency(fake, api):
    fake.clear_log()
    fake.latency = 0.05
    api.get("/v2/account")
    api.get("/v2/orders")
    fake.latency = 0
    assert fake.count() == 2 and fake.count("GET", "/v2/orders") == 1
    assert fake.requests[1].monotonic - fake.requests[0].monotonic >= 0.05


def test_concurrent_orders_are_consistent(fake):
    def buy():
        Client(fake).post("/v2/orders", json=market(qty="1"))

    threads = [threading.Thread(target=buy) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.positions_list()[0]["qty"] == "20"
    assert fake.account()["cash"] == "97000"
    assert len({o["id"] for o in fake.orders_list()}) == 20


def test_reset_and_the_sdk_talk_to_the_fake(fake, monkeypatch):
    import alpaca_trade_api as tradeapi

    fake.reset()
    fake.set_price("AAPL", "150")
    monkeypatch.setenv("APCA_API_DATA_URL", fake.url)
    rest = tradeapi.REST(fake.api_key, fake.secret_key, base_url=fake.url, api_version="v2")
    order = rest.submit_order(
        "AAPL",
        qty=5,
        side="buy",
        type="market",
        time_in_force="gtc",
        order_class="bracket",
        take_profit={"limit_price": "160"},
        stop_loss={"stop_price": "140"},
    )
    assert len(order.legs) == 2
    assert rest.get_position("AAPL").qty == "5"
    with pytest.raises(tradeapi.rest.APIError) as error:
        rest.close_position("AAPL")
    assert error.value.status_code == 403 and error.value.code == 40310000
    assert rest.get_latest_trade("AAPL").price == 150
    assert rest.get_clock().is_open is True


def test_module_runs_in_the_foreground():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.alpaca", "--port", "0", "--price", "AAPL=150"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        headers = {
            "APCA-API-KEY-ID": "PKTESTKEY0000000000",
            "APCA-API-SECRET-KEY": "testsecret0000000000000000000000000000000",
        }
        trade = requests.get(f"{url}/v2/stocks/AAPL/trades/latest", headers=headers, timeout=5)
        assert trade.json()["trade"]["p"] == 150
    finally:
        process.terminate()
        process.wait(timeout=5)


# ----- the spec validator -----------------------------------------------------------------------


def test_every_exchange_of_a_scenario_matches_the_spec(fake, api):
    spec = require_spec()
    fake.set_market_open(False)
    api.get("/v2/clock")
    parent = submit(api, bracket(client_order_id="scenario-1"))
    api.get(f"/v2/orders/{parent['id']}", params={"nested": "true"})  # legs "held"
    fake.set_market_open(True)
    submit(
        api,
        {
            **bracket("MSFT", "2", tp="330", sl="280.5"),
            "type": "limit",
            "limit_price": "301",
            "stop_loss": {"stop_price": "280.5", "limit_price": "280"},
        },
    )
    resting = submit(
        api,
        limit("AAPL", "1", price="100", tif="day"),
    )
    fake.add_position("F", "0.5", "10")
    api.get("/v2/account")
    api.get("/v2/positions")
    api.get("/v2/positions/AAPL")
    api.get("/v2/positions/NOPE")
    for params in (
        {},
        {"status": "all", "nested": "true", "direction": "asc", "limit": "5"},
        {
            "status": "closed",
            "symbols": "AAPL,MSFT",
            "side": "buy",
            "after": "2000-01-01T00:00:00Z",
            "until": "2999-01-01T00:00:00Z",
        },
    ):
        api.get("/v2/orders", params=params)
    api.get("/v2/orders:by_client_order_id", params={"client_order_id": "scenario-1"})
    api.get("/v2/orders/00000000-0000-4000-8000-000000000000")
    api.delete(f"/v2/orders/{resting['id']}")
    api.delete(f"/v2/orders/{resting['id']}")
    api.post("/v2/orders", json=market(qty="1", limit_price="1"))
    api.post("/v2/orders", json=bracket(tp="150.001"))
    api.delete("/v2/positions/AAPL")
    api.delete("/v2/positions/F", params={"percentage": "50"})
    fake.fail_close("F")
    api.delete("/v2/positions")
    api.delete("/v2/orders")
    api.delete("/v2/positions", params={"cancel_orders": "true"})
    fake.fail_close("F", None)
    api.delete("/v2/positions/F", params={"qty": "0.25"})
    Client(fake, key="nobody").get("/v2/account")
    api.get("/v2/stocks/AAPL/trades/latest", params={"feed": "sip"})
    api.get("/v2/stocks/trades/latest", params={"symbols": "AAPL,MSFT"})

    records = fake.requests
    assert {r.status for r in records} >= {200, 204, 207, 401, 403, 404, 422}
    problems = {
        f"{r.method} {r.path} {r.status}": errors
        for r in records
        if (
            errors := validate_exchange(
                spec, r.method, r.path, r.query, r.json, r.status, r.response_json
            )
        )
    }
    assert problems == {}


def order_exchange(spec, order: object, status: int = 200) -> list[str]:
    url = "http://127.0.0.1:1/v2/orders/00000000-0000-4000-8000-000000000000"
    return validate_exchange(spec, "GET", url, {}, None, status, order)


@pytest.mark.usefixtures("fake")
def test_the_validator_catches_wrong_shapes(api):
    spec = require_spec()
    order = submit(api, bracket())
    assert order_exchange(spec, order) == []  # legs are "held": the one patched-in gap
    without_tif = {k: v for k, v in order.items() if k != "time_in_force"}
    wrong_leg = {**order, "legs": [{**order["legs"][0], "status": "waiting"}]}
    assert order_exchange(spec, {**order, "qty": 10}) == [
        "response: InvalidData at /qty: 10 is not of type 'string'"
    ]
    assert order_exchange(spec, without_tif) == [
        "response: InvalidData at /: 'time_in_force' is a required property"
    ]
    assert (
        "at /status: 'bogus' is not one of" in order_exchange(spec, {**order, "status": "bogus"})[0]
    )
    assert "at /legs/0/status: 'waiting' is not one of" in order_exchange(spec, wrong_leg)[0]
    assert order_exchange(spec, {"code": "404", "message": "x"}, 404) == [
        "response: not an Error body: '404' is not of type 'number'"
    ]

    numeric_qty = {**market(), "qty": 1}
    assert validate_exchange(spec, "POST", "/v2/orders", {}, numeric_qty, 200, order) == [
        "request: InvalidRequestBody at /qty: 1 is not of type 'string'"
    ]
    assert (
        "'weird' is not one of"
        in validate_exchange(spec, "GET", "/v2/orders", {"status": "weird"}, None, 200, [])[0]
    )
    failed_close = [{"symbol": "AAPL", "status": 403, "body": {"id": "x"}}]
    assert validate_exchange(spec, "DELETE", "/v2/positions", {}, None, 207, failed_close) != []
    canceled = [{"id": order["id"], "status": 200, "body": {**order, "qty": 3}}]
    assert validate_exchange(spec, "DELETE", "/v2/orders", {}, None, 207, canceled) == [
        "response[0].body: InvalidData at /qty: 3 is not of type 'string'"
    ]

    path = "/v2/stocks/AAPL/trades/latest"
    trade = api.get(path).json()
    assert validate_exchange(spec, "GET", path, {}, None, 200, trade) == []
    bad_trade = {**trade, "trade": {**trade["trade"], "p": "150"}}
    assert validate_exchange(spec, "GET", path, {}, None, 200, bad_trade) == [
        "response.trade.p: missing or invalid: '150'"
    ]
