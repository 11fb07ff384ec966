"""The trading gate: the cross-process lock that makes "read the cycle, then act" one step.

`open` holds it from its cycle check through submitting the order, `resume` while it starts a
cycle, `halt` while it latches the stop. The holder's critical step is bounded (an order submit
by ALPACA_TIMEOUT), so waiting for it is bounded too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tradectl.db.session import Database
from tradectl.errors import DatabaseError

GATE_WAIT_SECONDS = 30.0


@contextmanager
def trading_gate(db: Database, wait: float = GATE_WAIT_SECONDS) -> Iterator[None]:
    """Hold the gate, or fail with DatabaseError when another process keeps it past `wait`."""
    with db.lock("cycle", wait=wait) as held:
        if not held:
            raise DatabaseError(f"another tradectl process has held the trading gate for "
                                f"{wait:.0f}s; try again")
        yield
