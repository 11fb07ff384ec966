"""`tradectl halt` and `tradectl resume` against the fake broker and a local SMTP server."""

from __future__ import annotations

import pytest

from tests.conftest import Cli, SmtpSink, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Alert, Cycle, Event, Position


def open_ok(trader: Cli, symbol: str, stop: str, target: str, *extra: str) -> None:
    result = trader("open", symbol, "--qty", "2", "--stop", stop, "--target", target, *extra)
    assert result.code == 0, result.output


def open_three(trader: Cli) -> None:
    open_ok(trader, "AAPL", "145", "160")
    open_ok(trader, "TSLA", "240", "260")
    open_ok(trader, "MSFT", "390", "410", "--entry", "395")  # limit below market: not filled




def test_halt_records_every_position_when_its_orders_span_many_pages(
    trader: Cli, fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of two orders, three entries and three closes need the oldest page beside the
    newest and the pages between: every position is still recorded, legs counted."""
    monkeypatch.setattr("tradectl.broker.alpaca.ORDERS_PAGE", 2)
    open_three(trader)
    fake.clear_log()
    report = trader("halt", "--reason", "many pages", "--json").json()
    by_symbol = {s["symbol"]: s for s in report["symbols"]}
    assert [by_symbol[s]["state"] for s in ("AAPL", "TSLA", "MSFT")] == [
        "closed", "closed", "cancelled"]
    assert [by_symbol[s]["cancelled_orders"] for s in ("AAPL", "TSLA", "MSFT")] == [2, 2, 3]
    assert {p.status for p in positions(trader).values()} == {"closed", "cancelled"}
    assert fake.count("GET", "/v2/orders") == 3  # newest and oldest side by side, then between


def positions(cli: Cli) -> dict[str, Position]:
    return {p.symbol: p for p in rows(cli.env["DATABASE_URL"], Position)}


def test_halt_flattens_the_account_and_alerts(trader: Cli, fake: FakeAlpaca,
                                              smtp: SmtpSink) -> None:
    trader.env.update(smtp.env())
    open_three(trader)
    assert len(fake.positions_list()) == 2 and len(fake.open_orders(nested=True)) == 3

    result = trader("halt", "--reason", "manual test", "--json")

    assert result.code == 0, result.output
    report = result.json()
    assert fake.positions_list() == [] and fake.open_orders() == []
    assert report["path"] == "close_all"
    by_symbol = {s["symbol"]: s for s in report["symbols"]}
    assert by_symbol["AAPL"]["state"] == "closed" and by_symbol["AAPL"]["close_order_id"]
    assert by_symbol["AAPL"]["cancelled_orders"] == 2  # the two bracket legs
    assert by_symbol["MSFT"]["state"] == "cancelled" and by_symbol["MSFT"]["cancelled_orders"] == 3
    stored = positions(trader)
    for symbol in ("AAPL", "TSLA"):
        assert stored[symbol].status == "closed"
        assert stored[symbol].alpaca_status == "closed_by_emergency_stop"
        assert stored[symbol].exit_price is not None and stored[symbol].realized_pl == 0
        assert stored[symbol].close_reason == "emergency_stop"
    assert stored["MSFT"].status == "cancelled"
    (cycle,) = rows(trader.env["DATABASE_URL"], Cycle)
    assert cycle.status == "stopped" and cycle.stop_reason == "manual test"
    (message,) = smtp.messages
    assert message["Subject"].startswith("EMERGENCY STOP")
    assert message["To"] == "trader@example.test"
    body = message.get_content()
    assert "manual test" in body and "AAPL" in body and "Equity: $" in body
    assert report["alert"] == "sent"

    refused = trader("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")
    assert refused.code == 3 and "manual test" in refused.stderr


def test_halt_uses_one_request_to_close_and_one_round_of_reads(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_three(trader)
    fake.clear_log()
    assert trader("halt", "--reason", "count").code == 0
    writes = [(r.method, r.path) for r in fake.requests if r.method != "GET"]
    assert writes == [("DELETE", "/v2/positions")]
    assert fake.requests[0].query == {"cancel_orders": "true"}
    assert fake.count("GET") == 4  # orders, positions (the sweep), clock, account: side by side


def test_close_all_failing_falls_back_to_symbol_by_symbol(trader: Cli, fake: FakeAlpaca) -> None:
    open_three(trader)
    fake.inject("DELETE", r"^/v2/positions$", status=500)
    result = trader("halt", "--reason", "fallback", "--json")
    assert result.code == 0, result.output
    assert result.json()["path"] == "fallback"
    assert fake.positions_list() == [] and fake.open_orders() == []
    assert fake.count("DELETE", "/v2/positions/") == 2


def test_close_all_timing_out_falls_back(trader: Cli, fake: FakeAlpaca) -> None:
    open_three(trader)
    fake.inject("DELETE", r"^/v2/positions$", hang=True)
    result = trader("halt", "--reason", "timeout", "--json")
    assert result.code == 0, result.output
    assert fake.positions_list() == []


def test_close_all_rate_limited_falls_back(trader: Cli, fake: FakeAlpaca) -> None:
    open_three(trader)
    fake.inject("DELETE", r"^/v2/positions$", status=429)
    result = trader("halt", "--reason", "429")
    assert result.code == 0, result.output
    assert fake.positions_list() == []


def test_one_symbol_failing_is_reported_and_a_second_halt_finishes_it(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_three(trader)
    fake.fail_close("TSLA", 403, "position close rejected by test")
    first = trader("halt", "--reason", "partial", "--json")
    assert first.code == 4
    states = {s["symbol"]: s for s in first.json()["symbols"]}
    assert states["AAPL"]["state"] == "closed"
    assert states["TSLA"]["state"] == "failed"
    assert "position close rejected by test" in states["TSLA"]["error"]
    tsla = positions(trader)["TSLA"]
    assert tsla.status == "open" and "position close rejected" in (tsla.alpaca_error or "")
    aapl_close = states["AAPL"]["close_order_id"]

    fake.fail_close("TSLA", None)
    second = trader("halt", "--reason", "again", "--json")
    assert second.code == 0, second.output
    assert second.json()["already_stopped"] is True
    assert fake.positions_list() == []
    stored = positions(trader)
    assert stored["TSLA"].status == "closed" and stored["TSLA"].alpaca_error is None
    assert stored["AAPL"].exit_order_id == aapl_close  # what succeeded is left alone
    (cycle,) = rows(trader.env["DATABASE_URL"], Cycle)
    assert cycle.stop_reason == "partial"  # the first latch stands


def test_broker_down_still_latches_alerts_and_flags(trader: Cli, smtp: SmtpSink) -> None:
    trader.env.update(smtp.env())
    open_ok(trader, "AAPL", "145", "160")
    down = {"ALPACA_BASE_URL": "http://127.0.0.1:9", "ALPACA_DATA_URL": "http://127.0.0.1:9"}
    result = trader("halt", "--reason", "broker down", "--json", env=down)
    assert result.code == 4
    report = result.json()
    assert "could not" in report["broker_error"]
    (position,) = positions(trader).values()
    assert position.status in ("pending", "open") and position.status != "closed"
    assert "emergency stop" in (position.alpaca_error or "")
    (cycle,) = rows(trader.env["DATABASE_URL"], Cycle)
    assert cycle.status == "stopped"
    (message,) = smtp.messages
    assert "FAILED" in message["Subject"]


@pytest.mark.usefixtures("fake")
def test_smtp_down_does_not_fail_the_halt_and_the_alert_stays_queued(
    trader: Cli, smtp: SmtpSink
) -> None:
    env = {**smtp.env(), "SMTP_PORT": "9"}  # nothing listens there
    trader.env.update(env)
    open_ok(trader, "AAPL", "145", "160")
    result = trader("halt", "--reason", "smtp down", "--json")
    assert result.code == 0
    assert result.json()["alert"].startswith("queued")
    (alert,) = rows(trader.env["DATABASE_URL"], Alert)
    assert alert.status == "pending" and alert.attempts == 1 and alert.last_error

    trader.env.update(smtp.env())  # the mail server is back: the next command delivers it
    assert trader("resume", "--reason", "back").code == 0
    (alert,) = rows(trader.env["DATABASE_URL"], Alert)
    assert alert.status == "sent" and alert.attempts == 2
    assert len(smtp.messages) == 1


def test_market_closed_positions_end_closing_not_closed(trader: Cli, fake: FakeAlpaca) -> None:
    open_ok(trader, "AAPL", "145", "160")
    fake.set_market_open(False)
    result = trader("halt", "--reason", "after hours", "--json")
    assert result.code == 0
    report = result.json()
    assert report["symbols"][0]["state"] == "closing"
    assert "market closed: fills when the market opens" in report["notes"]
    assert positions(trader)["AAPL"].status == "closing"

    fake.set_market_open(True)  # the close fills at the open; the next halt records it
    assert trader("halt", "--reason", "check").code == 0
    assert positions(trader)["AAPL"].status == "closed"


def test_external_positions_are_closed_and_named(trader: Cli, fake: FakeAlpaca) -> None:
    fake.add_position("NVDA", 5, "100")
    fake.set_price("NVDA", "101")
    result = trader("halt", "--reason", "external", "--json")
    assert result.code == 0
    (nvda,) = result.json()["symbols"]
    assert nvda["symbol"] == "NVDA" and nvda["external"] is True
    assert fake.positions_list() == []
    kinds = [e.kind for e in rows(trader.env["DATABASE_URL"], Event)]
    assert "external_closed" in kinds


def test_without_keys_positions_are_closed_locally(cli: Cli) -> None:
    assert cli("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160").code == 0
    result = cli("halt", "--reason", "no broker", "--json")
    assert result.code == 0
    report = result.json()
    assert report["broker_enabled"] is False
    assert any("nothing was sent to a broker" in n for n in report["notes"])
    (position,) = positions(cli).values()
    assert position.status == "closed" and position.alpaca_status == "alpaca_disabled"


def test_missing_or_empty_reason_is_exit_2_and_changes_nothing(cli: Cli) -> None:
    for args in (("halt",), ("halt", "--reason", ""), ("halt", "--reason", "  ")):
        result = cli(*args)
        assert result.code == 2, args
        assert len(result.stderr.strip().splitlines()) == 1
    assert rows(cli.env["DATABASE_URL"], Cycle) == []


def test_resume_starts_a_new_cycle_and_records_who_and_why(cli: Cli) -> None:
    assert cli("halt", "--reason", "stop").code == 0
    result = cli("resume", "--reason", "reviewed", "--json")
    assert result.code == 0
    assert result.json()["resumed"] is True
    cycles = rows(cli.env["DATABASE_URL"], Cycle)
    assert [c.status for c in cycles] == ["stopped", "active"]
    (event,) = [e for e in rows(cli.env["DATABASE_URL"], Event) if e.kind == "cycle_resumed"]
    assert event.details is not None and event.details["reason"] == "reviewed"
    assert event.details["by"]
    assert cli("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160").code == 0


def test_resume_refuses_while_the_day_loss_is_past_the_limit(
    trader: Cli, fake: FakeAlpaca
) -> None:
    assert trader("halt", "--reason", "loss").code == 0
    fake.set_last_equity("110000")  # equity 100000: a 10000 loss today
    refused = trader("resume", "--reason", "try")
    assert refused.code == 3 and "DAILY_LOSS_LIMIT" in refused.stderr
    assert [c.status for c in rows(trader.env["DATABASE_URL"], Cycle)] == ["stopped"]
    forced = trader("resume", "--reason", "try", "--force", "--json")
    assert forced.code == 0 and forced.json()["forced"] is True
