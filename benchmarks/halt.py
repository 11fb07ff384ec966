"""Halt latency: `tradectl halt` from process start to every close submitted and recorded, for
1, 10, 100 and 500 positions, against the fake broker with 50 ms added to every request.

Each position is what `tradectl open` leaves behind: a filled bracket entry at the fake with
its take-profit and stop-loss legs working, and an open position in the SQLite database. They
are seeded directly (the fake answers instantly while seeding; MAX_OPEN_POSITIONS would refuse
500 opens). Normal path: DELETE /v2/positions?cancel_orders=true. Fallback path: that request
answers 500, so tradectl lists the positions, cancels the orders and closes symbol by symbol,
concurrently and within its client-side rate limit. Round trips are read off the fake's log.
Each run's floor: a bare Python process that imports requests and sends the same requests in the
same round trips to a fake seeded alike (measure.requests_floor_once); on the fallback path no
faster than tradectl's rate limit lets those requests through.

    python benchmarks/halt.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import string
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import measure
from measure import (
    LATENCY,
    Timing,
    Workspace,
    environment,
    print_table,
    ratio,
    seconds,
    tradectl_argv,
)
from sqlalchemy import func, select

from tests.fakes.alpaca import FakeAlpaca
from tests.support.db import orm_session
from tradectl.broker.alpaca import RATE_BURST, RATE_PER_SECOND
from tradectl.db.models import Cycle, Position
from tradectl.db.session import Database

SIZES = (1, 10, 100, 500)
NORMAL_TARGET = 1.5  # normal path at 500 positions within 1.5x of 1 position
ALPACA_PER_MINUTE = 200  # Alpaca's documented limit per account
PRICE, STOP, TARGET = Decimal("100"), Decimal("90"), Decimal("110")


def symbols(n: int) -> list[str]:
    """AAA, AAB, ...: n distinct tickers."""
    letters = string.ascii_uppercase
    return ["".join(t) for t in itertools.islice(itertools.product(letters, repeat=3), n)]


class FakeClient:
    """Plain HTTP to the fake, for seeding (tradectl itself is only ever run as a command)."""

    def __init__(self, fake: FakeAlpaca) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", urlsplit(fake.url).port,
                                                      timeout=30)
        self._headers = {"APCA-API-KEY-ID": fake.api_key,
                         "APCA-API-SECRET-KEY": fake.secret_key,
                         "Content-Type": "application/json"}

    def send(self, method: str, path: str, body: object = None) -> bytes:
        data = None if body is None else json.dumps(body)
        self._connection.request(method, path, body=data, headers=self._headers)
        answer = self._connection.getresponse()
        text = answer.read()
        if answer.status >= 300:
            raise SystemExit(f"{method} {path} at the fake: {answer.status} {text!r}")
        return text

    def close(self) -> None:
        self._connection.close()


def seed_broker(fake: FakeAlpaca, n: int) -> dict[str, str]:
    """n filled bracket entries with their two legs working; returns symbol -> client id."""
    latency, fake.latency = fake.latency, 0.0
    client = FakeClient(fake)
    client_ids = {}
    for symbol in symbols(n):
        fake.set_price(symbol, PRICE)
        client_ids[symbol] = f"tradectl-{uuid.uuid4().hex}"
        client.send("POST", "/v2/orders", {
            "symbol": symbol, "qty": "1", "side": "buy", "type": "market",
            "time_in_force": "day", "order_class": "bracket",
            "client_order_id": client_ids[symbol],
            "take_profit": {"limit_price": str(TARGET)}, "stop_loss": {"stop_price": str(STOP)}})
    client.close()
    fake.latency = latency
    return client_ids


def seed(fake: FakeAlpaca, database_url: str, n: int) -> None:
    """n positions as `tradectl open` leaves them: at the fake and in the database."""
    client_ids = seed_broker(fake, n)
    entries = {o["client_order_id"]: o for o in fake.orders_list(nested=True)}
    db = Database(database_url)
    with orm_session(db) as session:
        cycle = Cycle(status="active")
        session.add(cycle)
        session.flush()
        for symbol, client_id in client_ids.items():
            order = entries[client_id]
            session.add(Position(
                cycle_id=cycle.id, symbol=symbol, side="buy", qty=Decimal(1), entry_price=None,
                stop_loss=STOP, take_profit=TARGET, time_in_force="day", status="open",
                client_order_id=client_id, alpaca_order_id=order["id"],
                alpaca_status=order["status"], filled_qty=Decimal(order["filled_qty"]),
                filled_avg_price=Decimal(order["filled_avg_price"])))
    db.dispose()
    fake.clear_log()


def fake_close_all_seconds(n: int) -> float:
    """How long the fake itself takes to answer the close-all for n positions, without latency:
    its share of the halt's time, which a real broker's would replace."""
    with measure.fake_broker(0.0) as fake:
        seed_broker(fake, n)
        client = FakeClient(fake)
        started = time.monotonic()
        client.send("DELETE", "/v2/positions?cancel_orders=true")
        elapsed = time.monotonic() - started
        client.close()
    return elapsed


@dataclass
class HaltRun:
    seconds: float  # process start to exit
    to_report: float  # process start to the report on stdout: every close recorded
    requests: int
    reported_requests: int | None
    round_trips: int
    peak: int
    per_minute: int  # most requests started in any 60 s
    phases: measure.Phases
    endpoints: str
    recorded: int  # positions the database shows closed or closing after the halt
    left_at_broker: int
    path: str
    floor: measure.Run  # the same requests from a bare-requests process
    floor_phases: measure.Phases

    @property
    def floor_seconds(self) -> float:
        """The floor to its last answer; on the fallback, at least the rate limit's time."""
        return max(self.floor.to_output, self.floor_phases.before + rate_floor(self.requests))


