"""Through the command: the pre-trade reads start before the database opens, so what the database
refuses must still leave the broker without an order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, broker_env
from tests.fakes.alpaca import FakeAlpaca

OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")


@pytest.mark.parametrize(("url", "code", "said", "reads_allowed"), [
    ("postgresql://u:pw@host:abc/db", 2, "DATABASE_URL", 0),  # bad settings: no broker read
    ("postgresql://trader@127.0.0.1:1/tradectl", 5, "127.0.0.1:1", 3),  # unreachable: no order
])
def test_what_the_database_refuses_leaves_the_broker_without_an_order(
    fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    url: str, code: int, said: str, reads_allowed: int,
) -> None:
    cli = Cli(monkeypatch, tmp_path)
    cli.env.update(broker_env(fake), DATABASE_URL=url)
    result = cli(*OPEN)
    assert result.code == code and said in result.stderr, result.output
    assert len(fake.requests) <= reads_allowed, fake.requests
    assert all(r.method == "GET" for r in fake.requests)
