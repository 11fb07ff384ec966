"""Every command's --json output matches its object in the contract (tests/cli/json_contract.py,
documented in docs/json.md), in success and in failure, on both databases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema

from tests.cli.json_contract import CONTRACT, ERROR
from tests.conftest import Cli, CliResult
from tests.fakes.alpaca import FakeAlpaca

DOCS = Path(__file__).parents[2] / "docs" / "json.md"


def valid(result: CliResult, name: str) -> dict[str, Any]:
    """One JSON object on stdout, matching `name`'s schema (or the error object on failure)."""
    assert result.stdout.count("\n") == 1, result.output
    document = result.json()
    schema = CONTRACT[name]
    if result.code and "error" in document and not set(schema["required"]) <= set(document):
        schema = ERROR  # failed before it had its own object to tell
    jsonschema.validate(document, schema)
    return document


def test_every_command_speaks_its_contract(trader: Cli, fake: FakeAlpaca) -> None:
    fake.add_position("GOOG", 10, "170")
    valid(trader("db", "upgrade", "--json"), "db")
    valid(trader("db", "current", "--json"), "db")
    valid(trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160", "--json"),
          "open")
    valid(trader("open", "TSLA", "--qty", "1", "--stop", "240", "--target", "260",
                 "--entry", "245", "--json"), "open")
    fake.inject("POST", r"^/v2/orders$", status=422, body={"code": 42210000,
                                                           "message": "qty must be > 0"})
    rejected = valid(trader("open", "MSFT", "--qty", "1", "--stop", "390", "--target", "410",
                            "--json"), "open")
    assert rejected["exit_code"] == 4 and rejected["http_status"] == 422
    refused = valid(trader("open", "GOOG", "--qty", "1", "--stop", "160", "--target", "180",
                           "--json"), "open")
    assert refused["rule"] == "open_position_in_symbol"
    valid(trader("open", "AAPL", "--qty", "x", "--stop", "1", "--target", "2", "--json"), "open")
    fake.set_price("AAPL", "161")
    valid(trader("watch", "--once", "--json"), "watch")
    valid(trader("watch", "--once", "--read-only", "--json"), "watch")
    day_rules = {"FLATTEN_BEFORE_CLOSE": "10", "MAX_TRADES_PER_DAY": "5"}
    watched = valid(trader("watch", "--once", "--read-only", "--json", env=day_rules), "watch")
    assert [r["name"] for r in watched["rules"]] == ["max_trades_per_day", "flatten_before_close"]
    valid(trader("status", "--json"), "status")
    valid(trader("log", "--json"), "log")
    valid(trader("log", "--kind", "nope", "--json"), "log")
    valid(trader("check-alpaca", "--json"), "check-alpaca")
    valid(trader("check-alpaca", "--json", env={"ALPACA_SECRET_KEY": "wrong"}), "check-alpaca")
    valid(trader("halt", "--reason", "contract", "--json"), "halt")
    valid(trader("halt", "--reason", "again", "--json"), "halt")
    valid(trader("resume", "--reason", "r", "--json"), "resume")
    fake.set_last_equity("110000")
    valid(trader("watch", "--once", "--json"), "watch")  # the stop, inside the tick
    valid(trader("resume", "--reason", "r", "--json"), "resume")  # refused: the error object
    valid(trader("resume", "--reason", "r", "--force", "--json"), "resume")
    valid(trader("status", "--json", env={"ALPACA_BASE_URL": "http://127.0.0.1:9"}), "status")
    valid(trader("status", "--json", env={"DATABASE_URL": "sqlite://"}), "status")
    valid(trader("report", "--json"), "report")
    valid(trader("alert", "test", "--json"), "alert test")  # no channel: the error object
    valid(trader("alert", "test", "--json", env={"ALERT_WEBHOOK_URL": "http://127.0.0.1:9/h"}),
          "alert test")


def test_the_position_commands_and_dry_runs_speak_their_contract(trader: Cli,
                                                                 fake: FakeAlpaca) -> None:
    for symbol, stop, target in (("AAPL", "145", "160"), ("TSLA", "240", "260")):
        valid(trader("open", symbol, "--qty", "2", "--stop", stop, "--target", target,
                     "--json"), "open")
    valid(trader("open", "MSFT", "--risk", "100", "--stop", "390", "--target", "410",
                 "--dry-run", "--json"), "dry-run")
    valid(trader("open", "MSFT", "--qty", "500", "--stop", "390", "--target", "410",
                 "--dry-run", "--json"), "dry-run")  # refused: exit 3, still the plan
    assert trader("watch", "--once").code == 0
    for args in (("close", "TSLA"), ("close", "NOPE"), ("adjust", "AAPL", "--stop", "146"),
                 ("adjust", "AAPL", "--stop", "170")):  # the last two: exit 2, the error
        valid(trader(*args, "--dry-run", "--json"), "dry-run")
    valid(trader("adjust", "AAPL", "--stop", "146", "--json"), "adjust")
    valid(trader("adjust", "AAPL", "--stop", "170", "--json"), "adjust")  # above the market
    valid(trader("halt", "--reason", "plan", "--dry-run", "--json"), "dry-run")
    valid(trader("close", "AAPL", "--dry-run", "--json"), "dry-run")
    valid(trader("adjust", "TSLA", "--target", "262", "--dry-run", "--json"), "dry-run")
    valid(trader("close", "TSLA", "--json"), "close")
    valid(trader("close", "NOPE", "--json"), "close")
    fake.set_price("AAPL", "161")
    assert trader("watch", "--once").code == 0
    valid(trader("report", "--json"), "report")


def test_the_documentation_names_every_field_of_every_object() -> None:
    documented = set(re.findall(r"`([a-z_]+)`", DOCS.read_text()))

    def fields(schema: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        for name, sub in schema.get("properties", {}).items():
            found.add(name)
            for nested in (sub, sub.get("items", {}), *sub.get("anyOf", ())):
                if isinstance(nested, dict):
                    found |= fields(nested) | fields(nested.get("items", {}))
        return found

    for name, schema in CONTRACT.items():
        missing = fields(schema) - documented
        assert not missing, f"docs/json.md does not name {sorted(missing)} ({name})"
