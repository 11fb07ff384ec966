"""How soon the emergency stop latches and reaches the broker, alone and beside a stuck `watch`.

For `halt` run alone, and run beside a `watch` stuck in an SMTP exchange with a relay that never
answers (SMTP_TIMEOUT above SQLite's busy timeout: the case that used to fail the stop), it
prints the time from the halt process's start to (a) the latch committed in the database and
(b) the flatten request reaching the broker; medians of interleaved runs. The fake broker
answers after 50 ms, as in the other benchmarks.

    python benchmarks/halt_latch.py            # 7 runs of each (about 1.5 min)
    python benchmarks/halt_latch.py --quick    # 3 runs of each
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from measure import (
    PYTHON,
    Timing,
    Workspace,
    broker_settings,
    environment,
    fake_broker,
    run,
    tradectl_argv,
)

from tests.fakes.alpaca import FakeAlpaca
from tests.support.network import SilentServer


def latch_wall_time(database: Path) -> float:
    with sqlite3.connect(database) as connection:
        (stopped_at,) = connection.execute(
            "SELECT stopped_at FROM cycles WHERE status = 'stopped'").fetchone()
    return datetime.fromisoformat(stopped_at).replace(tzinfo=UTC).timestamp()  # stored in UTC


def one_run(workspace: Workspace, fake: FakeAlpaca, relay: SilentServer | None
            ) -> tuple[float, float]:
    fake.reset()
    for symbol, price in (("AAPL", "150"), ("TSLA", "250")):
        fake.set_price(symbol, price)
    url = workspace.database_url()
    env = environment(DATABASE_URL=url, **broker_settings(fake),
                      XDG_CONFIG_HOME=str(workspace.dir / "config"))
    for symbol, stop, target in (("AAPL", "145", "160"), ("TSLA", "240", "260")):
        run([*tradectl_argv(), "open", symbol, "--qty", "2", "--stop", stop, "--target",
             target], env, workspace.dir).check("open")
    watch = None
    if relay is not None:
        env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(relay.port), SMTP_STARTTLS="false",
                   ALERT_EMAIL_TO="t@example.test", SMTP_TIMEOUT="15")
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:  # an alert to send
            connection.execute(
                "INSERT INTO alerts (created_at, kind, subject, body, recipients, status, "
                "attempts) VALUES ('2026-01-01 00:00:00', 'test', 's', 'b', 'r', 'pending', 0)")
        accepted = relay.accepted
        watch = subprocess.Popen([*tradectl_argv(), "watch", "--interval", "1", "--json"],
                                 env=env, cwd=workspace.dir, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        while relay.accepted == accepted:  # the watch is inside its SMTP exchange now
            time.sleep(0.02)
        env["SMTP_HOST"] = ""  # the halt's own alert is not what is measured
    fake.clear_log()
    started = time.time()
    run([*tradectl_argv(), "halt", "--reason", "benchmark"], env, workspace.dir).check(
        "halt", codes=(0, 4))
    if watch is not None:
        watch.kill()
        watch.wait()
    flatten = next(r.wall for r in fake.requests if r.method == "DELETE")
    return latch_wall_time(Path(url.removeprefix("sqlite:///"))) - started, flatten - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    runs = 3 if parser.parse_args().quick else 7
    alone: list[tuple[float, float]] = []
    beside: list[tuple[float, float]] = []
    with Workspace() as workspace, fake_broker() as fake, SilentServer() as relay:
        for _ in range(runs):  # interleaved: background drift falls on both alike
            alone.append(one_run(workspace, fake, None))
            beside.append(one_run(workspace, fake, relay))
    print(f"halt latch, {runs} interleaved runs each, fake broker at 50 ms; {PYTHON}")
    print(f"{'halt':<38} {'to latch (median / min)':>24} {'to flatten at broker':>22}")
    for label, samples in (("alone", alone), ("beside a watch stuck on SMTP", beside)):
        latch, flatten = Timing.of([s[0] for s in samples]), Timing.of([s[1] for s in samples])
        print(f"{label:<38} {latch.median:>12.3f} / {latch.min:.3f} s "
              f"{flatten.median:>12.3f} / {flatten.min:.3f} s")


if __name__ == "__main__":
    main()