def halt_once(ws: Workspace, n: int, fallback: bool) -> HaltRun:
    with measure.fake_broker(LATENCY) as fake:
        url = ws.database_url()
        seed(fake, url, n)
        if fallback:
            fake.inject("DELETE", r"^/v2/positions$", status=500)
        env = environment(DATABASE_URL=url, **measure.broker_settings(fake))
        result = measure.run([*tradectl_argv(), "halt", "--reason", "bench", "--json"], env,
                             ws.dir).check(f"halt, {n} positions")
        report = json.loads(result.stdout)
        log = fake.requests
        starts = [e.monotonic for e in log]
        left = len(fake.positions_list())
    with measure.fake_broker(LATENCY) as fake:  # the floor: the same book, the same requests
        seed_broker(fake, n)
        if fallback:
            fake.inject("DELETE", r"^/v2/positions$", status=500)
        floor, floor_log = measure.requests_floor_once(log, fake, ws.dir)
    db = Database(url)
    with orm_session(db) as session:
        recorded = session.scalar(select(func.count()).select_from(Position).where(
            Position.status.in_(("closed", "closing")), Position.exit_order_id.is_not(None)))
    db.dispose()
    return HaltRun(result.seconds, result.to_output, len(log), report.get("broker_requests"),
                   measure.round_trips(starts, LATENCY), measure.peak_concurrency(starts, LATENCY),
                   measure.most_in_window(starts, 60.0), measure.Phases.of(result, log),
                   measure.by_endpoint(log), recorded or 0, left, report["path"], floor,
                   measure.Phases.of(floor, floor_log))


