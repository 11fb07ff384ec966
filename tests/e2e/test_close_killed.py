"""`close` killed between its cancel and its close (issue 31, item 2), on both databases: the
fake holds the close's answer open, the process is SIGKILLed in that window, and one `watch` tick
then leaves every broker order known, every held share protected (or the close completed from
Alpaca's orders), the database agreeing with Alpaca, and one alert. When `status` runs first, it
settles the close the same way (the row open again, UNPROTECTED, its one alert sent; or the close
order recorded) and sends no order: the next tick re-protects it with no second alert."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Cli, SmtpSink, rows
from tests.e2e.test_halt_latch import start, wait_for
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Event, Position

CLOSE_PATH = r"^/v2/positions/AAPL$"


@pytest.fixture
def closing(trader: Cli, smtp: SmtpSink) -> Iterator[Cli]:
    """An open AAPL (2 at 150, stop 145, target 160), protected by its bracket, alerts by
    e-mail."""
    trader.env.update(smtp.env())
    result = trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")
    assert result.code == 0, result.output
    assert trader("watch", "--once").code == 0
    yield trader


def kill_close_in_flight(cli: Cli, fake: FakeAlpaca, *, reached_alpaca: bool) -> None:
    """`tradectl close AAPL` as its own process, SIGKILLed while Alpaca's answer to the close
    is held open (after its exit orders were cancelled). `reached_alpaca`: Alpaca acted on the
    close before the answer was lost."""
    fake.inject("DELETE", CLOSE_PATH, hang=True, apply=reached_alpaca)
    process: subprocess.Popen[str] = start(cli, "close", "AAPL", "--json")
    try:
        wait_for(lambda: any(r.method == "DELETE" and r.status is None
                             for r in fake.requests if r.path == "/v2/positions/AAPL"))
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    fake.clear_faults()


def the_row(cli: Cli) -> Position:
    (row,) = rows(cli.env["DATABASE_URL"], Position)
    return row


def known_ids(row: Position, fake: FakeAlpaca) -> set[str]:
    """Every order id the row accounts for: its entry and legs, its restore and its legs, its
    close."""
    ids = {i for i in (row.alpaca_order_id, row.stop_order_id, row.target_order_id,
                       row.restore_order_id, row.exit_order_id) if i}
    for order in fake.orders_list(nested=True):
        if order["id"] in ids:
            ids.update(leg["id"] for leg in order["legs"] or [])
    return ids


def unprotected_alerts(cli: Cli) -> list[Event]:
    return [e for e in rows(cli.env["DATABASE_URL"], Event) if e.kind == "unprotected"]


def tick(cli: Cli) -> dict[str, Any]:
    result = cli("watch", "--once", "--json")
    assert result.code == 0, result.output
    return result.json()


def test_a_close_killed_before_alpaca_had_it_is_reprotected_within_one_tick(
    closing: Cli, fake: FakeAlpaca, smtp: SmtpSink,
) -> None:
    kill_close_in_flight(closing, fake, reached_alpaca=False)
    assert [o["status"] for o in fake.open_orders()] == []  # its legs were cancelled
    row = the_row(closing)
    assert (row.status, row.exit_order_id) == ("closing", None)  # the write-ahead

    document = tick(closing)
    (position,) = document["positions"]
    assert position["status"] == "open" and position["protected"] is True
    row = the_row(closing)
    open_orders = fake.open_orders(nested=True)
    (oco,) = open_orders
    assert oco["order_class"] == "oco" and oco["qty"] == "2"  # covers what Alpaca holds
    assert {o["id"] for o in fake.orders_list()} <= known_ids(row, fake)  # every order known
    (held,) = fake.positions_list()
    assert Decimal(held["qty"]) == row.filled_qty == 2  # the database agrees with Alpaca
    assert len(unprotected_alerts(closing)) == 1
    assert [m["Subject"] for m in smtp.messages] == ["UNPROTECTED - AAPL #1 has no working stop"]

    tick(closing)  # nothing more: no second restore, no second alert
    assert len(fake.open_orders(nested=True)) == 1 and len(smtp.messages) == 1


def test_status_settles_a_close_killed_before_alpaca_had_it_and_alerts_once(
    closing: Cli, fake: FakeAlpaca, smtp: SmtpSink,
) -> None:
    kill_close_in_flight(closing, fake, reached_alpaca=False)
    orders_before = len(fake.orders_list())

    result = closing("status", "--json")
    assert result.code == 0, result.output
    document = result.json()  # one object
    (shown,) = document["positions"]
    assert (shown["status"], shown["protection"], shown["protected"]) == ("open", "unprotected",
                                                                          False)
    assert "the close was interrupted (or its answer lost)" in shown["protection_error"]
    assert "the next `tradectl watch` tick re-protects it" in shown["protection_error"]
    assert document["alerts"] == []  # sent, not left pending
    row = the_row(closing)
    assert (row.status, row.exit_sent_at, row.exit_order_id) == ("open", None, None)
    assert row.unprotected_since is not None
    assert len(unprotected_alerts(closing)) == 1
    assert [m["Subject"] for m in smtp.messages] == ["UNPROTECTED - AAPL #1 has no working stop"]
    assert len(fake.orders_list()) == orders_before  # status sends no order

    text = closing("status")  # settled once: shown again, not alerted again
    assert "UNPROTECTED" in text.stdout and len(smtp.messages) == 1

    (position,) = tick(closing)["positions"]
    assert position["status"] == "open" and position["protected"] is True
    (oco,) = fake.open_orders(nested=True)
    assert oco["order_class"] == "oco" and oco["qty"] == "2"
    assert {o["id"] for o in fake.orders_list()} <= known_ids(the_row(closing), fake)
    assert len(unprotected_alerts(closing)) == 1 and len(smtp.messages) == 1  # no second alert


def test_a_close_killed_after_alpaca_had_it_is_completed_from_its_orders(
    closing: Cli, fake: FakeAlpaca, smtp: SmtpSink,
) -> None:
    kill_close_in_flight(closing, fake, reached_alpaca=True)
    assert fake.positions_list() == []  # Alpaca closed it; the answer never came
    (close,) = [o for o in fake.orders_list() if o["order_class"] in ("", "simple")
                and o["side"] == "sell"]
    (shown,) = closing("status", "--json").json()["positions"]
    assert shown["protection"] != "unprotected"  # its close order is there
    assert shown["status"] in ("closing", "closed")  # as Alpaca answered: recorded by status
    row = the_row(closing)
    assert (row.exit_order_id, row.close_reason) == (close["id"], "manual")
    assert row.status == shown["status"]

    tick(closing)
    row = the_row(closing)
    assert (row.status, row.exit_order_id, row.close_reason) == ("closed", close["id"],
                                                                 "manual")
    assert row.realized_pl == Decimal(0)  # sold at 150
    assert {o["id"] for o in fake.orders_list()} <= known_ids(row, fake)
    assert fake.open_orders() == [] and unprotected_alerts(closing) == []
    assert smtp.messages == []


def test_the_next_close_completes_a_killed_close(closing: Cli, fake: FakeAlpaca) -> None:
    kill_close_in_flight(closing, fake, reached_alpaca=False)
    result = closing("close", "AAPL", "--json")
    assert result.code == 0, result.output
    assert result.json()["state"] in ("closing", "closed")
    tick(closing)
    assert fake.positions_list() == [] and the_row(closing).status == "closed"
    assert fake.count("DELETE", "/v2/positions/AAPL") == 2  # the killed one never acted


def test_a_close_whose_outcome_is_unknown_is_reprotected_by_the_next_tick(
    closing: Cli, fake: FakeAlpaca, smtp: SmtpSink,
) -> None:
    fake.inject("DELETE", CLOSE_PATH, hang=True)  # no answer within ALPACA_TIMEOUT
    result = closing("close", "AAPL", "--json")
    assert result.code == 4 and result.json()["state"] == "unknown", result.output
    fake.clear_faults()
    (position,) = tick(closing)["positions"]
    assert position["status"] == "open" and position["protected"] is True
    assert len(unprotected_alerts(closing)) == 1 and len(smtp.messages) == 1
