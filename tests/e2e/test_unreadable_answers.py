"""No decision on an answer tradectl cannot read: an account without its equity never flattens
the account, an unreadable clock or orders read never breaks the stop, and what halt reports is
what it recorded. Against the fake Alpaca, whose answers are rewritten on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cli, SmtpSink, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Cycle, Event, Position


def open_two(trader: Cli) -> None:
    for symbol, stop, target in (("AAPL", "145", "160"), ("TSLA", "240", "260")):
        result = trader("open", symbol, "--qty", "2", "--stop", stop, "--target", target)
        assert result.code == 0, result.output


def without(field: str) -> Any:
    return lambda answer: {k: v for k, v in answer.items() if k != field}


@pytest.mark.parametrize("rewrite", [without("equity"), lambda a: {**a, "equity": "NaN"},
                                     lambda a: {**a, "last_equity": "Infinity"}],
                         ids=["no equity", "NaN equity", "infinite last_equity"])
def test_an_unreadable_account_never_flattens(trader: Cli, fake: FakeAlpaca, rewrite: Any) -> None:
    trader.env["DAILY_LOSS_LIMIT"] = "100"
    open_two(trader)
    fake.rewrite("GET", r"^/v2/account$", rewrite)
    result = trader("watch", "--once", "--json")
    assert result.code == 4, result.output
    document = result.json()
    assert document["emergency_stop"] is None and "cannot read" in document["error"]
    assert fake.count("DELETE") == 0 and len(fake.positions_list()) == 2
    assert [c.status for c in rows(trader.env["DATABASE_URL"], Cycle)] == ["active"]
    assert "broker_error" in [e.kind for e in rows(trader.env["DATABASE_URL"], Event)]
    refused = trader("open", "MSFT", "--qty", "1", "--stop", "390", "--target", "410")
    assert refused.code == 4 and fake.count("POST", "/v2/orders") == 2  # nothing new sent


def test_an_unreadable_clock_during_halt_still_flattens_records_and_alerts(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink,
) -> None:
    trader.env.update(smtp.env())
    open_two(trader)
    fake.rewrite("GET", r"^/v2/clock$", lambda a: {**a, "timestamp": "2026-06-30T23:59:60Z"})
    result = trader("halt", "--reason", "leap second", "--json")
    assert result.code == 4, result.output
    report = result.json()
    assert report["unread"] == ["clock"]
    assert any("could not read clock" in n for n in report["notes"])
    assert fake.positions_list() == []
    stored = {p.symbol: p.status for p in rows(trader.env["DATABASE_URL"], Position)}
    assert stored == {"AAPL": "closed", "TSLA": "closed"}
    assert {s["symbol"]: s["state"] for s in report["symbols"]} == stored
    (message,) = smtp.messages
    assert message["Subject"].startswith("EMERGENCY STOP")


def test_a_broker_that_ignores_the_page_cursor_ends_the_read_and_halt_still_records(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tradectl.broker.alpaca.ORDERS_PAGE", 1)  # every page full: follow it
    trader.env.update(smtp.env())
    open_two(trader)
    fake.ignore_paging(True)
    fake.clear_log()
    result = trader("halt", "--reason", "stuck cursor", "--json")
    assert result.code == 4, result.output
    report = result.json()
    assert report["unread"] == ["orders"]
    assert fake.count("GET", "/v2/orders") <= 3  # not ~150 a minute
    assert fake.positions_list() == []
    stored = {p.symbol: p for p in rows(trader.env["DATABASE_URL"], Position)}
    for symbol in report["symbols"]:  # the report claims no more than the record holds
        row = stored[symbol["symbol"]]
        assert symbol["state"] == "unknown" and row.status == "pending"
        assert "could not read its entry order" in (row.alpaca_error or "")
        assert symbol["close_order_id"] == row.exit_order_id
    assert len(smtp.messages) == 1
    fake.ignore_paging(False)
    assert trader("watch", "--once").code == 0  # the next tick reads fills and closes
    assert {p.status for p in rows(trader.env["DATABASE_URL"], Position)} == {"closed"}


@pytest.mark.parametrize("synced", [False, True], ids=["entries not synced", "entries synced"])
def test_when_the_orders_read_fails_after_the_stop_report_and_rows_agree(
    trader: Cli, fake: FakeAlpaca, synced: bool,
) -> None:
    open_two(trader)
    if synced:  # a tick has recorded the entries' fills: the rows are open
        assert trader("watch", "--once").code == 0
    fake.inject("GET", r"^/v2/orders$", status=500, times=None)
    result = trader("halt", "--reason", "orders down", "--json")
    assert result.code == 4, result.output
    report = result.json()
    stored = {p.symbol: p for p in rows(trader.env["DATABASE_URL"], Position)}
    for symbol in report["symbols"]:
        # The 207 answer said the closes were accepted; no order could be read after. A row
        # known to hold shares is closing (never "closed": no fill was read); an entry whose
        # fill was never read stays unknown.
        row = stored[symbol["symbol"]]
        expected = ("closing", "closing") if synced else ("unknown", "pending")
        assert (symbol["state"], row.status) == expected
        assert symbol["close_order_id"] == row.exit_order_id
    fake.clear_faults()
    again = trader("watch", "--once", "--json")  # the next tick reads the fills
    assert again.code == 0, again.output
    assert {p.status for p in rows(trader.env["DATABASE_URL"], Position)} == {"closed"}
