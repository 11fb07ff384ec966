"""The one Context: the root command makes it, each part is built on first use (a command never
imports what it does not touch), and a command handed a Context of the in-process fakes runs
its real use case on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.context import FakeParts
from tradectl.cli.app import Context
from tradectl.config import DEFAULTS

OPEN = ("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")
PARTS = ("settings", "database", "database_as_is", "dry_run_database", "broker", "channels",
         "spool", "clock")
HEAVY = {"sqlalchemy", "alembic", "httpx", "httpcore", "alpaca_trade_api", "tradectl.db",
         "tradectl.broker.alpaca", "tradectl.net"}

MODULES_AFTER = """
import json, sys
from tradectl.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def built(ctx: Context) -> list[str]:
    return [name for name in PARTS if name in vars(ctx)]


def imported_by(args: tuple[str, ...], home: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env["XDG_CONFIG_HOME"] = str(home)
    run = subprocess.run([sys.executable, "-c", MODULES_AFTER, *args], capture_output=True,
                         text=True, env=env, cwd=home, timeout=60)
    return set(json.loads(run.stderr.strip().splitlines()[-1]))


@pytest.fixture
def bare_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    """The CLI with no setting at all (its default SQLite database, no keys)."""
    return Cli(monkeypatch, tmp_path)


@pytest.mark.parametrize("args", [("--help",), ("status", "--help"), ("open", "--help"),
                                  ("--version",)], ids=" ".join)
def test_help_and_version_build_no_part(bare_cli: Cli, args: tuple[str, ...]) -> None:
    ctx = Context()
    assert bare_cli(*args, context=ctx).code == 0
    assert built(ctx) == []


def test_a_command_builds_only_the_parts_it_uses(bare_cli: Cli) -> None:
    ctx = Context()
    result = bare_cli("alert", "test", "--json", context=ctx)
    assert result.code == 2 and "no alert channel" in result.json()["error"]
    assert built(ctx) == ["settings", "channels"]  # no database, no broker
    assert not (bare_cli.cwd / "config" / "tradectl" / "tradectl.db").exists()


@pytest.mark.parametrize("args", [("--help",), ("status", "--help"), ("--version",)],
                         ids=" ".join)
def test_help_and_version_import_no_database_or_http_library(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    modules = imported_by(args, tmp_path)
    assert "tradectl.cli.app" in modules  # the command ran
    assert not {m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY}


def test_open_then_status_work_on_the_parts_handed_in(cli: Cli, parts: FakeParts) -> None:
    opened = cli(*OPEN, "--json", context=parts.context())
    assert opened.code == 0, opened.output
    assert opened.json()["alpaca_order_id"]  # the in-process broker took it
    assert parts.broker is not None and "submit_bracket" in parts.broker.calls
    status = cli("status", "--json", context=parts.context()).json()
    assert [p["symbol"] for p in status["positions"]] == ["AAPL"]
    assert status["broker"]["configured"] is True and status["broker"]["account"] is not None


def test_halt_alerts_through_the_channel_handed_in(cli: Cli, parts: FakeParts) -> None:
    assert cli(*OPEN, context=parts.context()).code == 0
    result = cli("halt", "--reason", "context test", "--json", context=parts.context())
    assert result.code == 0, result.output
    assert result.json()["reason"] == "context test"
    assert parts.broker is not None and "close_all_positions" in parts.broker.calls
    assert [n.subject for n in parts.channel.sent if "EMERGENCY STOP" in n.subject]
    refused = cli(*OPEN, context=parts.context())
    assert refused.code == 3 and "stopped" in refused.stderr


def test_watch_once_ticks_on_the_parts_handed_in(cli: Cli, parts: FakeParts) -> None:
    assert cli(*OPEN, context=parts.context()).code == 0
    result = cli("watch", "--once", "--json", context=parts.context())
    assert result.code == 0, result.output
    assert parts.broker is not None and "account" in parts.broker.calls


def test_commands_read_the_time_from_the_clock_handed_in(cli: Cli, parts: FakeParts) -> None:
    """The Context's clock is the services' one clock: the stop latches at its time."""
    assert cli(*OPEN, context=parts.context()).code == 0
    parts.clock.advance(90)
    result = cli("halt", "--reason", "clock test", "--json", context=parts.context())
    assert result.code == 0, result.output
    assert result.json()["stopped_at"].startswith("2026-12-07T15:01:30")
