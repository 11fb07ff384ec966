"""The broker reads an order's risk checks need, sent before the database is opened.

`open` starts them as soon as the broker exists and imports the ORM and opens the database while
they are in flight: one round trip of Alpaca's latency hidden behind local work. Only reads go out
here, and only for a well-formed bracket; the order itself waits for the risk checks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from tradectl.broker import Account, Broker
from tradectl.risk import BracketSpec, check_bracket_shape


@dataclass(frozen=True)
class MarketFacts:
    base_price: Decimal | None  # the limit entry, or the last trade for a market entry
    account: Account | None  # None without a broker


def request_market_facts(broker: Broker | None, spec: BracketSpec) -> Callable[[], MarketFacts]:
    """Check the bracket's shape, then send the reads side by side (one round trip).

    Returns a call that waits for the answers and raises the first read's BrokerError.
    """
    check_bracket_shape(spec)
    if broker is None:
        facts = MarketFacts(spec.entry, None)
        return lambda: facts
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tradectl-pre-trade")
    price = pool.submit(broker.latest_trade_price, spec.symbol) if spec.entry is None else None
    account = pool.submit(broker.account)
    pool.shutdown(wait=False)  # the workers end with their reads, each bounded by ALPACA_TIMEOUT

    def wait() -> MarketFacts:
        base = price.result() if price is not None else spec.entry
        return MarketFacts(base, account.result())

    return wait
