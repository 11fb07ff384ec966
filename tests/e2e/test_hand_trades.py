"""Changes made by hand at Alpaca (issue 23), against the HTTP fake on both databases: after hand
trades and one `watch` tick every held share has a stop sized to what is held, a row Alpaca no
longer holds is settled from its fills, the rows plus the external part add up to the day's P&L,
and the realized P&L is Alpaca's share for share."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.adapters.fake_alpaca.client import Client, market, submit
from tests.conftest import Cli, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Event, Position


def tick(cli: Cli) -> dict[str, Any]:
    result = cli("watch", "--once", "--json")
    assert result.code == 0, result.output
    return result.json()


def open_aapl(trader: Cli, qty: str = "10") -> None:
    result = trader("open", "AAPL", "--qty", qty, "--stop", "145", "--target", "160")
    assert result.code == 0, result.output
    tick(trader)


def cancel_bracket_by_hand(fake: FakeAlpaca, api: Client) -> None:
    """The trader cancels the bracket's legs in the dashboard (one cancel takes the group)."""
    (entry,) = [o for o in fake.orders_list(nested=True) if o["order_class"] == "bracket"]
    assert api.delete(f"/v2/orders/{entry['legs'][0]['id']}").status_code == 204


def sell_by_hand(api: Client, qty: str) -> dict[str, Any]:
    return submit(api, market(qty=qty, side="sell"))


def the_row(cli: Cli) -> Position:
    (row,) = rows(cli.env["DATABASE_URL"], Position)
    return row


def oco_orders(fake: FakeAlpaca) -> list[dict[str, Any]]:
    return [o for o in fake.orders_list(nested=True) if o["order_class"] == "oco"]


def day_pnl(fake: FakeAlpaca) -> Decimal:
    account = fake.account()
    return Decimal(account["equity"]) - Decimal(account["last_equity"])


# -- 1. a restore covers exactly the shares Alpaca holds ---------------------------------------


def test_after_a_hand_sale_the_restore_covers_the_shares_left(trader: Cli, fake: FakeAlpaca
                                                               ) -> None:
    api = Client(fake)
    open_aapl(trader)
    cancel_bracket_by_hand(fake, api)
    sell_by_hand(api, "4")

    document = tick(trader)
    (oco,) = oco_orders(fake)
    assert (oco["qty"], oco["legs"][0]["qty"], oco["status"]) == ("6", "6", "new")
    (position,) = document["positions"]
    assert position["protected"] is True and position["outside_qty"] == "4"
    assert position["working_stop"] == "145.00"
    assert any("4 exited at Alpaca outside tradectl at 150" in c for c in document["changes"])
    refused = [r for r in fake.requests if r.method == "POST" and r.status != 200]
    assert refused == []  # no order Alpaca refused, so none retried

    again = tick(trader)  # nothing more is sent
    assert len(oco_orders(fake)) == 1 and again["positions"][0]["protected"] is True
    assert fake.count("POST", "/v2/orders") == 3  # the bracket, the hand sale, one OCO


# -- 2. a position Alpaca no longer holds is settled -------------------------------------------


