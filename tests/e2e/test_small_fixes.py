"""Issue 23's smaller findings: a dry run on a SQLite path that does not exist yet creates no file
(with `open`, `halt` and `close`), and `watch --interval 0` says what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, broker_env
from tests.fakes.alpaca import FakeAlpaca


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeAlpaca) -> Cli:
    cli = Cli(monkeypatch, tmp_path)
    cli.env.update(broker_env(fake), DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    return cli


def test_a_dry_run_on_a_fresh_sqlite_path_creates_no_database(fresh: Cli, tmp_path: Path
                                                               ) -> None:
    opened = fresh("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160",
                   "--dry-run", "--json")
    assert opened.code == 0, opened.output
    assert opened.json()["dry_run"] is True and len(opened.json()["requests"]) == 1
    assert fresh("halt", "--reason", "test", "--dry-run").code == 0
    refused = fresh("close", "AAPL", "--dry-run")
    assert refused.code == 2 and "no live position in 'AAPL'" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("fresh")) == []
    assert fresh("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160").code == 0
    assert (tmp_path / "fresh.db").exists()  # the real command does create it


def test_watch_interval_zero_says_what_is_allowed(fresh: Cli) -> None:
    result = fresh("watch", "--interval", "0")
    assert result.code == 2
    assert "--interval must be more than 0 and at most 86400 seconds, got 0" in result.stderr
