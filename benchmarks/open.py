"""Open latency: `tradectl open AAPL --qty 1 --stop 145 --target 160 --json` from process start
to the order acknowledged, against the fake broker with 50 ms added to every request.

A market entry needs the latest trade, the account and the positions (read side by side) for its
checks, then the order: two round trips. "Acknowledged" is the moment the JSON document reaches
stdout: tradectl prints it once Alpaca's answer is recorded. Each run gets a fresh migrated SQLite
database and a fresh fake (Alpaca already holding AAPL would refuse the open). The floor, after
each run: a bare Python process that imports requests and sends the same requests in the same
round trips to a fake set up alike (measure.requests_floor_once).

    python benchmarks/open.py [--runs 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

import measure
from measure import LATENCY, Floor, Timing, Workspace, environment, print_table, tradectl_argv

from tests.fakes.alpaca.server import Exchange

OPEN_ARGS = ["open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--json"]
MAX_ROUND_TRIPS = 2
GOAL = 2.0  # issue 17: within 2.0x of the bare-requests floor


def open_once(ws: Workspace) -> tuple[measure.Run, list[Exchange], measure.Run]:
    """One open against a fresh fake, then its floor against another."""
    with measure.fake_broker(LATENCY) as fake:
        fake.set_price("AAPL", "150.00")
        env = environment(DATABASE_URL=ws.database_url(), **measure.broker_settings(fake))
        result = measure.run([*tradectl_argv(), *OPEN_ARGS], env, ws.dir).check("tradectl open")
        if not json.loads(result.stdout).get("alpaca_order_id"):
            raise SystemExit(f"no order acknowledged: {result.stdout}")
        log = fake.requests
    with measure.fake_broker(LATENCY) as fake:
        fake.set_price("AAPL", "150.00")
        floor, _ = measure.requests_floor_once(log, fake, ws.dir)
    return result, log, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs (default 7; median shown)")
    parser.add_argument("--quick", action="store_true", help="3 runs")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    began = time.perf_counter()
    print(f"tradectl open against the fake broker with {LATENCY * 1000:.0f} ms per request, "
          f"{runs} runs; {measure.machine()}")

    with Workspace() as ws:
        open_once(ws)  # warm-up: bytecode and page caches, the template database
        opens = [open_once(ws) for _ in range(runs)]  # each beside its floor

    floor = Floor.of([f for _, _, f in opens])
    acked = Timing.of([r.to_output for r, _, _ in opens])
    exited = Timing.of([r.seconds for r, _, _ in opens])
    seconds, ratio = measure.seconds, measure.ratio
    print_table(
        f"Open (market entry), median of {runs} runs (min in brackets); floor = the same requests "
        "from a bare-requests process",
        ["", "to ack / last answer s", "to exit s", "ack vs floor", "exit vs floor"],
        [["bare-requests floor", f"{seconds(floor.output.median)} ({seconds(floor.output.min)})",
          f"{seconds(floor.exit.median)} ({seconds(floor.exit.min)})", "-", "-"],
         ["tradectl " + " ".join(OPEN_ARGS), f"{seconds(acked.median)} ({seconds(acked.min)})",
          f"{seconds(exited.median)} ({seconds(exited.min)})",
          ratio(acked.median, floor.output.median), ratio(exited.median, floor.exit.median)]])

    rows: list[list[object]] = []
    trips, requests = [], []
    for i, (result, log, _) in enumerate(opens, 1):
        starts = [e.monotonic for e in log]
        phases = measure.Phases.of(result, log)
        trips.append(measure.round_trips(starts, LATENCY))
        requests.append(len(log))
        rows.append([i, requests[-1], trips[-1],
                     seconds(phases.before), seconds(phases.broker), seconds(phases.after),
                     seconds(result.to_output), seconds(result.seconds)])
    print_table("Each run: broker traffic and where the time went",
                ["run", "requests", "round trips", "start s", "broker s", "after s",
                 "to ack s", "to exit s"], rows)
    print(f"\nrequests (last run): {measure.by_endpoint(opens[-1][1])}")
    print(f"round trips: requests starting within {LATENCY * 1000:.0f} ms of each other "
          "overlap and count once, so the reads\n  sent side by side are one round trip")
    print("start / broker / after: process start to the first request, first request to "
          "the last answer the fake\n  sent (the database is opened while the first reads are "
          "in flight), last answer to the JSON on stdout")
    measure.print_verdicts([
        (f"at most {MAX_ROUND_TRIPS} broker round trips per open",
         max(trips) <= MAX_ROUND_TRIPS, f"{max(trips)} round trips, {max(requests)} requests"),
        (f"process start to order acknowledged within {GOAL}x of the bare-requests floor",
         acked.median <= GOAL * floor.output.median,
         f"{acked.median:.3f} s vs {floor.output.median:.3f} s: "
         f"{acked.median / floor.output.median:.2f}x"),
    ])
    print(f"\n(finished in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
