"""Every held share has a working stop (issue 13), against the HTTP fake on both databases: legs
that expire overnight are restored by one OCO, a refused restore is UNPROTECTED everywhere with
one alert, a gap through the stop closes at market, a cancelled leg and a partly filled entry
are covered again."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Cli, SmtpSink, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Event, Position


def tick(cli: Cli, code: int = 0) -> dict:
    result = cli("watch", "--once", "--json")
    assert result.code == code, result.output
    return result.json()


def open_aapl(trader: Cli, *extra: str) -> None:
    result = trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160", *extra)
    assert result.code == 0, result.output


def legs_expired(trader: Cli, fake: FakeAlpaca) -> None:
    """An open AAPL (2 at 150, stop 145, target 160) whose day bracket's legs expired at the
    close."""
    open_aapl(trader)
    tick(trader)
    fake.end_trading_day()


def oco_orders(fake: FakeAlpaca) -> list[dict]:
    return [o for o in fake.orders_list(nested=True) if o["order_class"] == "oco"]


def position_row(cli: Cli) -> Position:
    (row,) = rows(cli.env["DATABASE_URL"], Position)
    return row


def events(cli: Cli, kind: str) -> list[Event]:
    return [e for e in rows(cli.env["DATABASE_URL"], Event) if e.kind == kind]


def test_legs_that_expire_overnight_are_restored_by_one_oco(trader: Cli, fake: FakeAlpaca) -> None:
    open_aapl(trader)
    (position,) = tick(trader)["positions"]
    assert position["protected"] is True and position["working_stop"] == "145.00"
    fake.end_trading_day()  # the day bracket's legs expire at the close

    document = tick(trader)
    (position,) = document["positions"]
    (oco,) = oco_orders(fake)
    assert (oco["side"], oco["qty"], oco["time_in_force"], oco["limit_price"]) == (
        "sell", "2", "gtc", "160")
    assert oco["legs"][0]["stop_price"] == "145" and oco["legs"][0]["type"] == "stop"
    assert position["protected"] is True
    assert (position["working_stop"], position["working_target"]) == ("145.00", "160.00")
    assert position["target_order_id"] == oco["id"]
    assert position["stop_order_id"] == oco["legs"][0]["id"]
    assert any("protection restored" in c for c in document["changes"])

    again = tick(trader)  # a second tick adds nothing
    assert len(oco_orders(fake)) == 1 and again["positions"][0]["protected"] is True

    fake.start_trading_day()
    fake.set_price("AAPL", "144.00")  # the restored stop fills
    tick(trader)
    row = position_row(trader)
    assert (row.status, row.close_reason, row.exit_price) == ("closed", "stop_loss", Decimal(144))
    assert row.realized_pl == Decimal("-12")  # (144 - 150) x 2


def test_a_refused_restore_is_unprotected_everywhere_with_one_alert(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink
) -> None:
    trader.env.update(smtp.env())
    legs_expired(trader, fake)
    fake.inject("POST", r"^/v2/orders$", 403, body={"code": 40310000,
                                                    "message": "account is restricted"})
    document = tick(trader, code=4)
    (position,) = document["positions"]
    assert position["protected"] is False and position["protection"] == "unprotected"
    assert "account is restricted" in position["protection_error"]
    assert document["unprotected"] == [f"AAPL #{position['id']}"]
    assert oco_orders(fake) == []
    (mail,) = smtp.messages
    assert mail["Subject"].startswith("UNPROTECTED - AAPL")

    line = trader("watch", "--once")
    assert "UNPROTECTED: AAPL" in line.stdout
    status = trader("status", "--json").json()
    assert status["positions"][0]["protected"] is False
    human = trader("status")
    assert "UNPROTECTED" in human.stdout
    assert len(smtp.messages) == 1  # one alert per gap
    assert len(events(trader, "unprotected")) == 1


def test_a_gap_through_the_stop_closes_at_market(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink
) -> None:
    trader.env.update(smtp.env())
    legs_expired(trader, fake)
    fake.set_price("AAPL", "140.00")  # after hours, below the stop
    fake.start_trading_day()  # opens below the stop: nothing protects the shares

    document = tick(trader)
    assert any("gapped through the stop" in c for c in document["changes"])
    assert position_row(trader).status == "closing"  # the close order as Alpaca accepted it
    tick(trader)  # its fill
    row = position_row(trader)
    assert (row.status, row.close_reason, row.exit_price) == ("closed", "stop_loss", Decimal(140))
    assert row.realized_pl == Decimal("-20")
    assert oco_orders(fake) == [] and fake.positions_list() == []
    assert "gapped through the stop" in events(trader, "gapped_through_stop")[0].message
    assert any(m["Subject"].startswith("GAPPED THROUGH THE STOP") for m in smtp.messages)


def test_a_leg_cancelled_outside_tradectl_is_restored(trader: Cli, fake: FakeAlpaca) -> None:
    open_aapl(trader)
    tick(trader)
    (bracket,) = fake.open_orders(nested=True)
    stop_leg = next(leg for leg in bracket["legs"] if leg["type"] == "stop")
    fake.clear_log()
    import requests

    requests.delete(f"{fake.url}/v2/orders/{stop_leg['id']}", headers={
        "APCA-API-KEY-ID": fake.api_key, "APCA-API-SECRET-KEY": fake.secret_key}, timeout=5)
    (position,) = tick(trader)["positions"]
    assert position["protected"] is True
    (oco,) = oco_orders(fake)
    assert oco["qty"] == "2" and oco["status"] == "new"


def test_a_partial_fill_then_its_remainder_expiring_is_covered(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_aapl(trader, "--entry", "148")
    (entry,) = fake.open_orders(nested=True)
    fake.partial_fill(entry["id"], 1, "148")
    (position,) = tick(trader)["positions"]
    assert position["protected"] is True  # the held legs count while the entry works
    fake.expire(entry["id"])  # the rest expires: its legs go with it

    (position,) = tick(trader)["positions"]
    (oco,) = oco_orders(fake)
    assert oco["qty"] == "1"  # what is held, not what was asked
    assert position["protected"] is True and position["filled_qty"] == "1"
