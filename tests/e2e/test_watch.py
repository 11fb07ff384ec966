"""`tradectl watch`: fill tracking, reconciliation, the automatic emergency stop, robustness."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.conftest import Cli, SmtpSink, broker_env, rows, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tests.support.db import orm_session
from tradectl.broker.alpaca import AlpacaBroker
from tradectl.db.models import Cycle, Event, Position, utcnow
from tradectl.db.session import Database
from tradectl.services.watch.reconcile import UNKNOWN_GRACE


def tick(cli: Cli, *extra: str) -> dict:
    result = cli("watch", "--once", "--json", *extra)
    assert result.code == 0, result.output
    return result.json()


def open_aapl(trader: Cli, *extra: str) -> None:
    result = trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160", *extra)
    assert result.code == 0, result.output


def test_a_limit_entry_filling_on_a_price_move_becomes_open(trader: Cli, fake: FakeAlpaca) -> None:
    open_aapl(trader, "--entry", "148")
    assert tick(trader)["positions"][0]["status"] == "pending"
    fake.set_price("AAPL", "147.90")
    document = tick(trader)
    (position,) = document["positions"]
    assert position["status"] == "open" and position["filled_qty"] == "2"
    assert position["filled_avg_price"] == "147.90"  # a limit may fill better than its price
    assert any("AAPL: open" in change for change in document["changes"])
    assert "position_synced" in [e.kind for e in rows(trader.env['DATABASE_URL'], Event)]


def test_a_stop_loss_closes_with_the_realized_loss(trader: Cli, fake: FakeAlpaca) -> None:
    open_aapl(trader)
    tick(trader)
    fake.set_price("AAPL", "144.00")
    tick(trader)
    (position,) = rows(trader.env['DATABASE_URL'], Position)
    assert position.status == "closed" and position.close_reason == "stop_loss"
    assert position.exit_price == Decimal("144")
    assert position.realized_pl == Decimal("-12")  # (144 - 150) x 2


def test_a_take_profit_closes_with_the_realized_gain(trader: Cli, fake: FakeAlpaca) -> None:
    open_aapl(trader)
    fake.set_price("AAPL", "161.00")
    tick(trader)
    (position,) = rows(trader.env['DATABASE_URL'], Position)
    assert position.status == "closed" and position.close_reason == "take_profit"
    assert position.exit_price is not None
    assert position.realized_pl == (position.exit_price - Decimal(150)) * 2 > 0


def test_a_partial_fill_is_stored_and_shown(trader: Cli, fake: FakeAlpaca) -> None:
    open_aapl(trader, "--entry", "148")
    (order,) = fake.open_orders(nested=True)
    fake.partial_fill(order["id"], 1, "148")
    (position,) = tick(trader)["positions"]
    assert position["filled_qty"] == "1" and position["qty"] == "2"
    assert position["status"] == "open"
    plain = trader("watch", "--once")
    assert plain.code == 0


def test_the_loss_limit_flattens_within_one_tick_and_only_once(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink
) -> None:
    trader.env.update({**smtp.env(), "DAILY_LOSS_LIMIT": "100"})
    open_aapl(trader)
    fake.set_last_equity("100050")
    fake.set_price("AAPL", "146.00")  # -8 unrealized, -58 on the day: under the limit
    assert tick(trader)["emergency_stop"] is None
    fake.set_price("AAPL", "145.50")
    fake.set_last_equity("100100")  # now -109 on the day
    document = tick(trader)
    assert document["emergency_stop"] is not None
    assert document["cycle_status"] == "stopped"
    assert fake.positions_list() == [] and fake.open_orders() == []
    (cycle,) = rows(trader.env['DATABASE_URL'], Cycle)
    assert cycle.status == "stopped" and "daily loss limit" in (cycle.stop_reason or "")
    (message,) = smtp.messages
    assert message["Subject"].startswith("EMERGENCY STOP")

    fake.clear_log()
    again = tick(trader)
    assert again["emergency_stop"] is None
    assert fake.count("DELETE") == 0
    assert len(smtp.messages) == 1


def test_one_bad_equity_reading_does_not_flatten(trader: Cli, fake: FakeAlpaca) -> None:
    trader.env["DAILY_LOSS_LIMIT"] = "100"
    open_aapl(trader)
    bad = {**fake.account(), "equity": "1000", "portfolio_value": "1000"}
    fake.inject("GET", r"^/v2/account$", status=200, body=bad, times=1)
    fake.clear_log()
    document = tick(trader)
    assert document["emergency_stop"] is None
    assert fake.count("GET", "/v2/account") == 2  # the reading was re-checked
    assert len(fake.positions_list()) == 1
    assert rows(trader.env['DATABASE_URL'], Cycle)[0].status == "active"


def test_the_loss_warning_is_given_once(trader: Cli, fake: FakeAlpaca) -> None:
    from tradectl.services.watch.watch import Watcher

    fake.set_last_equity("100085")
    db = Database(trader.env["DATABASE_URL"])
    broker = AlpacaBroker(api_key=fake.api_key, secret_key=fake.secret_key, base_url=fake.url,
                          data_url=fake.url)
    watcher = Watcher(db, broker, None,
                      daily_loss_limit=Decimal(100), drives_stops=True)
    first, second = watcher.tick(), watcher.tick()
    db.dispose()
    assert "80%" in (first.warning or "") and second.warning is None
    kinds = [e.kind for e in rows(trader.env['DATABASE_URL'], Event)]
    assert kinds.count("loss_warning") == 1


def test_a_pending_row_whose_order_reached_alpaca_is_completed(
    trader: Cli, fake: FakeAlpaca
) -> None:
    db = Database(trader.env["DATABASE_URL"])
    with orm_session(db) as session:
        cycle = Cycle(status="active")
        session.add(cycle)
        session.flush()
        session.add(Position(
            cycle_id=cycle.id, symbol="AAPL", side="buy", qty=Decimal(2), stop_loss=Decimal(145),
            take_profit=Decimal(160), status="pending", client_order_id="crashed-1",
            created_at=utcnow() - timedelta(minutes=5),
        ))
        session.add(Position(  # past the grace an order would have appeared in
            cycle_id=cycle.id, symbol="MSFT", side="buy", qty=Decimal(1), stop_loss=Decimal(390),
            take_profit=Decimal(410), status="pending", client_order_id="crashed-never-sent",
            created_at=utcnow() - UNKNOWN_GRACE - timedelta(seconds=1),
        ))
    db.dispose()
    answer = requests.post(f"{fake.url}/v2/orders", timeout=5, json={
        "symbol": "AAPL", "qty": "2", "side": "buy", "type": "market", "time_in_force": "day",
        "order_class": "bracket", "client_order_id": "crashed-1",
        "take_profit": {"limit_price": "160"}, "stop_loss": {"stop_price": "145"},
    }, headers={"APCA-API-KEY-ID": fake.api_key, "APCA-API-SECRET-KEY": fake.secret_key})
    assert answer.status_code == 200
    tick(trader)
    aapl, msft = rows(trader.env['DATABASE_URL'], Position)
    assert aapl.alpaca_order_id == answer.json()["id"] and aapl.status == "open"
    assert msft.status == "failed" and "never placed" in (msft.alpaca_error or "")
    assert fake.count("POST", "/v2/orders") == 1  # nothing re-sent


def test_a_broker_error_in_one_tick_is_shown_and_the_next_tick_recovers(
    trader: Cli, fake: FakeAlpaca
) -> None:
    open_aapl(trader)
    fake.inject("GET", r"^/v2/positions$", status=500, times=3)
    failed = trader("watch", "--once", "--json")
    assert failed.code == 4 and "500" in failed.json()["error"]
    fake.inject("GET", r"^/v2/account$", status=429, times=3)
    limited = trader("watch", "--once", "--json")
    assert limited.code == 4 and "429" in limited.json()["error"]
    assert tick(trader)["error"] is None
    assert [e.kind for e in rows(trader.env['DATABASE_URL'], Event)].count("broker_error") == 2


def test_broker_calls_per_tick_do_not_grow_with_the_book(trader: Cli, fake: FakeAlpaca) -> None:
    def calls_per_tick() -> int:
        fake.clear_log()
        tick(trader)
        return len(fake.requests)

    open_aapl(trader)
    one = calls_per_tick()
    seed_positions(trader, fake, 199)
    assert len(rows(trader.env['DATABASE_URL'], Position)) == 200
    assert calls_per_tick() == one == 3


def test_orders_past_alpacas_page_are_read_too(
    trader: Cli, fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alpaca answers at most 500 orders a request, newest first: the oldest position's bracket
    can be on a later page, and its fill must still be seen (here with pages of one order)."""
    monkeypatch.setattr("tradectl.broker.alpaca.ORDERS_PAGE", 1)
    open_aapl(trader)  # the oldest order
    for symbol, stop, target in (("TSLA", "240", "260"), ("MSFT", "390", "410")):
        assert trader("open", symbol, "--qty", "1", "--stop", stop, "--target", target).code == 0
    fake.set_price("AAPL", "161.00")
    fake.clear_log()
    tick(trader)
    aapl = next(p for p in rows(trader.env["DATABASE_URL"], Position) if p.symbol == "AAPL")
    assert aapl.status == "closed" and aapl.close_reason == "take_profit"
    assert fake.count("GET", "/v2/orders") == 4  # three full pages, then an empty one


