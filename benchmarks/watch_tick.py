"""The watch tick's own cost: time, broker calls and SQL statements per tick for a growing book.

The broker is an in-memory stand-in answering instantly, so the figures exclude Alpaca's latency
and measure tradectl alone (database work, syncing, building the view).

    python benchmarks/watch_tick.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.db import orm_session
from tradectl.broker import Account, BrokerPosition, Clock, Order
from tradectl.db.models import Cycle, Position
from tradectl.db.session import Database
from tradectl.services.watch.watch import Watcher

NOW = datetime.now(UTC)


@dataclass
class InstantBroker:
    """Answers the three reads of a tick from memory and counts them."""

    orders: list[Order] = field(default_factory=list)
    positions: list[BrokerPosition] = field(default_factory=list)
    calls: int = 0

    def account(self) -> Account:
        self.calls += 1
        return Account("BENCH", "ACTIVE", "USD", Decimal(50000), Decimal(100000),
                       Decimal(100000), Decimal(100000), Decimal(200000), False, False, False)

    def list_positions(self) -> list[BrokerPosition]:
        self.calls += 1
        return self.positions

    def list_orders(self, **_: object) -> list[Order]:
        self.calls += 1
        return self.orders

    def clock(self) -> Clock:  # not used by a tick
        raise NotImplementedError

    # The Broker Protocol's signature; a tick never asks.
    def find_order_by_client_id(self, client_order_id: str) -> Order | None:  # noqa: ARG002
        raise AssertionError("a tick on a healthy book makes no per-position call")


def seed(db: Database, broker: InstantBroker, count: int) -> None:
    with orm_session(db) as session:
        session.add(Cycle(status="active"))
        session.flush()
        session.add_all(
            Position(cycle_id=1, symbol=f"S{n:05d}", side="buy", qty=Decimal(10),
                     stop_loss=Decimal("40.00"), take_profit=Decimal("60.00"), status="open",
                     client_order_id=f"bench-{n}", alpaca_order_id=f"order-{n}",
                     alpaca_status="filled", filled_qty=Decimal(10),
                     filled_avg_price=Decimal("50.00"))
            for n in range(count)
        )
    for n in range(count):
        legs = tuple(Order(f"leg-{n}-{kind}", "", f"S{n:05d}", "sell", kind, "new", Decimal(10),
                           Decimal(0), None) for kind in ("limit", "stop"))
        broker.orders.append(Order(f"order-{n}", f"bench-{n}", f"S{n:05d}", "buy", "market",
                                   "filled", Decimal(10), Decimal(10), Decimal("50.00"),
                                   order_class="bracket", legs=legs))
        broker.positions.append(BrokerPosition(f"S{n:05d}", "long", Decimal(10), Decimal("50.00"),
                                               Decimal("51.00"), Decimal("510.00"),
                                               Decimal("10.00")))


def measure(url: str, count: int, ticks: int) -> tuple[float, float, int, int]:
    db = Database(url)
    db.upgrade()
    broker = InstantBroker()
    seed(db, broker, count)
    # `watch` freezes what exists once it is set up; the seeded answers stand in for Alpaca's and
    # must not weigh on the collector as if they were tradectl's own per-tick garbage.
    gc.freeze()
    statements = 0

    def counted(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.engine, "before_cursor_execute", counted)
    # No channels: a tick on a healthy book sends nothing, and one that tried would fail loudly.
    watcher = Watcher(db, broker, None, daily_loss_limit=Decimal(2000),  # type: ignore[arg-type]
                      drives_stops=True)
    watcher.tick()  # warm-up: caches, first sync
    times = []
    broker.calls = statements = 0
    for _ in range(ticks):
        started = time.perf_counter()
        result = watcher.tick()
        times.append(time.perf_counter() - started)
        assert result.error is None and len(result.positions) == count
    db.dispose()
    gc.unfreeze()
    return statistics.median(times), min(times), broker.calls // ticks, statements // ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and ticks")
    parser.add_argument("--database-url", help="default: a temporary SQLite file per size")
    args = parser.parse_args()
    sizes = (10, 100, 1000) if args.quick else (10, 100, 1000, 10000)
    ticks = 3 if args.quick else 7
    print(f"watch tick, broker answering instantly; median of {ticks} ticks")
    print(f"{'positions':>10} {'median ms':>10} {'min ms':>8} {'per pos. µs':>12} "
          f"{'broker calls':>13} {'SQL stmts':>10}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for count in sizes:
            url = args.database_url or f"sqlite:///{Path(scratch) / f'tick-{count}.db'}"
            median, fastest, calls, statements = measure(url, count, ticks)
            rows.append((count, median, calls, statements))
            print(f"{count:>10} {median * 1000:>10.1f} {fastest * 1000:>8.1f} "
                  f"{median / count * 1e6:>12.1f} {calls:>13} {statements:>10}")
    at_1000 = next(m for c, m, _, _ in rows if c == 1000)
    constant_calls = len({c for _, _, c, _ in rows}) == 1
    constant_sql = len({s for _, _, _, s in rows}) == 1
    per_position = [m / c for c, m, _, _ in rows if c >= 100]
    linear = all(b <= a * 1.5 for a, b in pairwise(per_position))
    print(f"{'PASS' if at_1000 < 0.1 else 'MISS'}  tick under 100 ms at 1,000 positions "
          f"({at_1000 * 1000:.1f} ms)")
    print(f"{'PASS' if constant_calls else 'MISS'}  broker calls per tick constant")
    print(f"{'PASS' if constant_sql else 'MISS'}  SQL statements per tick constant")
    print(f"{'PASS' if linear else 'MISS'}  time per position does not grow (no worse than linear)")


if __name__ == "__main__":
    main()
