"""Open latency: `tradectl open AAPL --qty 1 --stop 145 --target 160 --json` from process start
to the order acknowledged, against the fake broker with 50 ms added to every request.

A market entry needs the latest trade (read beside the account) for its checks, then the order:
two round trips. "Acknowledged" is the moment the JSON document reaches stdout: tradectl prints it
once Alpaca's answer is recorded. Each run gets a fresh migrated SQLite database, so the
one-position-per-symbol rule never refuses. The floor, measured in the same run and interleaved:
`python -c "import sqlalchemy.orm, alpaca_trade_api.rest"` (plus one print, to time the end of
its imports apart from its exit) and two round trips of 50 ms.

    python benchmarks/open.py [--runs 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

import measure
from measure import LATENCY, Floor, Timing, Workspace, environment, print_table, tradectl_argv

OPEN_ARGS = ["open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--json"]
MAX_ROUND_TRIPS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs (default 7; median shown)")
    parser.add_argument("--quick", action="store_true", help="3 runs")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    began = time.perf_counter()
    print(f"tradectl open against the fake broker with {LATENCY * 1000:.0f} ms per request, "
          f"{runs} runs; {measure.machine()}")

    with Workspace() as ws, measure.fake_broker(LATENCY) as fake:
        fake.set_price("AAPL", "150.00")
        argv = [*tradectl_argv(), *OPEN_ARGS]

        def open_once() -> tuple[measure.Run, list]:
            env = environment(DATABASE_URL=ws.database_url(), **measure.broker_settings(fake))
            fake.clear_log()
            result = measure.run(argv, env, ws.dir).check("tradectl open")
            if not json.loads(result.stdout).get("alpaca_order_id"):
                raise SystemExit(f"no order acknowledged: {result.stdout}")
            return result, fake.requests

        open_once()  # warm-up: bytecode and page caches, the template database
        floor_runs, opens = [], []
        for _ in range(runs):  # interleaved: background load falls on both alike
            floor_runs.append(measure.import_floor_once(ws.dir))
            opens.append(open_once())

        floor = Floor.of(floor_runs)
        acked = Timing.of([r.to_output for r, _ in opens])
        exited = Timing.of([r.seconds for r, _ in opens])
        target = floor.imported.median + MAX_ROUND_TRIPS * LATENCY
        target_exit = floor.exit.median + MAX_ROUND_TRIPS * LATENCY
        seconds, ratio = measure.seconds, measure.ratio
        print_table(
            f"Open (market entry), median of {runs} runs (min in brackets); floor = import floor "
            f"+ 2 x {LATENCY * 1000:.0f} ms",
            ["", "to ack / imports done s", "to exit s", "ack vs floor", "exit vs floor"],
            [["import floor", f"{seconds(floor.imported.median)} ({seconds(floor.imported.min)})",
              f"{seconds(floor.exit.median)} ({seconds(floor.exit.min)})", "-", "-"],
             ["floor: import floor + 2 round trips", seconds(target), seconds(target_exit),
              "1.00x", "1.00x"],
             ["tradectl " + " ".join(OPEN_ARGS), f"{seconds(acked.median)} ({seconds(acked.min)})",
              f"{seconds(exited.median)} ({seconds(exited.min)})", ratio(acked.median, target),
              ratio(exited.median, target_exit)]])

        rows: list[list[object]] = []
        trips, requests = [], []
        for i, (result, log) in enumerate(opens, 1):
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
              "overlap and count once, so the latest trade\n  and the account, read side by "
              "side, are one round trip")
        print("start / broker / after: process start to the first request, first request to "
              "the last answer the fake\n  sent (the database is opened while the first reads are "
              "in flight), last answer to the JSON on stdout")
        measure.print_verdicts([
            (f"at most {MAX_ROUND_TRIPS} broker round trips per open",
             max(trips) <= MAX_ROUND_TRIPS, f"{max(trips)} round trips, {max(requests)} requests"),
            ("process start to order acknowledged within the import floor + 2 round trips",
             acked.median <= target,
             f"{acked.median:.3f} s vs {target:.3f} s: "
             f"{(acked.median - target) * 1000:+.0f} ms"),
        ])
    print(f"\n(finished in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
