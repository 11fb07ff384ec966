"""The fake Alpaca on its own: a fresh server per test with two prices, and a plain HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.adapters.fake_alpaca.client import Client
from tests.fakes.alpaca import FakeAlpaca


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as server:
        server.set_price("AAPL", "150")
        server.set_price("MSFT", "300")
        yield server


@pytest.fixture
def api(fake: FakeAlpaca) -> Client:
    return Client(fake)
