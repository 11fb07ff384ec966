"""Hypothesis strategies shared by the property tests."""

from decimal import Decimal

from hypothesis import strategies as st


def price(units: int) -> Decimal:
    """A price from a whole number of ten-thousandths of a dollar."""
    return Decimal(units) / 10000


def ticks(low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Prices on Alpaca's tick (four places below $1, cents from $1) between low and high, both
    in ten-thousandths of a dollar."""
    options = []
    if low <= min(high, 9999):
        options.append(st.integers(low, min(high, 9999)))
    cents_low, cents_high = max(-(-low // 100), 100), high // 100
    if cents_low <= cents_high:
        options.append(st.integers(cents_low, cents_high).map(lambda c: c * 100))
    return st.one_of(options).map(price)