def seed_positions(trader: Cli, fake: FakeAlpaca, count: int) -> None:
    """Bracket orders straight to the fake, tracked rows straight into the database."""
    headers = {"APCA-API-KEY-ID": fake.api_key, "APCA-API-SECRET-KEY": fake.secret_key}
    db = Database(trader.env["DATABASE_URL"])
    with requests.Session() as http, orm_session(db) as session:
        for n in range(count):
            symbol = f"S{n:03d}"
            fake.set_price(symbol, "50")
            order = http.post(f"{fake.url}/v2/orders", headers=headers, timeout=5, json={
                "symbol": symbol, "qty": "1", "side": "buy", "type": "market",
                "time_in_force": "day", "order_class": "bracket", "client_order_id": symbol,
                "take_profit": {"limit_price": "60"}, "stop_loss": {"stop_price": "40"},
            }).json()
            session.add(Position(
                cycle_id=1, symbol=symbol, side="buy", qty=Decimal(1), stop_loss=Decimal(40),
                take_profit=Decimal(60), status="pending", client_order_id=symbol,
                alpaca_order_id=order["id"], alpaca_status=order["status"]))
    db.dispose()


def test_only_one_watch_drives_stops_a_second_stands_by_and_says_who(trader: Cli) -> None:
    from tradectl.db.locks import this_process

    db = Database(trader.env["DATABASE_URL"])
    with db.lock("watch-driver", wait=0) as held:
        assert held
        second = trader("watch", "--once", "--json")
        assert second.code == 0, second.output
        document = second.json()
        assert (document["drives_stops"], document["role"]) == (False, "standby")
        assert document["driver"] == this_process()  # the holder: this test's process
        line = trader("watch", "--once")
        assert f"standby (driver: {this_process()})" in line.stdout
        looking = trader("watch", "--once", "--read-only", "--json")
        assert looking.code == 0
        assert (looking.json()["role"], looking.json()["driver"]) == ("read_only", None)
    db.dispose()
    alone = trader("watch", "--once", "--json")  # the lock is free again
    assert alone.code == 0 and alone.json()["role"] == "driver"
    assert alone.json()["driver"] is None


