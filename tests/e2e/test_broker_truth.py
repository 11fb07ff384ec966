"""What tradectl records and shows is what Alpaca holds (issue 12's repros, both databases)."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Cli, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Cycle, Event, Position


def opened(cli: Cli, symbol: str, stop: str, target: str, *extra: str) -> None:
    result = cli("open", symbol, "--qty", "2", "--stop", stop, "--target", target, *extra)
    assert result.code == 0, result.output


def positions(cli: Cli) -> dict[str, Position]:
    return {p.symbol: p for p in rows(cli.env["DATABASE_URL"], Position)}


# -- 1. a position the broker holds and tradectl does not track is named by the refusal --------


def test_open_refuses_a_symbol_alpaca_holds_outside_tradectl(trader: Cli, fake: FakeAlpaca
                                                              ) -> None:
    fake.add_position("GOOG", 100, "170")
    result = trader("open", "GOOG", "--qty", "1", "--stop", "160", "--target", "180", "--json")
    assert result.code == 3
    document = result.json()
    assert document["rule"] == "open_position_in_symbol"
    assert "Alpaca holds 100 GOOG that tradectl did not open" in document["error"]
    assert fake.count("POST", "/v2/orders") == 0


# -- 2. the stop records what the broker says: a cancel still pending stays pending ------------


def test_a_cancel_alpaca_leaves_pending_is_recorded_as_pending_then_completed(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    opened(trader, "MSFT", "390", "410", "--entry", "395")  # a limit below the market: working
    fake.set_cancels_pending(True)
    result = trader("halt", "--reason", "cancel pending", "--json")
    assert result.code == 0, result.output
    (msft,) = result.json()["symbols"]
    assert msft["state"] == "cancelling" and msft["error"] == "Alpaca: pending_cancel"
    row = positions(trader)["MSFT"]
    assert (row.status, row.alpaca_status) == ("pending", "pending_cancel")
    text = trader("halt", "--reason", "again")
    assert "cancelling" in text.stdout
    fake.release_cancels()
    assert trader("watch", "--once").code == 0
    row = positions(trader)["MSFT"]
    assert (row.status, row.alpaca_status) == ("cancelled", "canceled")


def test_an_entry_that_fills_while_its_cancel_is_pending_is_closed_by_the_next_halt(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    opened(trader, "MSFT", "390", "410", "--entry", "395")
    fake.set_cancels_pending(True)
    assert trader("halt", "--reason", "first").code == 0
    fake.set_price("MSFT", "394.50")  # a pending_cancel order can still fill
    assert positions(trader)["MSFT"].status == "pending"
    fake.set_cancels_pending(False)
    result = trader("halt", "--reason", "second", "--json")
    assert result.code == 0, result.output
    assert fake.positions_list() == []
    row = positions(trader)["MSFT"]
    assert row.status == "closed" and row.filled_qty == 2 and row.realized_pl is not None


# -- 3. positions tradectl did not open are shown everywhere -----------------------------------


def test_external_positions_are_in_status_watch_and_the_tick_line(trader: Cli,
                                                                    fake: FakeAlpaca) -> None:
    opened(trader, "AAPL", "145", "160")
    fake.add_position("GOOG", 100, "170")
    fake.set_price("GOOG", "154.00")  # down $1,600
    status = trader("status", "--json").json()
    (goog,) = status["external"]
    assert goog["symbol"] == "GOOG" and goog["qty"] == "100"
    assert goog["unrealized_pl"] == "-1600.00" and goog["last_price"] == "154.00"
    assert "external" in trader("status").stdout
    tick = trader("watch", "--once", "--json").json()
    assert [x["symbol"] for x in tick["external"]] == ["GOOG"]
    line = trader("watch", "--once").stdout
    assert "positions=2" in line and "external=1" in line


# -- 4. failures are visible outside --json ----------------------------------------------------


def test_a_failed_close_is_shown_by_status_not_as_a_plain_open(trader: Cli,
                                                               fake: FakeAlpaca) -> None:
    opened(trader, "TSLA", "240", "260")
    assert trader("watch", "--once").code == 0
    fake.fail_close("TSLA", 403, "position close rejected")
    assert trader("halt", "--reason", "close fails").code == 4
    text = trader("status").stdout
    assert "open !" in text
    assert "UNPROTECTED" in text  # its legs were cancelled: no stop works at Alpaca
    assert "emergency stop: Alpaca 403: position close rejected" in text
    (position,) = trader("status", "--json").json()["positions"]
    assert "position close rejected" in position["alpaca_error"]


# -- 5. one bad reading is not shown or logged as fact -----------------------------------------


def test_a_discarded_account_reading_is_an_event_of_its_own_not_a_warning(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    trader.env["DAILY_LOSS_LIMIT"] = "1000"
    opened(trader, "AAPL", "145", "160")
    bad = {**fake.account(), "equity": "90000", "portfolio_value": "90000"}
    fake.inject("GET", r"^/v2/account$", status=200, body=bad, times=1)
    tick = trader("watch", "--once", "--json").json()
    assert tick["emergency_stop"] is None and tick["warning"] is None
    assert tick["equity"] == fake.account()["equity"] + ".00" or Decimal(tick["equity"]) == \
        Decimal(fake.account()["equity"])  # the confirmed reading is shown
    kinds = [e.kind for e in rows(trader.env["DATABASE_URL"], Event)]
    assert "account_reading_discarded" in kinds and "loss_warning" not in kinds


# -- 6. a forced resume is not undone by the next tick -----------------------------------------


def test_a_forced_resume_sets_a_baseline_the_loss_limit_counts_from(trader: Cli,
                                                                   fake: FakeAlpaca) -> None:
    trader.env["DAILY_LOSS_LIMIT"] = "100"
    opened(trader, "AAPL", "145", "160")
    fake.set_last_equity("100500")  # a 500 loss (a withdrawal, say)
    assert trader("watch", "--once", "--json").json()["emergency_stop"] is not None
    refused = trader("resume", "--reason", "a withdrawal, not a loss")
    assert refused.code == 3
    forced = trader("resume", "--reason", "a withdrawal, not a loss", "--force", "--json")
    assert forced.code == 0 and forced.json()["loss_baseline"] == "-500.00"
    tick = trader("watch", "--once", "--json").json()
    assert tick["emergency_stop"] is None and tick["loss_baseline"] == "-500.00"
    opened(trader, "TSLA", "240", "260")  # open is allowed again too
    assert "since the forced resume" in trader("status").stdout
    fake.set_last_equity("100620")  # 120 more lost since the resume: past the 100 limit
    stopped = trader("watch", "--once", "--json").json()
    assert stopped["emergency_stop"] is not None
    assert "since the forced resume" in stopped["stop_reason"]
    assert [c.status for c in rows(trader.env["DATABASE_URL"], Cycle)] == [
        "stopped", "stopped"]


# -- 7. rows never sent to a broker do not block real orders -----------------------------------


def test_local_only_rows_do_not_block_a_broker_backed_open(cli: Cli, fake: FakeAlpaca) -> None:
    opened(cli, "AAPL", "145", "160")  # no keys: recorded locally
    assert positions(cli)["AAPL"].alpaca_status == "alpaca_disabled"
    assert "local only" in cli("status").stdout
    cli.env.update({"ALPACA_API_KEY": fake.api_key, "ALPACA_SECRET_KEY": fake.secret_key,
                    "ALPACA_BASE_URL": fake.url, "ALPACA_DATA_URL": fake.url,
                    "MAX_OPEN_POSITIONS": "1"})
    result = cli("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")
    assert result.code == 0, result.output  # neither the symbol nor the count is taken
    assert fake.count("POST", "/v2/orders") == 1
