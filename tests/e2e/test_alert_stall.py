"""The stop never waits for an alert (issue 24): with a webhook that trickles its answer a byte at
a time, `watch` still ticks every interval and flattens on time at the loss limit, and `halt`
flattens, records and ends within its bound, its alert left to the outbox."""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Cli, rows, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tests.support.db import orm_session
from tests.support.webhook import WebhookSink
from tradectl.config import DEFAULTS
from tradectl.db.models import Alert, Cycle
from tradectl.db.session import Database
from tradectl.services.alerts import DELIVERY_WAIT_SECONDS

INTERVAL = 1.0
# A tick line may come this long after the one before: the interval, the tick's own work on a
# loaded 2-core machine, and its alert wait (a quarter of the interval). Each webhook POST here
# takes ALERT_WEBHOOK_TIMEOUT (3 s) before it gives up: inside the tick it would be 3 s or more.
TICK_GAP_BOUND = 2.6


@pytest.fixture
def trickling() -> Iterator[WebhookSink]:
    with WebhookSink() as hook:
        hook.trickle(0.5)  # a 45-byte answer over ~22 s
        yield hook


def environment(cli: Cli, hook: WebhookSink, timeout: str = "3") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env.update(cli.env, XDG_CONFIG_HOME=str(cli.cwd / "config"), ALERT_WEBHOOK_URL=hook.url,
               ALERT_WEBHOOK_TIMEOUT=timeout, ALPACA_STREAM="false", DAILY_LOSS_LIMIT="100")
    return env


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[tuple[float, dict]]:
    """Each JSON line `watch` prints, with the moment it arrived."""
    arrived: queue.Queue[tuple[float, dict]] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("{"):
                arrived.put((time.monotonic(), json.loads(line)))

    threading.Thread(target=read, daemon=True).start()
    return arrived


@pytest.mark.postgres
def test_watch_ticks_every_interval_and_flattens_on_time_while_the_webhook_trickles(
    trader: Cli, fake: FakeAlpaca, trickling: WebhookSink,
) -> None:
    opened = trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")
    assert opened.code == 0, opened.output
    fake.set_last_equity("100085")  # -85 on the day: under the limit
    db = Database(trader.env["DATABASE_URL"])
    with orm_session(db) as session:  # an alert waiting in the outbox: the first tick sends it
        session.add(Alert(kind="unprotected", channel="webhook", subject="queued", body="b",
                          recipients="hook", status="pending", attempts=0))
    db.dispose()
    process = subprocess.Popen([*tradectl_command(), "watch", "--interval", str(INTERVAL),
                                "--json"], env=environment(trader, trickling), cwd=trader.cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        arrived = lines_of(process)
        ticks = [arrived.get(timeout=30) for _ in range(4)]
        assert trickling.attempts >= 1  # the alert's POST is trickling from the first tick on
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(ticks)]
        assert max(gaps) < TICK_GAP_BOUND, gaps

        breached = time.monotonic()
        fake.set_last_equity("100200")  # -200: past the limit
        at, stopped = arrived.get(timeout=30)
        while stopped["emergency_stop"] is None:
            at, stopped = arrived.get(timeout=30)
        assert at - breached < INTERVAL + TICK_GAP_BOUND, at - breached
        assert fake.positions_list() == [] and fake.open_orders() == []
        after, _ = arrived.get(timeout=30)  # the stop's own alert trickles too: still on time
        assert after - at < TICK_GAP_BOUND
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=40)
    assert code == 0
    (cycle,) = rows(trader.env["DATABASE_URL"], Cycle)
    assert cycle.status == "stopped"
    # nothing was delivered, nothing was lost: every alert waits in the outbox for a retry
    alerts = rows(trader.env["DATABASE_URL"], Alert)
    assert {a.kind for a in alerts} == {"unprotected", "emergency_stop"}
    assert all(a.status == "pending" for a in alerts)


@pytest.mark.postgres
def test_halt_flattens_records_and_ends_within_its_bound_while_the_webhook_trickles(
    trader: Cli, fake: FakeAlpaca, trickling: WebhookSink,
) -> None:
    assert trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160").code == 0
    started = time.monotonic()
    result = subprocess.run([*tradectl_command(), "halt", "--reason", "stall", "--json"],
                            env=environment(trader, trickling, timeout="30"), cwd=trader.cwd,
                            capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    document = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    assert fake.positions_list() == []
    assert "still sending" in document["alert"] and trickling.url not in result.stdout
    # the flatten and the record first, then at most the alert's wait (and start-up), not the
    # webhook's 30 s
    assert took < DELIVERY_WAIT_SECONDS + 10, took  # start-up on a loaded machine
    (alert,) = rows(trader.env["DATABASE_URL"], Alert)
    assert alert.kind == "emergency_stop" and alert.status == "pending"
