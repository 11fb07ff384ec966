"""`tradectl watch` with Alpaca's trade-updates stream, as a running process against the fake:
a fill and an expired leg are recorded before the next tick, a dropped stream reconnects and
the tick settles what it missed, refused stream keys leave the REST loop alone, and with the
stream off no websocket is opened. On SQLite and Postgres."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Cli, rows, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tradectl.config import DEFAULTS
from tradectl.db.models import Event, Position

WAIT = 20.0  # generous: what is measured in milliseconds, on a loaded machine


class RunningWatch:
    """`tradectl watch ...` in a subprocess with the CLI runner's settings; its stdout lines
    as they come."""

    def __init__(self, trader: Cli, *args: str, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
        environ.update({**trader.env, **(env or {})})
        self.process = subprocess.Popen(
            [*tradectl_command(), "watch", *args], cwd=trader.cwd, env=environ, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def line(self, wanted: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no such line within {WAIT} s; saw {self.seen}") from None
            self.seen.append(line)
            if wanted(line):
                return line

    def document(self, wanted: Callable[[dict], bool]) -> dict:
        return json.loads(self.line(lambda line: wanted(json.loads(line))))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def watch(trader: Cli) -> Iterator[Callable[..., RunningWatch]]:
    running: list[RunningWatch] = []

    def start(*args: str, env: dict[str, str] | None = None) -> RunningWatch:
        running.append(RunningWatch(trader, *args, env=env))
        return running[-1]

    yield start
    for process in running:
        assert process.stop() == 0, process.process.stderr.read() if process.process.stderr \
            else ""


def open_aapl(trader: Cli, *extra: str) -> None:
    result = trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160", *extra)
    assert result.code == 0, result.output


def is_tick(document: dict) -> bool:
    return document["kind"] == "tick"


def connected_tick(document: dict) -> bool:
    """A tick that read the orders with the stream connected (when it connects after a tick,
    a tick follows at once, to read what the stream could not have sent)."""
    return is_tick(document) and document["stream"]["state"] == "connected"


def ticks_settled(fake: FakeAlpaca) -> int:
    """The account reads so far, once no tick has run for a second (the tick that follows
    the stream's first connection may still be under way)."""
    count = -1
    while (now := fake.count("GET", "/v2/account")) != count:
        count = now
        time.sleep(1.0)
    return count


def from_stream(document: dict, text: str) -> bool:
    return document["kind"] == "trade_updates" and any(text in c for c in document["changes"])


def test_a_fill_reaches_the_database_before_the_next_tick(
    trader: Cli, fake: FakeAlpaca, watch: Callable[..., RunningWatch]
) -> None:
    open_aapl(trader, "--entry", "148")
    running = watch("--interval", "60", "--json")
    first = running.document(connected_tick)
    assert first["positions"][0]["status"] == "pending"
    fake.wait_for_stream(lambda c: c.listening == 1, WAIT)
    ticks = ticks_settled(fake)

    fake.set_price("AAPL", "147.90")  # the limit entry fills
    update = running.document(lambda d: from_stream(d, "AAPL: open"))
    assert update["stream"]["state"] == "connected" and update["error"] is None
    assert update["positions"][0]["status"] == "open"  # the tick's fields, up to date
    assert update["equity"] == first["equity"] and update["emergency_stop"] is None
    (position,) = rows(trader.env["DATABASE_URL"], Position)
    assert (position.status, position.filled_qty) == ("open", 2)
    assert position.filled_avg_price == Decimal("147.90")
    synced = [e for e in rows(trader.env["DATABASE_URL"], Event) if e.kind == "position_synced"]
    assert synced[-1].details is not None and synced[-1].details["source"] == "trade_updates"
    assert fake.count("GET", "/v2/account") == ticks  # no tick ran meanwhile


def test_an_expired_day_leg_is_applied_at_once(
    trader: Cli, fake: FakeAlpaca, watch: Callable[..., RunningWatch]
) -> None:
    open_aapl(trader)  # a market entry: filled, its day legs working
    running = watch("--interval", "60", "--json")
    running.document(connected_tick)
    fake.wait_for_stream(lambda c: c.listening == 1, WAIT)
    ticks = ticks_settled(fake)

    expired = fake.end_trading_day()
    assert len(expired) == 2
    running.document(lambda d: from_stream(d, "leg expired at Alpaca"))
    deadline = time.monotonic() + WAIT
    while len(ended := [e for e in rows(trader.env["DATABASE_URL"], Event)
                        if e.kind == "bracket_leg_ended"]) < 2:
        assert time.monotonic() < deadline, ended
        time.sleep(0.1)
    assert sorted((e.details or {})["order_id"] for e in ended) == sorted(expired)
    assert {e.message for e in ended} == {
        f"AAPL: the {leg} leg expired at Alpaca while the position is open"
        for leg in ("take-profit", "stop-loss")}
    assert fake.count("GET", "/v2/account") == ticks


def test_an_expired_day_leg_is_restored_by_one_oco_before_the_next_tick(
    trader: Cli, fake: FakeAlpaca, watch: Callable[..., RunningWatch]
) -> None:
    open_aapl(trader)  # filled; its day legs hold the stop
    running = watch("--interval", "60", "--json")
    running.document(connected_tick)
    fake.wait_for_stream(lambda c: c.listening == 1, WAIT)
    ticks = ticks_settled(fake)

    fake.end_trading_day()
    restored = running.document(lambda d: from_stream(d, "protection restored"))
    assert fake.count("GET", "/v2/account") == ticks  # no tick ran meanwhile
    (position,) = restored["positions"]
    assert (position["protection"], position["working_stop"]) == ("protected", "145.00")
    assert restored["error"] is None and restored["protection_error"] is None
    ocos = [r.json for r in fake.requests if r.method == "POST" and r.path == "/v2/orders"
            and (r.json or {}).get("order_class") == "oco"]
    assert [(o["side"], o["qty"], o["time_in_force"], o["stop_loss"], o["take_profit"])
            for o in ocos] == [("sell", "2", "gtc", {"stop_price": "145"},
                                {"limit_price": "160"})]
    assert running.stop() == 0

    sent = len([r for r in fake.requests if r.method != "GET"])
    after = trader("watch", "--once", "--json")  # the tick after: it finds the stop working
    assert after.code == 0, after.output
    assert after.json()["positions"][0]["protection"] == "protected"
    assert len([r for r in fake.requests if r.method != "GET"]) == sent
    kinds = [e.kind for e in rows(trader.env["DATABASE_URL"], Event)]
    assert kinds.count("protection_restored") == 1 and "unprotected" not in kinds


def test_a_dropped_stream_reconnects_and_the_next_tick_settles_what_it_missed(
    trader: Cli, fake: FakeAlpaca, watch: Callable[..., RunningWatch]
) -> None:
    open_aapl(trader, "--entry", "148")
    running = watch("--interval", "3")
    fake.wait_for_stream(lambda c: c.listening == 1, WAIT)
    running.line(lambda line: "stream: connected" in line)

    fake.drop_stream_connections()
    running.line(lambda line: "stream: reconnecting" in line)
    running.line(lambda line: line.split(" | ")[2:] == ["stream: connected\n"])
    assert fake.stream_clients().accepted == 2

    fake.pause_stream()  # a gap Alpaca never replays
    fake.set_price("AAPL", "147.90")
    assert [e.delivered for e in fake.stream_events if e.event == "fill"] == [0]
    tick = running.line(lambda line: "change: AAPL: open" in line)
    assert "cycle=active" in tick  # the tick's line, not the stream's
    (position,) = rows(trader.env["DATABASE_URL"], Position)
    assert position.status == "open"
    synced = [e for e in rows(trader.env["DATABASE_URL"], Event) if e.kind == "position_synced"]
    assert synced[-1].details is not None and "source" not in synced[-1].details


def fill_row(trader: Cli) -> Position | None:
    (position,) = rows(trader.env["DATABASE_URL"], Position)
    return position if position.status == "open" else None


def until_filled(trader: Cli, seconds: float) -> float:
    """Seconds until the position's row is open (the fill recorded), polled every 50 ms."""
    started = time.monotonic()
    while fill_row(trader) is None:
        assert time.monotonic() - started < seconds, "the fill is not in the database"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_fill_while_the_stream_is_down_is_recorded_within_seconds(
    trader: Cli, fake: FakeAlpaca, watch: Callable[..., RunningWatch]
) -> None:
    """Issue 31: the stream down and not back, --interval 60: the loop ticks every
    WATCH_STREAM_DOWN_INTERVAL seconds (5 by default) meanwhile."""
    open_aapl(trader, "--entry", "148")
    running = watch("--interval", "60", "--json")
    running.document(connected_tick)
    fake.refuse_stream_connections()
    fake.drop_stream_connections()
    running.document(lambda d: d["stream"]["state"] == "reconnecting")
    ticks = fake.count("GET", "/v2/account")
    fake.set_price("AAPL", "147.90")  # the limit entry fills while nobody listens
    assert [e.delivered for e in fake.stream_events if e.event == "fill"] == [0]
    assert until_filled(trader, 5 + 3) < 5 + 3  # the default short interval, and some slack
    tick = running.document(lambda d: is_tick(d) and "AAPL: open (filled)" in d["changes"])
    assert tick["stream"]["state"] == "reconnecting" and fake.count("GET", "/v2/account") > ticks


def test_when_the_stream_reconnects_the_orders_are_read_at_once(
    trader: Cli, fake: FakeAlpaca, watch: Callable[..., RunningWatch]
) -> None:
    """Issue 31: a fill in the gap is read by the tick that follows the reconnect, not 60 s
    later (the short interval while down is set long here, so only the reconnect can do it)."""
    open_aapl(trader, "--entry", "148")
    running = watch("--interval", "60", "--json", env={"WATCH_STREAM_DOWN_INTERVAL": "60"})
    running.document(connected_tick)
    fake.refuse_stream_connections()
    fake.drop_stream_connections()
    running.document(lambda d: d["stream"]["state"] == "reconnecting")
    fake.set_price("AAPL", "147.90")  # filled in the gap: never sent to this client
    assert [e.delivered for e in fake.stream_events if e.event == "fill"] == [0]
    time.sleep(0.5)
    assert fill_row(trader) is None  # nothing read it yet
    fake.refuse_stream_connections(False)
    fake.wait_for_stream(lambda c: c.listening == 1, WAIT)
    assert until_filled(trader, 5) < 5  # the stream retries within 2 s, then a tick at once
    tick = running.document(lambda d: is_tick(d) and "AAPL: open (filled)" in d["changes"])
    assert tick["stream"]["state"] == "connected"


def test_refused_stream_keys_are_reported_and_the_rest_loop_goes_on(
    trader: Cli, fake: FakeAlpaca, watch: Callable[..., RunningWatch]
) -> None:
    fake.refuse_stream_keys()
    open_aapl(trader, "--entry", "148")
    running = watch("--interval", "1", "--json")
    refused = running.document(lambda d: d["stream"]["state"] == "unauthorized")
    assert "access key verification failed" in refused["stream"]["detail"]
    fake.set_price("AAPL", "147.90")
    later = running.document(lambda d: is_tick(d) and bool(d["changes"]))
    assert later["error"] is None and later["equity"] is not None
    assert later["changes"] == ["AAPL: open (filled)"]  # the REST tick, as before the stream
    assert later["stream"]["state"] == "unauthorized"
    assert fake.stream_clients().accepted == 1  # no reconnect loop
    kinds = [e.kind for e in rows(trader.env["DATABASE_URL"], Event)]
    assert kinds.count("trade_updates_refused") == 1


@pytest.mark.parametrize("args, env", [
    (["--no-stream"], {}),
    ([], {"ALPACA_STREAM": "false"}),
], ids=["--no-stream", "ALPACA_STREAM=false"])
@pytest.mark.usefixtures("trader")
def test_with_the_stream_off_no_websocket_is_opened(
    fake: FakeAlpaca, watch: Callable[..., RunningWatch], args: list[str],
    env: dict[str, str]
) -> None:
    running = watch("--interval", "0.5", "--json", *args, env=env)
    for _ in range(3):
        assert running.document(is_tick)["stream"] == {"state": "off", "detail": None,
                                                       "dropped": 0}
    assert fake.stream_clients().accepted == 0
    assert fake.count("GET", "/v2/account") >= 3  # the REST loop ran


@pytest.mark.usefixtures("trader")
def test_without_the_sdk_installed_the_stream_is_off_and_says_why(
    fake: FakeAlpaca, watch: Callable[..., RunningWatch], tmp_path: Path
) -> None:
    """The REST path needs no SDK (docs/alpaca-sdk.md): a missing one turns the stream
    off, not the loop."""
    shadow = tmp_path / "no_sdk" / "alpaca_trade_api"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed here')\n")
    running = watch("--interval", "0.5", "--json", env={"PYTHONPATH": str(shadow.parent)})
    first, second = running.document(is_tick), running.document(is_tick)
    assert first["stream"]["state"] == "off" and first["error"] is None
    assert "alpaca-trade-api cannot be imported" in first["stream"]["detail"]
    assert second["equity"] is not None
    assert fake.stream_clients().accepted == 0
