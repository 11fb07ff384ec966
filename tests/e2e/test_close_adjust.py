"""`tradectl close` and `tradectl adjust` against the HTTP fake on both databases: one position
exits or moves its exits while every other one keeps its stop."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import Cli, SmtpSink, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Event, Position


def tick(cli: Cli) -> dict:
    result = cli("watch", "--once", "--json")
    assert result.code == 0, result.output
    return result.json()


def open_position(trader: Cli, symbol: str, stop: str, target: str, *extra: str) -> None:
    result = trader("open", symbol, "--qty", "2", "--stop", stop, "--target", target, *extra)
    assert result.code == 0, result.output


def by_symbol(cli: Cli) -> dict[str, Position]:
    return {p.symbol: p for p in rows(cli.env["DATABASE_URL"], Position)}


def working_exits(fake: FakeAlpaca, symbol: str) -> list[dict]:
    return [o for o in fake.open_orders() if o["symbol"] == symbol]


def test_close_exits_one_position_and_the_others_keep_their_stops(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_position(trader, "AAPL", "145", "160")
    open_position(trader, "TSLA", "240", "260")
    tick(trader)
    fake.set_price("AAPL", "152.00")

    result = trader("close", "AAPL", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["state"] in ("closing", "closed")
    assert document["cancelled_orders"] == 1  # one DELETE: Alpaca cancels the rest of the group
    assert working_exits(fake, "AAPL") == []
    assert {o["type"] for o in working_exits(fake, "TSLA")} == {"stop", "limit"}
    assert [p["symbol"] for p in fake.positions_list()] == ["TSLA"]
    tick(trader)
    aapl = by_symbol(trader)["AAPL"]
    assert (aapl.status, aapl.close_reason, aapl.exit_price) == ("closed", "manual",
                                                                 Decimal(152))
    assert aapl.realized_pl == Decimal("4")  # (152 - 150) x 2
    assert by_symbol(trader)["TSLA"].status == "open"


@pytest.mark.usefixtures("fake")
def test_close_reports_like_halt(trader: Cli) -> None:
    open_position(trader, "AAPL", "145", "160")
    tick(trader)
    result = trader("close", "1")
    assert result.code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("AAPL")]
    assert result.stdout.startswith("CLOSE #1 AAPL")
    assert row.split("│")[1].strip() == "closing" and row.split("│")[2].strip() == "1"


def test_close_of_an_unknown_symbol_is_bad_input_and_sends_nothing(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_position(trader, "AAPL", "145", "160")
    fake.clear_log()
    for ref in ("NVDA", "99"):
        result = trader("close", ref)
        assert result.code == 2, result.output
        assert "no live position" in result.stderr
    assert fake.count() == 0


def test_close_is_allowed_while_trading_is_stopped(trader: Cli, fake: FakeAlpaca) -> None:
    open_position(trader, "AAPL", "145", "160")
    tick(trader)
    fake.fail_close("AAPL")
    assert trader("halt", "--reason", "test").code == 4  # legs cancelled, close refused
    assert by_symbol(trader)["AAPL"].status == "open"
    assert tick(trader)["positions"][0]["protection"] == "unprotected"  # nothing restored
    fake.fail_close("AAPL", None)

    result = trader("close", "AAPL", "--json")
    assert result.code == 0, result.output
    tick(trader)
    aapl = by_symbol(trader)["AAPL"]
    assert (aapl.status, aapl.close_reason) == ("closed", "manual")
    assert fake.positions_list() == []


def test_a_failed_close_leaves_the_position_unprotected_and_says_so(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink
) -> None:
    trader.env.update(smtp.env())
    open_position(trader, "AAPL", "145", "160")
    tick(trader)
    fake.fail_close("AAPL", 403, "position close rejected")

    result = trader("close", "AAPL")
    assert result.code == 4, result.output
    assert "UNPROTECTED" in result.stdout and "position close rejected" in result.stdout
    aapl = by_symbol(trader)["AAPL"]
    assert aapl.status == "open" and aapl.unprotected_since is not None
    assert working_exits(fake, "AAPL") == []
    tick(trader)  # the cycle is active: watch restores the stop
    assert by_symbol(trader)["AAPL"].unprotected_since is None
    assert {o["order_class"] for o in working_exits(fake, "AAPL")} == {"oco"}


def test_close_cancels_an_unfilled_entry_instead(trader: Cli, fake: FakeAlpaca) -> None:
    open_position(trader, "AAPL", "145", "160", "--entry", "148")
    result = trader("close", "AAPL", "--json")
    assert result.code == 0, result.output
    assert result.json()["state"] == "cancelled"
    assert by_symbol(trader)["AAPL"].status == "cancelled"
    assert fake.open_orders() == []


def test_adjust_moves_stop_and_target_in_place_and_the_moved_stop_fills(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_position(trader, "AAPL", "145", "160")
    tick(trader)
    before = {o["type"]: o["id"] for o in working_exits(fake, "AAPL")}

    result = trader("adjust", "AAPL", "--stop", "147", "--target", "158", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert [(leg["leg"], leg["state"]) for leg in document["legs"]] == [
        ("stop", "replaced"), ("target", "replaced")]
    assert (document["stop_loss"], document["take_profit"]) == ("147.00", "158.00")
    exits = {o["type"]: o for o in working_exits(fake, "AAPL")}
    assert (exits["stop"]["stop_price"], exits["limit"]["limit_price"]) == ("147", "158")
    assert exits["stop"]["replaces"] == before["stop"]  # replaced, not cancelled and re-sent
    assert fake.order(before["stop"])["status"] == "replaced"
    assert fake.count("DELETE") == 0
    (event,) = [e for e in rows(trader.env["DATABASE_URL"], Event)
                if e.kind == "adjusted" and "stop" in e.message]
    assert "145.00 -> 147.00" in event.message

    (position,) = tick(trader)["positions"]
    assert (position["working_stop"], position["protected"]) == ("147.00", True)
    fake.set_price("AAPL", "146.50")
    tick(trader)
    aapl = by_symbol(trader)["AAPL"]
    assert (aapl.status, aapl.close_reason, aapl.exit_price) == ("closed", "stop_loss",
                                                                 Decimal("146.5"))
    assert aapl.realized_pl == Decimal("-7")  # (146.50 - 150) x 2


def test_adjust_refuses_a_stop_above_the_market_and_sends_nothing(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_position(trader, "AAPL", "145", "160")
    tick(trader)
    fake.clear_log()
    result = trader("adjust", "AAPL", "--stop", "151")
    assert result.code == 2, result.output
    assert "--stop 151" in result.stderr and "below the last trade" in result.stderr
    assert fake.count("PATCH") == 0
    assert by_symbol(trader)["AAPL"].stop_loss == Decimal(145)


def test_adjust_moves_a_pending_entrys_held_legs(trader: Cli, fake: FakeAlpaca) -> None:
    open_position(trader, "AAPL", "145", "160", "--entry", "148")
    result = trader("adjust", "AAPL", "--stop", "144")
    assert result.code == 0, result.output
    (bracket,) = fake.open_orders(nested=True)
    stop = next(leg for leg in bracket["legs"] if leg["type"] == "stop")
    assert (stop["status"], stop["stop_price"]) == ("held", "144")
    assert by_symbol(trader)["AAPL"].stop_loss == Decimal(144)
