"""The emergency stop is never held up by another tradectl process: `halt`, started as a separate
process beside a `watch` stuck on a silent SMTP relay, beside a `watch` whose broker reads hang,
and beside `status`/`log` readers, commits its latch within seconds of its own start and
flattens the account. The one wait allowed is an `open` in the middle of its submit, bounded by
ALPACA_TIMEOUT; the stop then flattens that order too."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Cli, rows, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tests.support.db import orm_session
from tests.support.network import SilentServer
from tradectl.config import DEFAULTS
from tradectl.db.models import Alert, Cycle, Position
from tradectl.db.session import Database

# The latch must land within this of halt's own start (process start-up included). Generous for
# a loaded 2-core machine (benchmarks/halt_latch.py measures it: well under a second alone);
# every fault below would hold it 10 s (SQLite's busy timeout) or more without the fix.
LATCH_BOUND_SECONDS = 8.0


def environment(cli: Cli, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env.update(cli.env, XDG_CONFIG_HOME=str(cli.cwd / "config"), **extra)
    return env


def start(cli: Cli, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*tradectl_command(), *args], env=environment(cli, **extra),
                            cwd=cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def halt_and_time_the_latch(cli: Cli, **extra: str) -> tuple[int, float, str]:
    """Run `halt` as a process; returns its exit code, the seconds from its start to the latch
    committed in the database, and its output."""
    started = time.time()
    result = subprocess.run([*tradectl_command(), "halt", "--reason", "latch test"],
                            env=environment(cli, **extra), cwd=cli.cwd, capture_output=True,
                            text=True, timeout=120)
    (cycle,) = [c for c in rows(cli.env["DATABASE_URL"], Cycle) if c.status == "stopped"]
    assert cycle.stopped_at is not None
    return result.returncode, cycle.stopped_at.timestamp() - started, result.stdout + result.stderr


def open_two(trader: Cli) -> None:
    for symbol, stop, target in (("AAPL", "145", "160"), ("TSLA", "240", "260")):
        result = trader("open", symbol, "--qty", "2", "--stop", stop, "--target", target)
        assert result.code == 0, result.output


def wait_for(condition: Callable[[], object], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_halt_latches_beside_a_watch_stuck_on_a_silent_smtp_relay(
    trader: Cli, fake: FakeAlpaca, background: list[subprocess.Popen[str]],
) -> None:
    open_two(trader)
    db = Database(trader.env["DATABASE_URL"])
    with orm_session(db) as session:  # an alert waiting to be sent: watch tries it at once
        session.add(Alert(kind="test", subject="queued", body="b", recipients="t@example.test",
                          status="pending", attempts=0))
    db.dispose()
    with SilentServer() as relay:
        smtp = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(relay.port), "SMTP_STARTTLS": "false",
                "ALERT_EMAIL_TO": "t@example.test", "SMTP_TIMEOUT": "12"}  # > the busy timeout
        background.append(start(trader, "watch", "--interval", "1", "--json", **smtp))
        wait_for(lambda: relay.accepted >= 1)  # the watch is inside its SMTP exchange now
        code, latch, output = halt_and_time_the_latch(trader, **smtp)
    assert latch < LATCH_BOUND_SECONDS, output
    assert code == 0, output
    assert fake.positions_list() == []


def test_halt_latches_beside_a_watch_whose_broker_reads_hang(
    trader: Cli, fake: FakeAlpaca, background: list[subprocess.Popen[str]],
) -> None:
    open_two(trader)
    fake.clear_log()
    fake.inject("GET", r"^/v2/orders$", hang=True, times=1)  # the watch's orders read hangs
    background.append(start(trader, "watch", "--interval", "1", "--json",
                            ALPACA_TIMEOUT="30"))
    wait_for(lambda: any(r.status is None for r in fake.requests))
    code, latch, output = halt_and_time_the_latch(trader)
    assert latch < LATCH_BOUND_SECONDS, output
    assert code == 0, output
    assert fake.positions_list() == []


def test_halt_latches_beside_status_and_log_readers(
    trader: Cli, fake: FakeAlpaca, background: list[subprocess.Popen[str]],
) -> None:
    open_two(trader)
    for _ in range(2):
        background.append(start(trader, "status", "--json"))
        background.append(start(trader, "log", "--json"))
    code, latch, output = halt_and_time_the_latch(trader)
    assert latch < LATCH_BOUND_SECONDS, output
    assert code == 0, output
    assert fake.positions_list() == []


def test_halt_waits_for_an_open_mid_submit_at_most_its_timeout_then_flattens_it(
    trader: Cli, fake: FakeAlpaca, background: list[subprocess.Popen[str]],
) -> None:
    """The open holds the trading gate while its order is on the wire (here Alpaca takes it and
    the answer never comes); the halt waits for that, then its flatten closes the new order."""
    fake.inject("POST", r"^/v2/orders$", hang=True, apply=True)
    opening = start(trader, "open", "MSFT", "--qty", "1", "--stop", "390", "--target", "410",
                    ALPACA_TIMEOUT="3")
    background.append(opening)
    wait_for(lambda: fake.count("POST", "/v2/orders") == 1)
    code, latch, output = halt_and_time_the_latch(trader, ALPACA_TIMEOUT="3")
    assert latch < 3 + 3 + 1 + LATCH_BOUND_SECONDS, output  # the gate's bound, then the latch
    assert opening.wait(30) == 0  # its lost answer was found by client_order_id
    assert code == 0, output
    assert fake.positions_list() == [] and fake.open_orders() == []
    (msft,) = rows(trader.env["DATABASE_URL"], Position)
    assert msft.status == "closed" and msft.close_reason == "emergency_stop"


def test_an_open_landing_after_the_close_all_is_swept_once_the_latch_commits(
    trader: Cli, fake: FakeAlpaca, background: list[subprocess.Popen[str]],
) -> None:
    """Flatten first: halt's close-all leaves before its latch. An `open` already past its gate
    check, whose order reaches Alpaca only after that close-all (the fake takes 3 s to accept
    it), is waited for by the latch and then swept: its exits cancelled, its shares closed,
    and the halt says so."""
    fake.inject("POST", r"^/v2/orders$", delay=3.0, answer=True)  # accepted 3 s after sent
    opening = start(trader, "open", "MSFT", "--qty", "1", "--stop", "390", "--target", "410",
                    ALPACA_TIMEOUT="10")
    background.append(opening)
    wait_for(lambda: rows(trader.env["DATABASE_URL"], Position))  # written ahead: submitting
    result = subprocess.run([*tradectl_command(), "halt", "--reason", "window", "--json"],
                            env=environment(trader, ALPACA_TIMEOUT="10"), cwd=trader.cwd,
                            capture_output=True, text=True, timeout=120)
    assert opening.wait(30) == 0, opening.communicate()
    deletes = [r for r in fake.requests if r.method == "DELETE" and r.path == "/v2/positions"]
    post = next(r for r in fake.requests if r.method == "POST" and r.path == "/v2/orders")
    assert deletes[0].monotonic < post.answered  # the close-all went out before the order landed
    assert result.returncode == 0, result.stdout + result.stderr
    document = __import__("json").loads(result.stdout)
    assert document["swept"] == ["MSFT"]
    assert any("swept after the latch: MSFT" in note for note in document["notes"])
    assert fake.positions_list() == [] and fake.open_orders() == []
    (msft,) = rows(trader.env["DATABASE_URL"], Position)
    assert msft.status == "closed" and msft.close_reason == "emergency_stop"