def rate_floor(requests: int) -> float:
    """Seconds the client-side token bucket alone needs to let `requests` through."""
    return max(0, requests - RATE_BURST) / RATE_PER_SECOND


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run per size; fallback at 1 and 10 positions only")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs per size on the normal path (default 5; median shown)")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    fallback_sizes = (1, 10) if args.quick else SIZES
    began = time.perf_counter()
    print(f"tradectl halt against the fake broker with {LATENCY * 1000:.0f} ms per request; "
          f"{measure.machine()}")
    if not args.quick:
        estimate = rate_floor(max(fallback_sizes) + 5)
        print(f"(the fallback at {max(fallback_sizes)} positions takes about {estimate:.0f} s: "
              f"tradectl's own rate limit, {RATE_PER_SECOND * 60:.0f}/min after a burst of "
              f"{RATE_BURST})")

    with Workspace() as ws:
        # Round-robin over the sizes, each run beside a run of the floor: background load and
        # the machine's own drift fall on every size and the floor alike.
        plan = [("normal", n) for _ in range(repeat) for n in SIZES] + [("fallback", n)
                                                                        for n in fallback_sizes]
        halt_once(ws, 1, False)  # warm-up: bytecode and page caches
        measured: dict[tuple[str, int], list[HaltRun]] = {}
        for path, n in plan:
            measured.setdefault((path, n), []).append(halt_once(ws, n, path == "fallback"))

        rows, details = [], []
        medians: dict[tuple[str, int], float] = {}
        for (path, n), runs in measured.items():
            to_report = Timing.of([r.to_report for r in runs]).median
            medians[(path, n)] = to_report
            last = runs[-1]
            floor_s = Timing.of([r.floor_seconds for r in runs]).median
            closed = f"{last.recorded}/{n}" + (f", {last.left_at_broker} left at the broker"
                                               if last.left_at_broker else "")
            rows.append([n, f"{path} ({last.path})", seconds(to_report),
                         ratio(to_report, medians[(path, 1)]),
                         seconds(Timing.of([r.seconds for r in runs]).median),
                         last.requests, last.round_trips, last.peak, last.per_minute,
                         seconds(last.phases.before), seconds(last.phases.broker),
                         seconds(last.phases.after), seconds(floor_s), ratio(to_report, floor_s),
                         closed])
            reported = ("" if last.reported_requests == last.requests else
                        f"  (tradectl counted {last.reported_requests})")
            details.append(f"{n:>4} {path:<8} {last.endpoints}{reported}")

        print_table(
            f"Halt: median of {repeat} on the normal path, 1 run on the fallback, each beside "
            "its bare-requests floor",
            ["positions", "path", "to report s", "vs N=1", "to exit s", "requests",
             "round trips", "peak concurrent", "most in 60 s", "start s", "broker s", "after s",
             "floor s", "vs floor", "closed+recorded"], rows)
        print("\n".join([
            "",
            "to report: process start to the --json report on stdout (printed once every close "
            "is recorded)",
            "round trips: requests starting within 50 ms of each other overlap and count once "
            "(concurrent reads",
            "  are one round trip); peak concurrent: requests in flight at once; most in 60 s: "
            f"against Alpaca's {ALPACA_PER_MINUTE}/min",
            "start / broker / after (last run): process start to the first request, first "
            "request to the last",
            "  answer the fake sent (its own work included), last answer to the report "
            "(tradectl's work on the answers)",
            "floor: the same requests from a bare-requests process, to its last answer (median); "
            "on the fallback\n  at least its start + the rate limit's time for the requests",
            "closed+recorded: positions the database shows closed or closing (and none left at "
            "the fake)",
        ]))
        print("\nrequests by endpoint:")
        for line in details:
            print("  " + line)

        normal = [measured[("normal", n)][-1] for n in SIZES]
        exits = {n: Timing.of([r.seconds for r in measured[("normal", n)]]).median
                 for n in SIZES}
        one, most = medians[("normal", SIZES[0])], medians[("normal", SIZES[-1])]
        trips = {r.round_trips for r in normal}
        counts = {r.requests for r in normal}
        fallback_runs = [r for (path, _), runs in measured.items() if path == "fallback"
                         for r in runs]
        fallback_peak = max(r.peak for r in fallback_runs)
        fallback_minute = max(r.per_minute for r in fallback_runs)
        all_recorded = all(r.recorded == n and r.left_at_broker == 0
                           for (_, n), runs in measured.items() for r in runs)
        largest = SIZES[-1]
        print(f"\nthe fake alone takes {fake_close_all_seconds(largest):.3f} s to answer the "
              f"close-all for {largest} positions (no latency; building and serializing its "
              "answer):\n  that is inside every figure above at that size")
        measure.print_verdicts([
            (f"normal path at {SIZES[-1]} positions within {NORMAL_TARGET}x of 1 position "
             "(to report)", most <= NORMAL_TARGET * one,
             f"{most / one:.2f}x; to exit: {exits[SIZES[-1]] / exits[SIZES[0]]:.2f}x"),
            # Requests may grow by one: past 500 orders (Alpaca's page) the oldest page of
            # orders is read beside the newest, in the same round trip.
            ("round trips constant on the normal path", len(trips) == 1,
             f"round trips {sorted(trips)}, requests {sorted(counts)}"),
            ("every position closed at the fake and recorded in the database", all_recorded, ""),
            ("fallback: per-symbol closes run concurrently", fallback_peak > 1,
             f"at most {fallback_peak} in flight"),
            (f"fallback: at most {ALPACA_PER_MINUTE} requests in any 60 s (Alpaca's limit)",
             fallback_minute <= ALPACA_PER_MINUTE, f"most in 60 s: {fallback_minute}"),
        ])
    print(f"\n(finished in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