def test_a_position_exited_by_hand_is_settled_by_watch_and_frees_its_symbol(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    trader.env["MAX_OPEN_POSITIONS"] = "1"
    api = Client(fake)
    open_aapl(trader)
    cancel_bracket_by_hand(fake, api)
    fake.set_price("AAPL", "152")
    assert api.delete("/v2/positions/AAPL").status_code == 200  # "close position" in the app

    document = tick(trader)
    assert [p["status"] for p in document["positions"]] == ["closed"]  # as this tick left it
    row = the_row(trader)
    assert (row.status, row.close_reason) == ("closed", "exited_outside_tradectl")
    assert (row.exit_price, row.realized_pl) == (Decimal(152), Decimal(20))
    assert row.realized_pl == day_pnl(fake)  # what the account made
    assert [e.kind for e in rows(trader.env["DATABASE_URL"], Event)].count("outside_exit") == 1
    reopened = trader("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")
    assert reopened.code == 0, reopened.output  # neither the symbol nor the count is taken


def test_close_settles_a_position_exited_by_hand_itself(trader: Cli, fake: FakeAlpaca) -> None:
    api = Client(fake)
    open_aapl(trader)
    cancel_bracket_by_hand(fake, api)
    sell_by_hand(api, "10")
    result = trader("close", "AAPL", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert (document["state"], document["close_reason"]) == ("closed",
                                                              "exited_outside_tradectl")
    assert document["realized_pl"] == "0.00" and document["close_order_id"] is None
    assert fake.count("DELETE", "/v2/positions") == 0  # nothing was sent


# -- 3. realized P&L is Alpaca's, share for share ---------------------------------------------


def test_a_hand_sale_then_a_close_records_the_accounts_pnl(trader: Cli, fake: FakeAlpaca
                                                            ) -> None:
    api = Client(fake)
    open_aapl(trader)
    cancel_bracket_by_hand(fake, api)
    sell_by_hand(api, "4")  # at 150: +0
    fake.set_price("AAPL", "152")
    result = trader("close", "AAPL", "--json")
    assert result.code == 0, result.output
    assert result.json()["state"] in ("closing", "closed")
    (close,) = [r for r in fake.requests if r.method == "DELETE" and r.path.startswith(
        "/v2/positions/")]
    assert close.response_json["qty"] == "6"
    tick(trader)  # records the close's fill
    row = the_row(trader)
    assert (row.status, row.exit_price, row.realized_pl) == ("closed", Decimal(152),
                                                             Decimal(12))  # 0 x 4 + 2 x 6
    assert day_pnl(fake) == Decimal(12)
    status = trader("status", "--json").json()
    assert Decimal(status["realized_pl_today"]) == Decimal(12)
    report = trader("report", "--json").json()
    assert Decimal(report["period"]["realized_pl"]) == Decimal(12)


# -- 4. shares bought by hand are external, and the figures add up -----------------------------


def test_shares_bought_by_hand_are_external_and_rows_plus_external_make_the_day(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    api = Client(fake)
    open_aapl(trader)
    submit(api, market(qty="5"))  # 5 more by hand, at 150
    fake.set_price("AAPL", "148")
    for document in (trader("status", "--json").json(), tick(trader)):
        (position,) = document["positions"]
        (external,) = document["external"]
        assert Decimal(position["unrealized_pl"]) == Decimal(-20)
        assert (external["symbol"], external["qty"], external["tracked_qty"]) == ("AAPL", "5",
                                                                                  "10")
        assert Decimal(external["unrealized_pl"]) == Decimal(-10)
        assert Decimal(position["unrealized_pl"]) + Decimal(external["unrealized_pl"]) \
            == day_pnl(fake) == Decimal(-30)
        assert position["protected"] is True  # its stop covers its 10
    assert "external" in trader("status").stdout

    assert trader("close", "AAPL", "--json").json()["state"] in ("closing", "closed")
    tick(trader)
    assert the_row(trader).realized_pl == Decimal(-20)
    (held,) = fake.positions_list()
    assert held["qty"] == "5"  # the trader's own shares stay


# -- 5. an accepted close overnight is not "unprotected" ---------------------------------------


def test_an_accepted_close_overnight_is_not_reported_unprotected(trader: Cli, fake: FakeAlpaca
                                                                 ) -> None:
    trader.env["REARM_PROTECTION"] = "false"
    open_aapl(trader, "2")
    fake.end_trading_day()  # the legs expire; nothing is restored: UNPROTECTED
    assert tick(trader)["unprotected"] == ["AAPL #1"]
    result = trader("close", "AAPL", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["state"] == "closing" and document["unprotected"] is False
    assert "UNPROTECTED" not in trader("close", "AAPL").stdout  # already closing
    (position,) = tick(trader)["positions"]
    assert position["protection"] == "closing" and position["protected"] is False


# -- what must hold: any sequence of hand trades, one tick -------------------------------------


def test_after_hand_trades_and_one_tick_the_record_follows_alpaca(trader: Cli,
                                                                  fake: FakeAlpaca) -> None:
    api = Client(fake)
    open_aapl(trader)
    cancel_bracket_by_hand(fake, api)
    sell_by_hand(api, "3")  # at 150
    fake.set_price("AAPL", "151")
    sell_by_hand(api, "2")  # at 151: +2
    submit(api, market(qty="4"))  # 4 bought back at 151: the trader's own
    fake.set_price("AAPL", "149")
    document = tick(trader)
    (position,) = document["positions"]
    (external,) = document["external"]
    held = sum(Decimal(p["qty"]) for p in fake.positions_list())
    assert position["protected"] is True
    (oco,) = oco_orders(fake)
    assert Decimal(oco["qty"]) == 5 == Decimal(held) - Decimal(external["qty"])
    row = the_row(trader)
    assert (row.outside_qty, row.outside_pl) == (Decimal(5), Decimal(2))
    assert row.outside_pl is not None
    total = Decimal(position["unrealized_pl"]) + Decimal(external["unrealized_pl"]) \
        + row.outside_pl
    assert total == day_pnl(fake)
