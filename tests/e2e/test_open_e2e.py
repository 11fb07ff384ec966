"""`tradectl open` end to end: the real command against the fake Alpaca server, both databases."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.conftest import Cli, broker_env, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Event, Position
from tradectl.db.session import Database

OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")


def stored(cli: Cli) -> list[Position]:
    return rows(cli.env["DATABASE_URL"], Position)


def events(cli: Cli, kind: str) -> list[Event]:
    return [e for e in rows(cli.env["DATABASE_URL"], Event) if e.kind == kind]


def order_posts(fake: FakeAlpaca) -> list[dict]:
    return [r.json for r in fake.requests if r.method == "POST" and r.path == "/v2/orders"]


def test_market_bracket_reaches_alpaca_and_is_tracked(trader: Cli, fake: FakeAlpaca) -> None:
    result = trader(*OPEN, "--json")
    assert result.code == 0, result.output
    document = result.json()
    (body,) = order_posts(fake)
    assert body == {
        "symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
        "order_class": "bracket", "client_order_id": body["client_order_id"],
        "take_profit": {"limit_price": "160.00"}, "stop_loss": {"stop_price": "145.00"},
    }
    (position,) = stored(trader)
    assert position.client_order_id == body["client_order_id"]
    (order,) = fake.orders_list(nested=True)
    assert position.alpaca_order_id == order["id"] == document["alpaca_order_id"]
    assert order["order_class"] == "bracket" and len(order["legs"]) == 2
    # Alpaca's answer to the POST shows the order as accepted; its fill comes later (watch).
    post_answer = next(r.response_json for r in fake.requests if r.method == "POST")
    assert position.status == "pending"
    assert position.alpaca_status == post_answer["status"] == document["alpaca_status"]
    assert [e.kind for e in events(trader, "order_submitted")] == ["order_submitted"]


def test_limit_bracket_waits_pending(trader: Cli, fake: FakeAlpaca) -> None:
    result = trader(*OPEN, "--entry", "148.50", "--gtc", "--json")
    assert result.code == 0, result.output
    (body,) = order_posts(fake)
    assert body["type"] == "limit" and body["limit_price"] == "148.50"
    assert body["time_in_force"] == "gtc"
    (position,) = stored(trader)
    assert position.status == "pending" and position.alpaca_status == "new"
    assert position.entry_price == Decimal("148.50")
    # a market-entry price read is not needed for a limit entry
    assert fake.count("GET", "/v2/stocks") == 0


def test_sell_bracket(trader: Cli, fake: FakeAlpaca) -> None:
    result = trader("open", "TSLA", "--qty", "2", "--stop", "260", "--target", "240",
                    "--side", "sell", "--json")
    assert result.code == 0, result.output
    (body,) = order_posts(fake)
    assert body["side"] == "sell" and body["qty"] == "2"
    assert body["stop_loss"] == {"stop_price": "260.00"}
    assert stored(trader)[0].side == "sell"


def test_market_bracket_on_the_wrong_side_of_the_last_trade_is_bad_input(
    trader: Cli, fake: FakeAlpaca
) -> None:
    fake.set_price("AAPL", "144.00")
    result = trader(*OPEN)
    assert result.code == 2
    assert "below the last trade 144" in result.stderr
    assert order_posts(fake) == [] and stored(trader) == []


def test_alpaca_rejection_is_kept_with_its_message_exit_4(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("POST", r"^/v2/orders$", status=422,
                body={"code": 42210000, "message": "qty must be > 0"})
    result = trader(*OPEN)
    assert result.code == 4
    assert result.stderr.strip().splitlines()[-1] == "error: Alpaca 422: qty must be > 0"
    (position,) = stored(trader)
    assert position.status == "rejected" and position.alpaca_status == "error"
    assert position.alpaca_error == "Alpaca 422: qty must be > 0"
    assert len(events(trader, "broker_error")) == 1


def test_insufficient_buying_power_at_alpaca_is_a_rejection(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("POST", r"^/v2/orders$", status=403,
                body={"code": 40310000, "message": "insufficient buying power"})
    result = trader(*OPEN, "--json")
    assert result.code == 4
    assert result.json()["alpaca_error"] == "Alpaca 403: insufficient buying power"


def test_order_post_is_never_retried_on_429(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("POST", r"^/v2/orders$", status=429)
    result = trader(*OPEN)
    assert result.code == 4
    assert len(order_posts(fake)) == 1
    assert stored(trader)[0].status == "rejected"


def test_reads_are_retried_on_server_errors(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/account$", status=500, times=2)
    result = trader(*OPEN)
    assert result.code == 0, result.output
    assert fake.count("GET", "/v2/account") == 3


def test_broker_down_before_the_order_writes_no_position(trader: Cli) -> None:
    down = {"ALPACA_BASE_URL": "http://127.0.0.1:9", "ALPACA_DATA_URL": "http://127.0.0.1:9"}
    result = trader(*OPEN, env=down)
    assert result.code == 4
    assert "could not connect to Alpaca" in result.stderr
    assert stored(trader) == []
    assert len(events(trader, "broker_error")) == 1


def test_lost_answer_is_settled_by_client_order_id_without_resending(
    trader: Cli, fake: FakeAlpaca
) -> None:
    # Alpaca takes the order, the answer never arrives: tradectl must find it, not re-send it.
    fake.inject("POST", r"^/v2/orders$", hang=True, apply=True)
    result = trader(*OPEN, "--json")
    assert result.code == 0, result.output
    assert len(order_posts(fake)) == 1
    assert fake.count("GET", "/v2/orders:by_client_order_id") == 1
    (position,) = stored(trader)
    assert position.alpaca_order_id == fake.orders_list()[0]["id"]
    # found by client_order_id after the fill: the look-up's answer is the latest state
    assert position.status == "open" and position.filled_avg_price == Decimal("150")


def test_a_lost_answer_with_no_order_yet_stays_unknown_never_failed(
    trader: Cli, fake: FakeAlpaca
) -> None:
    """No answer and no order at Alpaca yet: the order may still arrive, so the row stays
    visibly unknown (never `failed`) and the symbol is refused until Alpaca settles it."""
    fake.inject("POST", r"^/v2/orders$", hang=True)
    result = trader(*OPEN)
    assert result.code == 4 and "outcome is unknown" in result.stderr
    assert len(order_posts(fake)) == 1 and fake.orders_list() == []
    (position,) = stored(trader)
    assert (position.status, position.alpaca_status) == ("pending", "unknown")
    assert "outcome unknown" in (position.alpaca_error or "")
    again = trader(*OPEN, "--json")
    assert again.code == 3 and "not known yet" in again.stderr
    assert len(order_posts(fake)) == 1  # nothing sent while the first is unknown


def test_an_order_alpaca_takes_after_the_timeout_is_found_not_doubled(
    trader: Cli, fake: FakeAlpaca
) -> None:
    """Issue 12's repro: Alpaca acts on the order seconds after tradectl gave up waiting. The
    row stays unknown; the next `open` of the symbol settles it from Alpaca's orders and is
    refused, so 3 shares stay 3 shares."""
    fake.inject("POST", r"^/v2/orders$", delay=3, apply=True)
    first = trader("open", "MSFT", "--qty", "3", "--stop", "390", "--target", "430",
                   env={"ALPACA_TIMEOUT": "1"})
    assert first.code == 4, first.output
    (position,) = stored(trader)
    assert position.status == "pending" and position.alpaca_status == "unknown"
    deadline = time.monotonic() + 10
    while not fake.orders_list() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(fake.orders_list(nested=True)) == 1  # Alpaca has it now
    second = trader("open", "MSFT", "--qty", "3", "--stop", "390", "--target", "430")
    assert second.code == 3 and "already has" in second.stderr, second.output
    (position,) = stored(trader)
    assert position.alpaca_order_id == fake.orders_list(nested=True)[0]["id"]
    assert position.status == "open" and position.alpaca_error is None
    assert len(order_posts(fake)) == 1
    assert [p["qty"] for p in fake.positions_list()] == ["3"]


def test_market_data_follows_alpaca_data_url(trader: Cli, fake: FakeAlpaca) -> None:
    data = FakeAlpaca(api_key=fake.api_key, secret_key=fake.secret_key).start()
    try:
        data.set_price("AAPL", "151.00")
        result = trader(*OPEN, env={"ALPACA_DATA_URL": data.url})
        assert result.code == 0, result.output
        assert data.count("GET", "/v2/stocks/AAPL/trades/latest") == 1
        assert fake.count("GET", "/v2/stocks") == 0
    finally:
        data.stop()


@pytest.mark.usefixtures("fake")
def test_wrong_keys_are_exit_4_with_a_diagnosis(trader: Cli) -> None:
    result = trader(*OPEN, env={"ALPACA_SECRET_KEY": "wrong"})
    assert result.code == 4
    assert "401" in result.stderr and "invalid keys" in result.stderr
    assert stored(trader) == []


def test_secrets_never_reach_output_or_database(trader: Cli, fake: FakeAlpaca) -> None:
    outputs = [trader(*OPEN, "--json").output, trader(*OPEN).output,
               trader(*OPEN, env={"ALPACA_SECRET_KEY": "wrong"}).output]
    db = Database(trader.env["DATABASE_URL"])
    with db.engine.connect() as connection:
        dump = " ".join(str(row) for table in ("positions", "events", "cycles")
                        for row in connection.exec_driver_sql(f"SELECT * FROM {table}"))
    db.dispose()
    for secret in (fake.secret_key, fake.api_key):
        assert all(secret not in text for text in outputs)
        assert secret not in dump


def test_paper_key_in_live_mode_is_warned(live_trader: Cli, tls_fake: FakeAlpaca) -> None:
    result = live_trader(*OPEN, "--yes")
    assert "looks like a paper key but TRADING_MODE=live" in result.stderr
    assert tls_fake.api_key not in result.stderr


def test_broker_env_points_both_urls_at_the_fake(fake: FakeAlpaca) -> None:
    env = broker_env(fake)
    assert env["ALPACA_BASE_URL"] == env["ALPACA_DATA_URL"] == fake.url
