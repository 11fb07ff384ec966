"""The broker reads an order's risk checks need, sent before the database is opened.

`open` sends them as soon as the bracket's shape is known good and opens the database while they
are in flight: one round trip of Alpaca's latency hidden behind local work. Only reads go out
here; the order itself waits for the risk checks.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from tradectl.broker import Account, BracketRequest, Broker, BrokerPosition, Clock
from tradectl.domain.bracket import check_bracket_shape


@dataclass(frozen=True)
class MarketFacts:
    base_price: Decimal | None  # the limit entry, or the last trade for a market entry
    account: Account | None  # None without a broker
    positions: tuple[BrokerPosition, ...] = ()  # what the broker holds
    clock: Clock | None = None  # Alpaca's market clock, read when a day rule needs it


@dataclass(frozen=True)
class PreTradeReads:
    """Reads in flight: the latest trade (market entries), the account and the positions."""

    spec: BracketRequest
    price: Future[Decimal] | None
    account: Future[Account] | None
    positions: Future[list[BrokerPosition]] | None
    clock: Future[Clock] | None = None

    def facts(self) -> MarketFacts:
        """Wait for the answers; the first failed read's BrokerError is raised."""
        if self.account is None or self.positions is None:
            return MarketFacts(self.spec.entry, None)
        base = self.price.result() if self.price is not None else self.spec.entry
        return MarketFacts(base, self.account.result(), tuple(self.positions.result()),
                           self.clock.result() if self.clock is not None else None)


def send_pre_trade_reads(broker: Broker | None, spec: BracketRequest, *,
                         market_clock: bool = False) -> PreTradeReads:
    """Check the bracket's shape (bad input sends nothing), then send the reads side by side;
    `market_clock`: Alpaca's clock too (NO_NEW_ENTRIES_BEFORE_CLOSE judges on it)."""
    check_bracket_shape(spec)
    if broker is None:
        return PreTradeReads(spec, None, None, None)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tradectl-pre-trade")
    price = pool.submit(broker.latest_trade_price, spec.symbol) if spec.entry is None else None
    reads = PreTradeReads(spec, price, pool.submit(broker.account),
                          pool.submit(broker.list_positions),
                          pool.submit(broker.clock) if market_clock else None)
    pool.shutdown(wait=False)  # the workers end with their reads, each bounded by ALPACA_TIMEOUT
    return reads
