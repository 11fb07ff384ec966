"""`halt` killed mid-flight (issue 31.1): the stop is written ahead to the spool before the first
broker call, so whatever window the SIGKILL lands in, the next command (`watch --once`,
`status`, a second `halt`) completes it from Alpaca's orders: every broker order known to the
database, the stop recorded with its close orders, exactly one alert, nothing reported missing
or failed. A fake answer is held open to stop `halt` in each window."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli, SmtpSink, rows, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tradectl.config import DEFAULTS
from tradectl.db.models import Alert, Cycle, Event, Position

OPENS = (("AAPL", "145", "160"), ("TSLA", "240", "260"), ("MSFT", "390", "410"))
BAD_EVENTS = {"position_missing", "close_failed", "entry_unknown", "entry_still_working"}


def environment(cli: Cli, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env.update(cli.env, XDG_CONFIG_HOME=str(cli.cwd / "config"), **extra)
    return env


def run(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tradectl_command(), *args], env=environment(cli), cwd=cli.cwd,
                          capture_output=True, text=True, timeout=120)


def wait_for(condition: Callable[[], object], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def spooled(cli: Cli) -> list[Path]:
    return sorted((cli.cwd / "config").rglob("stop-*.json"))


def kill_halt_at(cli: Cli, fake: FakeAlpaca, held: Callable[[], bool]) -> None:
    """Start `halt`, wait until the held answer has it, SIGKILL it."""
    halt = subprocess.Popen([*tradectl_command(), "halt", "--reason", "killed", "--json"],
                            env=environment(cli), cwd=cli.cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: held() or halt.poll() is not None)
        assert halt.poll() is None, halt.communicate()
        assert len(spooled(cli)) == 1  # written ahead before the first broker call
    finally:
        halt.send_signal(signal.SIGKILL)
        halt.wait(10)
    fake.clear_faults()


def hanging(fake: FakeAlpaca, method: str, path: str) -> Callable[[], bool]:
    return lambda: any(r.method == method and r.path == path and r.status is None
                       for r in fake.requests)


# The windows: the close-all applied at Alpaca and its answer held (the classic "killed after
# the close-all, before the record"); the close-all never applied (killed before Alpaca acted);
# the reads after the stop held (latched and flattened, not recorded).
WINDOWS = {
    "close_all_applied": (dict(method="DELETE", path_regex=r"^/v2/positions$", apply=True),
                          ("DELETE", "/v2/positions")),
    "close_all_not_applied": (dict(method="DELETE", path_regex=r"^/v2/positions$"),
                              ("DELETE", "/v2/positions")),
    "reads_after": (dict(method="GET", path_regex=r"^/v2/orders$"), ("GET", "/v2/orders")),
}


@pytest.mark.parametrize(("window", "then"), [
    ("close_all_applied", "watch"), ("close_all_applied", "status"),
    ("close_all_applied", "halt"), ("close_all_not_applied", "watch"),
    ("reads_after", "status"), ("reads_after", "halt"),
])
def test_halt_killed_in_each_window_is_completed_by_the_next_command(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink, window: str, then: str,
) -> None:
    trader.env.update(smtp.env())
    for symbol, stop, target in OPENS:
        assert trader("open", symbol, "--qty", "2", "--stop", stop, "--target", target).code == 0
    fault, (method, path) = WINDOWS[window]
    fake.clear_log()
    fake.inject(**fault, hang=True)  # type: ignore[arg-type]
    kill_halt_at(trader, fake, hanging(fake, method, path))
    assert smtp.messages == []  # killed before any alert

    command = {"watch": ("watch", "--once", "--json"), "status": ("status", "--json"),
               "halt": ("halt", "--reason", "again", "--json")}[then]
    result = run(trader, *command)
    assert result.returncode == 0, result.stdout + result.stderr
    if then == "halt":
        document = json.loads(result.stdout)
        assert not [s for s in document["symbols"] if s["state"] in ("failed", "missing")]
        assert not [s for s in document["symbols"] if s["external"]]
    assert_stop_completed(trader, fake, smtp)
    # Nothing more happens on the next command: no second alert, nothing reported missing.
    again = run(trader, "watch", "--once", "--json")
    assert again.returncode == 0, again.stderr
    assert_stop_completed(trader, fake, smtp)


def assert_stop_completed(cli: Cli, fake: FakeAlpaca, smtp: SmtpSink) -> None:
    url = cli.env["DATABASE_URL"]
    assert fake.positions_list() == [] and fake.open_orders() == []
    assert spooled(cli) == []
    (cycle,) = rows(url, Cycle)
    assert cycle.status == "stopped" and cycle.stop_reason == "killed"
    positions = rows(url, Position)
    assert {p.status for p in positions} == {"closed"}, [(p.symbol, p.status) for p in positions]
    assert all(p.close_reason == "emergency_stop" and p.exit_order_id for p in positions)
    known = {i for p in positions for i in (p.alpaca_order_id, p.exit_order_id,
                                             p.stop_order_id, p.target_order_id) if i}
    at_broker = {o["id"] for o in fake.orders_list(nested=True)}  # legs come with their parent
    assert at_broker <= known, at_broker - known  # every broker order known
    kinds = [e.kind for e in rows(url, Event)]
    assert not BAD_EVENTS & set(kinds), kinds
    assert kinds.count("emergency_stop_complete") == 1
    stops = [a for a in rows(url, Alert) if a.kind == "emergency_stop"]
    assert len(stops) == 1 and stops[0].status == "sent"
    assert len(smtp.messages) == 1
    subject = smtp.messages[0]["Subject"]
    assert "all closed or closing" in subject and "FAILED" not in subject
    body = smtp.messages[0].get_content()
    assert "not opened by tradectl" not in body and "missing" not in body
