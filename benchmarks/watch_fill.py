"""Fill to row: how long after a fill at the broker a running `tradectl watch` has the position's
row updated (committed, seen by another connection), with Alpaca's trade-updates stream and
without it (`--no-stream`: the next tick), against the fake broker with 50 ms per request.

Each sample is a pending limit entry opened with `tradectl open`; the fake fills it by moving the
price. The fill's moment is the fake's own (its trade update's wall time, made whether or not
anyone listens); the row is polled every 5 ms in the SQLite file (WAL: the reader never blocks
`watch`). Without the stream the fills come at random moments of the tick interval: the wait is
the rest of the interval, uniform over it, plus the tick's own time.

    python benchmarks/watch_fill.py [--samples 9] [--no-stream-samples 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import measure
from measure import LATENCY, Timing, Workspace, environment, print_table, tradectl_argv

from tests.fakes.alpaca import FakeAlpaca

GOAL = 1.0  # seconds from a fill to the row, with the stream
PRICE = "100.00"
POLL = 0.005


class RunningWatch:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen([*tradectl_argv(), "watch", "--json", *args], env=env,
                                        cwd=cwd, stdout=subprocess.PIPE, text=True)
        self.documents: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.documents.put(json.loads(line))

    def first_tick(self) -> dict:
        return self.documents.get(timeout=60)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def open_pending(fake: FakeAlpaca, env: dict[str, str], cwd: Path, symbol: str) -> str:
    """A limit entry below the price: pending until the fake's price comes down to it."""
    fake.set_price(symbol, PRICE)
    result = measure.run([*tradectl_argv(), "open", symbol, "--qty", "1", "--entry", "99.00",
                          "--stop", "95", "--target", "110", "--json"], env, cwd)
    document = json.loads(result.check(f"open {symbol}").stdout)
    return str(document["alpaca_order_id"])


def row_status(path: Path, order_id: str) -> str | None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as reader:
        found = reader.execute("SELECT status FROM positions WHERE alpaca_order_id = ?",
                               (order_id,)).fetchone()
    return found[0] if found else None


def fill_to_row(fake: FakeAlpaca, path: Path, symbol: str, order_id: str) -> float:
    fake.set_price(symbol, "98.90")  # the limit entry fills, in this call
    fill = next(e for e in reversed(fake.stream_events)
                if e.order_id == order_id and e.event == "fill")
    deadline = time.monotonic() + 300
    while row_status(path, order_id) != "open":
        if time.monotonic() > deadline:
            raise SystemExit(f"{symbol}: the row was not updated within 300 s")
        time.sleep(POLL)
    return time.time() - fill.wall


def measure_mode(ws: Workspace, samples: int, interval: float, stream: bool) -> list[float]:
    with measure.fake_broker(LATENCY) as fake:
        url = ws.database_url()
        env = environment(DATABASE_URL=url, MAX_OPEN_POSITIONS="100",
                          **measure.broker_settings(fake))
        names = [f"F{'S' if stream else 'N'}{i:02d}" for i in range(samples)]
        orders = {name: open_pending(fake, env, ws.dir, name) for name in names}
        watch = RunningWatch(["--interval", f"{interval:g}", *([] if stream else ["--no-stream"])],
                             env, ws.dir)
        try:
            watch.first_tick()
            if stream:
                fake.wait_for_stream(lambda c: c.listening == 1, timeout=60)
            seconds = []
            for name in names:
                # With the stream, a short pause; without, a random moment of the interval.
                time.sleep(random.uniform(0.3, 1.0) if stream else random.uniform(0, interval))
                seconds.append(fill_to_row(fake, Path(url.removeprefix("sqlite:///")), name,
                                           orders[name]))
        finally:
            watch.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=9, help="fills with the stream")
    parser.add_argument("--no-stream-samples", type=int, default=4,
                        help="fills without it, at WATCH_INTERVAL=60 (about 35 s each)")
    parser.add_argument("--quick", action="store_true",
                        help="3 fills each; without the stream at --interval 5")
    args = parser.parse_args()
    began = time.perf_counter()
    with_samples, without_samples = (3, 3) if args.quick else (args.samples,
                                                               args.no_stream_samples)
    interval = 5.0 if args.quick else 60.0
    print(f"fill at the fake -> row updated by a running `tradectl watch`, {LATENCY * 1000:.0f} "
          f"ms per request; {measure.machine()}")
    with Workspace() as ws:
        streamed = measure_mode(ws, with_samples, 60.0, stream=True)
        ticked = measure_mode(ws, without_samples, interval, stream=False)

    rows = []
    for name, values, tick in (("with the stream (--interval 60)", streamed, 60.0),
                               (f"--no-stream (--interval {interval:g})", ticked, interval)):
        t = Timing.of(values)
        rows.append([name, len(values), f"{t.median:.3f}", f"{t.min:.3f}", f"{max(values):.3f}",
                     f"{tick:g}"])
    print_table("Seconds from the fill to the row updated", ["watch", "fills", "median", "min",
                                                              "max", "interval s"], rows)
    print("\nsamples with the stream: " + ", ".join(f"{v:.3f}" for v in streamed))
    print("samples without: " + ", ".join(f"{v:.3f}" for v in ticked))
    measure.print_verdicts([
        (f"with the stream, every fill in the row within {GOAL:g} s", max(streamed) < GOAL,
         f"max {max(streamed):.3f} s"),
    ])
    print(f"\n(finished in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
