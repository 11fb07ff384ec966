"""End to end against a bare-`requests` floor: `open`, `status` and `halt` from process start to
exit (and to their --json document), each run followed by its floor: a bare Python process that
imports requests and sends the same requests in the same round trips (side by side where the
command's overlapped), against the fake broker set up alike, 50 ms per request. Issue 30's
targets: `halt`'s close-all reaching the broker within 1.3x of the floor's first request (process
start to the request's arrival at the fake), and `halt`, `open` and `status` start to exit within
2.0x of their floors.

Each command gets a fresh migrated SQLite database per run; `status` reads one with a position
open; `open` and `halt` get a fresh fake per run, and their floors another set up alike (`halt`
flattens one position, seeded as `tradectl open` leaves things). Commands and floors alternate,
so background load falls on both.

    python benchmarks/end_to_end.py [--runs 9] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import measure
from halt import seed, seed_broker
from measure import (
    LATENCY,
    Floor,
    Run,
    Timing,
    Workspace,
    environment,
    print_table,
    ratio,
    seconds,
    tradectl_argv,
)

from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.alpaca.server import Exchange

Outcome = tuple[Run, list[Exchange], Run, list[Exchange]]
GOAL = 2.0  # halt, open and status start to exit within 2.0x of their floors
CLOSE_ALL_GOAL = 1.3  # halt's close-all at the broker within 1.3x of the floor's first request
OPEN_ARGS = ["open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--json"]
STATUS_ARGS = ["status", "--json"]
HALT_ARGS = ["halt", "--reason", "bench", "--json"]


@dataclass
class Case:
    name: str
    once: Callable[[], tuple[Run, list[Exchange], Run, list[Exchange]]]  # command, floor, logs
    runs: list[Run] = field(default_factory=list)
    floors: list[Run] = field(default_factory=list)
    log: list[Exchange] = field(default_factory=list)
    # process start to its first request, first request to the last answer: command, floor
    phases: list[tuple[measure.Phases, measure.Phases]] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per command (default 9)")
    parser.add_argument("--quick", action="store_true", help="3 runs per command")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    began = time.perf_counter()
    print(f"open, status and halt end to end against a bare-requests process sending the same "
          f"requests, {LATENCY * 1000:.0f} ms per request, {runs} runs each; {measure.machine()}")

    with Workspace() as ws, measure.fake_broker(LATENCY) as fake:
        fake.set_price("AAPL", "150.00")
        status_url = ws.database_url()
        opened = measure.run([*tradectl_argv(), *OPEN_ARGS],
                             environment(DATABASE_URL=status_url, **measure.broker_settings(fake)),
                             ws.dir).check("tradectl open (for status)")
        assert json.loads(opened.stdout)["alpaca_order_id"]

        def command(argv: list[str], url: str, broker: FakeAlpaca) -> tuple[Run, list[Exchange]]:
            broker.clear_log()
            env = environment(DATABASE_URL=url, **measure.broker_settings(broker))
            result = measure.run([*tradectl_argv(), *argv], env, ws.dir).check(argv[0])
            return result, broker.requests

        def open_once() -> Outcome:
            # A fresh fake each: Alpaca holding AAPL already would refuse the open.
            with measure.fake_broker(LATENCY) as broker:
                broker.set_price("AAPL", "150.00")
                result, log = command(OPEN_ARGS, ws.database_url(), broker)
            with measure.fake_broker(LATENCY) as broker:
                broker.set_price("AAPL", "150.00")
                return result, log, *measure.requests_floor_once(log, broker, ws.dir)

        def status_once() -> Outcome:
            result, log = command(STATUS_ARGS, status_url, fake)
            return result, log, *measure.requests_floor_once(log, fake, ws.dir)

        def halt_once() -> Outcome:
            with measure.fake_broker(LATENCY) as broker:
                url = ws.database_url()
                seed(broker, url, 1)
                result, log = command(HALT_ARGS, url, broker)
            with measure.fake_broker(LATENCY) as broker:  # the floor flattens the same book
                seed_broker(broker, 1)
                return result, log, *measure.requests_floor_once(log, broker, ws.dir)

        cases = [Case("open", open_once), Case("status", status_once), Case("halt", halt_once)]
        for case in cases:  # warm-up: bytecode and page caches
            case.once()
        for _ in range(runs):
            for case in cases:
                result, case.log, floor_run, floor_log = case.once()
                case.runs.append(result)
                case.floors.append(floor_run)
                case.phases.append((measure.Phases.of(result, case.log),
                                    measure.Phases.of(floor_run, floor_log)))

    rows, verdicts = [], []
    for case in cases:
        floor = Floor.of(case.floors)
        output = Timing.of([r.to_output for r in case.runs])
        exited = Timing.of([r.seconds for r in case.runs])
        rows.append([f"tradectl {case.name}", len(case.log),
                     measure.round_trips([e.monotonic for e in case.log], LATENCY),
                     f"{seconds(output.median)} ({seconds(output.min)})",
                     f"{seconds(floor.output.median)} ({seconds(floor.output.min)})",
                     ratio(output.median, floor.output.median),
                     f"{seconds(exited.median)} ({seconds(exited.min)})",
                     f"{seconds(floor.exit.median)} ({seconds(floor.exit.min)})",
                     ratio(exited.median, floor.exit.median)])
        if case.name == "halt":
            command_first = Timing.of([c.before for c, _ in case.phases]).median
            floor_first = Timing.of([f.before for _, f in case.phases]).median
            verdicts.append((f"halt's close-all at the broker within {CLOSE_ALL_GOAL}x of the "
                             "bare script's", command_first <= CLOSE_ALL_GOAL * floor_first,
                             f"{command_first:.3f} s vs {floor_first:.3f} s: "
                             f"{command_first / floor_first:.2f}x"))
        if case.name in ("open", "halt", "status"):
            verdicts.append((f"{case.name} end to end within {GOAL}x of its bare-requests floor",
                             exited.median <= GOAL * floor.exit.median,
                             f"{exited.median / floor.exit.median:.2f}x to exit, "
                             f"{output.median / floor.output.median:.2f}x to its document"))
    print_table(f"Median of {runs} runs (min in brackets), seconds from process start",
                ["command", "requests", "round trips", "to --json s", "floor: to last answer s",
                 "ratio", "to exit s", "floor: to exit s", "ratio"], rows)
    for case in cases:
        print(f"  {case.name}: {measure.by_endpoint(case.log)}")
    print_table("Where the time went (medians): process start to the first request, first "
                "request to the last answer, last answer to the --json document",
                ["command", "start s", "floor start s", "broker s", "floor broker s", "after s"],
                [[f"tradectl {case.name}", *(seconds(Timing.of(values).median) for values in (
                    [c.before for c, _ in case.phases], [f.before for _, f in case.phases],
                    [c.broker for c, _ in case.phases], [f.broker for _, f in case.phases],
                    [c.after for c, _ in case.phases]))] for case in cases])
    print("\nto --json: process start to the command's document on stdout (printed once the work "
          "is recorded);\n  floor: the same requests from `python -c 'import requests; ...'`, "
          "to its line after the last answer")
    measure.print_verdicts(verdicts)
    print(f"\n(finished in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