def test_without_keys_watch_shows_positions_and_says_pnl_needs_a_broker(cli: Cli) -> None:
    assert cli("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160").code == 0
    result = cli("watch", "--once")
    assert result.code == 0
    assert "P&L needs a broker" in result.stdout and "positions=1" in result.stdout


def test_invalid_interval_is_bad_input(cli: Cli) -> None:
    result = cli("watch", "--interval", "0")
    assert result.code == 2 and "--interval" in result.stderr


def test_ctrl_c_leaves_cleanly_without_a_stop(fake: FakeAlpaca, sqlite_url: str,
                                              tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(broker_env(fake), DATABASE_URL=sqlite_url)
    process = subprocess.Popen([*tradectl_command(), "watch", "--interval", "1", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               cwd=tmp_path, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    assert '"cycle_status"' in first
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    assert fake.count("DELETE") == 0


def test_sql_statements_per_tick_do_not_grow_with_the_book(trader: Cli, fake: FakeAlpaca) -> None:
    from sqlalchemy import event

    from tradectl.services.watch.watch import Watcher

    db = Database(trader.env["DATABASE_URL"])
    broker = AlpacaBroker(api_key=fake.api_key, secret_key=fake.secret_key, base_url=fake.url,
                          data_url=fake.url)
    watcher = Watcher(db, broker, None,
                      daily_loss_limit=Decimal(2000), drives_stops=True)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_rest: statements.append(sql))

    def quiet_tick() -> int:
        watcher.tick()  # syncs whatever changed
        statements.clear()
        watcher.tick()  # nothing changed: the steady-state cost
        return len(statements)

    open_aapl(trader)
    one = quiet_tick()
    seed_positions(trader, fake, 40)
    assert quiet_tick() == one
    db.dispose()
