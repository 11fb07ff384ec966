"""Guarantees that need real processes: races, SIGKILL, hung connections, bad answers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Cli, broker_env, rows, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tradectl.config import DEFAULTS
from tradectl.db.models import Cycle, Position
from tradectl.db.session import Database

OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")


def spawn(fake: FakeAlpaca, url: str, cwd: Path, *args: str, **extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env.update(broker_env(fake), DATABASE_URL=url, **extra)
    return subprocess.Popen([*tradectl_command(), *args], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)




def test_halt_beats_open_no_order_is_sent_after_the_latch(
    trader: Cli, fake: FakeAlpaca, tmp_path: Path
) -> None:
    url = trader.env["DATABASE_URL"]
    for round_ in range(6):
        if round_:
            assert trader("resume", "--reason", f"round {round_}").code == 0
        fake.clear_log()
        opener = spawn(fake, url, tmp_path, *OPEN)
        if round_ % 2:
            time.sleep(0.15 * (round_ % 3))  # vary who reaches the gate first
        halter = spawn(fake, url, tmp_path, "halt", "--reason", f"race {round_}")
        opened, halted = opener.wait(timeout=60), halter.wait(timeout=60)
        assert opened in (0, 3), opener.stderr.read() if opener.stderr else ""
        assert halted == 0
        latched = max(c.stopped_at for c in rows(url, Cycle) if c.stopped_at)
        posts = [r.wall for r in fake.requests if r.method == "POST"]
        assert all(datetime.fromtimestamp(w, UTC) < latched for w in posts), round_
        assert fake.positions_list() == [] and fake.open_orders() == []


def test_sigkill_after_the_broker_accepted_is_recovered_without_a_second_order(
    trader: Cli, fake: FakeAlpaca, tmp_path: Path
) -> None:
    fake.inject("POST", r"^/v2/orders$", hang=True, apply=True)  # accepted, answer never sent
    opener = spawn(fake, trader.env["DATABASE_URL"], tmp_path, *OPEN, ALPACA_TIMEOUT="30")
    wait_for(lambda: fake.count("POST", "/v2/orders") == 1)
    opener.send_signal(signal.SIGKILL)
    opener.wait(timeout=10)
    (position,) = rows(trader.env["DATABASE_URL"], Position)
    assert position.status == "pending" and position.alpaca_order_id is None

    result = trader("watch", "--once", "--json")
    assert result.code == 0, result.output
    (position,) = rows(trader.env["DATABASE_URL"], Position)
    assert position.alpaca_order_id == fake.orders_list()[0]["id"]
    assert position.status == "open"
    assert fake.count("POST", "/v2/orders") == 1


def test_sigkill_mid_halt_then_halt_again_finishes(
    trader: Cli, fake: FakeAlpaca, tmp_path: Path
) -> None:
    assert trader(*OPEN).code == 0
    fake.inject("DELETE", r"^/v2/positions$", hang=True)
    halter = spawn(fake, trader.env["DATABASE_URL"], tmp_path, "halt", "--reason", "killed",
                   ALPACA_TIMEOUT="30")
    wait_for(lambda: fake.count("DELETE", "/v2/positions") == 1)
    halter.send_signal(signal.SIGKILL)
    halter.wait(timeout=10)
    # The stop was written ahead before its close-all: whether or not its latch committed before
    # the kill, the next command completes it (latched, flattened), so `open` refuses.
    assert trader(*OPEN).code == 3
    (cycle,) = rows(trader.env["DATABASE_URL"], Cycle)
    assert cycle.status == "stopped" and cycle.stop_reason == "killed"

    fake.clear_faults()
    again = trader("halt", "--reason", "again", "--json")
    assert again.code == 0, again.output
    assert fake.positions_list() == []
    (position,) = rows(trader.env["DATABASE_URL"], Position)
    assert position.status == "closed"


def test_the_watch_driver_lock_is_freed_when_its_holder_is_killed(
    trader: Cli, fake: FakeAlpaca, tmp_path: Path
) -> None:
    watcher = spawn(fake, trader.env["DATABASE_URL"], tmp_path, "watch", "--interval", "5",
                    "--json")
    assert watcher.stdout is not None
    assert '"cycle_status"' in watcher.stdout.readline()
    standing_by = trader("watch", "--once", "--json")  # the running one drives the stops
    assert standing_by.code == 0 and standing_by.json()["role"] == "standby"
    watcher.send_signal(signal.SIGKILL)
    watcher.wait(timeout=10)
    wait_for(lambda: trader("watch", "--once", "--json").json()["role"] == "driver", timeout=10)


@pytest.mark.parametrize("args", [
    OPEN,
    ("halt", "--reason", "hung"),
    ("watch", "--once"),
    ("resume", "--reason", "hung"),
])
def test_a_hung_broker_makes_every_command_give_up_in_time(
    trader: Cli, fake: FakeAlpaca, args: tuple[str, ...]
) -> None:
    if args[0] == "resume":
        assert trader("halt", "--reason", "first").code == 0
    fake.inject(None, r".*", hang=True, times=None)
    started = time.monotonic()
    result = trader(*args, env={"ALPACA_TIMEOUT": "1"})
    elapsed = time.monotonic() - started
    assert result.code == 4, result.output
    assert "in time" in result.output or "did not answer" in result.output
    assert elapsed < 30
    assert "Traceback" not in result.output


def test_malformed_json_from_the_broker_is_a_clear_error(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/account$", status=200, raw=b"{not json", times=None)
    result = trader(*OPEN)
    assert result.code == 4
    assert "malformed" in result.stderr and "Traceback" not in result.output
    assert rows(trader.env["DATABASE_URL"], Position) == []


def test_a_5xx_storm_is_retried_a_bounded_number_of_times(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/", status=503, times=None)
    result = trader("watch", "--once")
    assert result.code == 4
    assert fake.count("GET") <= 9  # three reads, three attempts each


def test_upgrading_a_database_that_holds_positions_keeps_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    db.upgrade("0001")
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO cycles (id, status, started_at) VALUES (1, 'active', '2026-11-01')")
        connection.exec_driver_sql(
            "INSERT INTO positions (id, cycle_id, symbol, side, qty, stop_loss, take_profit, "
            "time_in_force, status, client_order_id, realized_pl, created_at, updated_at) VALUES "
            "(1, 1, 'AAPL', 'buy', '3', '145.00', '160.00', 'day', 'closed', 'c-1', '-12.34', "
            "'2026-11-01', '2026-11-01')")
    db.upgrade()
    (position,) = rows(url, Position)
    assert position.symbol == "AAPL" and position.realized_pl == Decimal("-12.34")
    assert position.exit_order_id is None
    db.dispose()


def test_a_read_that_got_no_answer_is_not_sent_again(trader: Cli, fake: FakeAlpaca) -> None:
    """ALPACA_TIMEOUT bounds the wait: after a read has waited that long it is not retried, so a
    silent server costs one timeout per read, not three (a refused connection or a 5xx, which
    answer fast, are still retried: see the 5xx storm above)."""
    fake.inject("GET", r"^/v2/", hang=True, times=None)
    result = trader("watch", "--once", env={"ALPACA_TIMEOUT": "0.5"})
    assert result.code == 4 and "did not answer" in result.output, result.output
    assert fake.count("GET") == 3  # account, positions, orders: once each
