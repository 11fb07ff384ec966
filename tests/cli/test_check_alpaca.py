"""`tradectl check-alpaca` end to end: the real command against the fake Alpaca server, both
databases. Each failure must come with the cause a user would otherwise dig out of the docs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, ScratchDatabases, broker_env, closed_port
from tests.fakes.alpaca import FakeAlpaca
from tests.support.webhook import WebhookSink
from tradectl.db.models import HEAD_REVISION
from tradectl.db.session import Database
from tradectl.services.check.check_alpaca import NOT_ENABLED_FIX
from tradectl.services.check.database_check import database_checks

AUTH_CAUSE = "Invalid keys, or keys of the other mode"
NETWORK_CAUSE = "network or wrong base URL"



def checks_by_name(document: dict) -> dict[str, dict]:
    return {c["name"]: c for c in document["checks"]}


def only_reads(fake: FakeAlpaca) -> bool:
    return all(r.method == "GET" for r in fake.requests)


def test_all_checks_pass_against_a_healthy_broker(trader: Cli, fake: FakeAlpaca,
                                                   webhook: WebhookSink) -> None:
    trader.env["ALERT_WEBHOOK_URL"] = webhook.url
    result = trader("check-alpaca", "--json")
    assert result.code == 0, result.output
    document = result.json()
    checks = checks_by_name(document)
    assert document["ok"] is True and document["exit_code"] == 0
    assert {c["state"] for c in document["checks"]} == {"pass"}, document["checks"]
    assert list(checks) == ["keys", "trading mode", "key prefix", "base URLs", ".env file",
                            "alerts", "account", "trading allowed", "market clock", "latest trade",
                            "database", "schema"]
    account = fake.account()
    assert document["account"]["account_number"] == account["account_number"]
    assert document["account"]["cash"] == "100000.00" and document["account"]["day_pnl"] == "0.00"
    assert document["account"]["trading_blocked"] is False
    assert document["clock"]["is_open"] is True
    assert document["latest_trade"] == {"symbol": "AAPL", "price": "150.00"}
    assert document["database"]["reachable"] is True
    assert document["database"]["revision"] == HEAD_REVISION
    assert document["configuration"]["base_url"] == fake.url
    assert document["configuration"]["secret_key"] == "set"
    # the webhook shown as scheme and host only, and nothing sent to it (this command only reads)
    assert document["configuration"]["alert_webhook_url"] == f"http://127.0.0.1:{webhook.port}/…"
    assert checks["alerts"]["detail"].startswith(f"webhook http://127.0.0.1:{webhook.port}/… ")
    assert webhook.attempts == 0
    # three reads, side by side, and never an order
    assert sorted(r.path for r in fake.requests) == [
        "/v2/account", "/v2/clock", "/v2/stocks/AAPL/trades/latest"]
    assert only_reads(fake)


def test_the_text_view_carries_the_same_facts_as_json(trader: Cli, fake: FakeAlpaca) -> None:
    document = trader("check-alpaca", "--json").json()
    text = trader("check-alpaca")
    assert text.code == 0 and text.stderr == ""
    for check in document["checks"]:
        assert f"✓ {check['name']}" in text.stdout
        assert check["detail"] in text.stdout
    assert fake.account()["account_number"] in text.stdout
    assert "buying power $200,000.00" in text.stdout
    assert text.stdout.strip().splitlines()[-1] == "all checks passed"


def test_symbol_option_reads_that_symbols_latest_trade(trader: Cli, fake: FakeAlpaca) -> None:
    document = trader("check-alpaca", "--symbol", "msft", "--json").json()
    assert document["latest_trade"] == {"symbol": "MSFT", "price": "400.00"}
    assert fake.count("GET", "/v2/stocks/MSFT/trades/latest") == 1


def test_unknown_symbol_is_diagnosed_as_such(trader: Cli) -> None:
    result = trader("check-alpaca", "--symbol", "NOPE", "--json")
    assert result.code == 4
    trade = checks_by_name(result.json())["latest trade"]
    assert trade["state"] == "fail" and "404" in trade["detail"]
    assert "NOPE is not a symbol the market-data API knows" in trade["fix"]


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_keys_are_diagnosed_as_invalid_or_other_mode(
    trader: Cli, fake: FakeAlpaca, status: int
) -> None:
    if status == 403:
        fake.set_forbidden(True)
        env = {}
    else:
        env = {"ALPACA_SECRET_KEY": "wrongsecret0000000000000000000000000000000"}
    result = trader("check-alpaca", "--json", env=env)
    assert result.code == 4
    checks = checks_by_name(result.json())
    for name in ("account", "market clock", "latest trade"):
        assert checks[name]["state"] == "fail" and str(status) in checks[name]["detail"]
        assert AUTH_CAUSE in checks[name]["fix"]
    assert result.json()["account"] is None
    text = trader("check-alpaca", env=env)
    assert text.code == 4
    assert text.stdout.count(AUTH_CAUSE) == 1  # one cause behind three checks: said once
    assert "3 checks failed (exit 4: broker error)" in text.stdout
    assert only_reads(fake)


def test_paper_keys_with_live_mode_are_warned_not_failed(live_trader: Cli) -> None:
    result = live_trader("check-alpaca", "--json")
    assert result.code == 0, result.output
    prefix = checks_by_name(result.json())["key prefix"]
    assert prefix["state"] == "warn"
    assert "looks like a paper key but TRADING_MODE=live" in prefix["detail"]
    text = live_trader("check-alpaca")
    assert "! key prefix" in text.stdout and "ready, with 1 warning" in text.stdout


def test_paper_keys_refused_in_live_mode_name_the_mismatch(live_trader: Cli,
                                                           tls_fake: FakeAlpaca) -> None:
    tls_fake.set_forbidden(True)
    result = live_trader("check-alpaca", "--json")
    assert result.code == 4
    fix = checks_by_name(result.json())["account"]["fix"]
    assert fix.startswith("ALPACA_API_KEY looks like a paper key but TRADING_MODE=live")


def test_broker_unreachable_gives_up_within_seconds(trader: Cli) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = trader("check-alpaca", "--json",
                    env={"ALPACA_BASE_URL": down, "ALPACA_DATA_URL": down})
    elapsed = time.monotonic() - started
    assert result.code == 4
    assert elapsed < 4, f"check-alpaca took {elapsed:.1f}s against a closed port"
    checks = checks_by_name(result.json())
    for name in ("account", "market clock", "latest trade"):
        assert "could not connect" in checks[name]["detail"]
        assert checks[name]["fix"].startswith(NETWORK_CAUSE) and down in checks[name]["fix"]
    assert checks["database"]["state"] == "pass"  # the database is still checked


def test_rate_limit_is_diagnosed(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/account$", status=429, times=None)
    result = trader("check-alpaca", "--json")
    assert result.code == 4
    account = checks_by_name(result.json())["account"]
    assert "429" in account["detail"] and "rate limited" in account["fix"]
    assert checks_by_name(result.json())["market clock"]["state"] == "pass"


def test_closed_market_is_a_warning_with_the_next_open(trader: Cli, fake: FakeAlpaca) -> None:
    fake.set_market_open(False)
    result = trader("check-alpaca", "--json")
    assert result.code == 0, result.output
    document = result.json()
    clock = checks_by_name(document)["market clock"]
    assert clock["state"] == "warn" and clock["detail"].startswith("closed; opens ")
    assert document["clock"]["is_open"] is False
    assert document["clock"]["next_open"][:16].replace("T", " ") in clock["detail"]


def test_clock_times_with_an_offset_are_shown_in_utc_and_new_york(
    trader: Cli, fake: FakeAlpaca
) -> None:
    clock = {"timestamp": "2026-03-02T18:00:00-05:00", "is_open": False,
             "next_open": "2026-03-03T09:30:00-05:00", "next_close": "2026-03-03T16:00:00-05:00"}
    fake.inject("GET", r"^/v2/clock$", status=200, body=clock)
    detail = checks_by_name(trader("check-alpaca", "--json").json())["market clock"]["detail"]
    assert detail == ("closed; opens 2026-03-03 14:30 UTC (09:30 New York); orders sent now "
                      "wait for the open")


def test_blocked_account_fails_the_check(trader: Cli, fake: FakeAlpaca) -> None:
    account = {**fake.account(), "trading_blocked": True, "trade_suspended_by_user": True}
    fake.inject("GET", r"^/v2/account$", status=200, body=account, times=None)
    result = trader("check-alpaca", "--json")
    assert result.code == 4
    allowed = checks_by_name(result.json())["trading allowed"]
    assert allowed["state"] == "fail"
    assert allowed["detail"] == "blocked or suspended: trading, trading by user"


def test_missing_keys_say_alpaca_is_not_enabled(cli: Cli) -> None:
    result = cli("check-alpaca", "--json")
    assert result.code == 4
    document = result.json()
    checks = checks_by_name(document)
    assert checks["keys"] == {"name": "keys", "state": "fail",
                              "detail": "ALPACA_API_KEY and ALPACA_SECRET_KEY not set",
                              "fix": NOT_ENABLED_FIX}
    assert NOT_ENABLED_FIX == "Alpaca not enabled: set ALPACA_API_KEY and ALPACA_SECRET_KEY"
    assert {checks[n]["state"] for n in ("account", "market clock", "latest trade")} == {"fail"}
    assert document["account"] is None and document["configuration"]["api_key"] == "(not set)"
    assert checks["schema"]["state"] == "pass"
    text = cli("check-alpaca")
    assert text.code == 4
    assert text.stdout.count(NOT_ENABLED_FIX) == 1
    half = cli("check-alpaca", env={"ALPACA_API_KEY": "PKONLYTHEKEY00000000"})
    assert half.code == 2  # one key without the other is a setting error, not keyless mode
    assert "ALPACA_SECRET_KEY is empty" in half.stdout


@pytest.mark.usefixtures("fake")
def test_unreachable_database_is_exit_5_with_a_clear_message(trader: Cli) -> None:
    url = f"postgresql://tradectl:hunter2pw@127.0.0.1:{closed_port()}/tradectl"
    result = trader("check-alpaca", "--json", env={"DATABASE_URL": url})
    assert result.code == 5, result.output
    document = result.json()
    database = checks_by_name(document)["database"]
    assert database["state"] == "fail"
    assert database["detail"].startswith("database postgresql+psycopg://tradectl:***@127.0.0.1:")
    assert "refused" in database["detail"].lower()
    assert "database server running" in database["fix"]
    assert document["database"]["reachable"] is False
    assert checks_by_name(document)["account"]["state"] == "pass"
    text = trader("check-alpaca", env={"DATABASE_URL": url})
    assert "1 check failed (exit 5: database error)" in text.stdout
    assert "hunter2pw" not in result.output + text.output


def test_broker_failure_outranks_a_database_failure(trader: Cli) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    result = trader("check-alpaca", env={
        "ALPACA_BASE_URL": down, "ALPACA_DATA_URL": down,
        "DATABASE_URL": f"postgresql://u@127.0.0.1:{closed_port()}/x"})
    assert result.code == 4


def test_postgres_behind_on_migrations_fails_the_schema_check(
    trader: Cli, scratch_pg: ScratchDatabases
) -> None:
    url = scratch_pg.create()  # empty: never migrated
    try:
        result = trader("check-alpaca", "--json", env={"DATABASE_URL": url})
    finally:
        scratch_pg.drop(url)
    assert result.code == 5
    schema = checks_by_name(result.json())["schema"]
    assert schema["state"] == "fail" and schema["fix"] == "run `tradectl db upgrade`"
    assert schema["detail"] == f"at none (empty), tradectl needs {HEAD_REVISION}"


def test_sqlite_behind_is_only_a_warning_and_a_missing_file_is_not_created(
    trader: Cli, tmp_path: Path
) -> None:
    old = tmp_path / "old.db"
    Database(f"sqlite:///{old}").upgrade("0001")
    result = trader("check-alpaca", "--json", env={"DATABASE_URL": f"sqlite:///{old}"})
    assert result.code == 0
    assert checks_by_name(result.json())["schema"]["state"] == "warn"
    new = tmp_path / "new" / "tradectl.db"
    result = trader("check-alpaca", "--json", env={"DATABASE_URL": f"sqlite:///{new}"})
    assert result.code == 0
    assert "not created yet" in checks_by_name(result.json())["database"]["detail"]
    assert not new.exists()


def test_invalid_setting_is_exit_2_as_a_failed_check(cli: Cli) -> None:
    result = cli("check-alpaca", "--json", env={"TRADING_MODE": "real"})
    assert result.code == 2
    settings = checks_by_name(result.json())["settings"]
    assert settings["state"] == "fail" and "TRADING_MODE" in settings["detail"]
    assert cli("check-alpaca", "--symbol", "not a symbol").code == 2


def test_env_file_is_reported_and_warned_when_others_can_read_it(
    cli: Cli, fake: FakeAlpaca
) -> None:
    env_file = cli.cwd / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in broker_env(fake).items()))
    env_file.chmod(0o644)
    result = cli("check-alpaca", "--json")
    assert result.code == 0, result.output  # the keys came from .env
    document = result.json()
    check = checks_by_name(document)[".env file"]
    assert check["state"] == "warn" and "mode 0644" in check["detail"]
    assert check["fix"] == f"chmod 600 {env_file}"
    assert document["configuration"]["env_file"] == str(env_file)
    env_file.chmod(0o640)  # group-readable is as bad: the key is shared with the group
    assert checks_by_name(cli("check-alpaca", "--json").json())[".env file"]["state"] == "warn"
    env_file.chmod(0o600)
    check = checks_by_name(cli("check-alpaca", "--json").json())[".env file"]
    assert check == {"name": ".env file", "state": "pass", "detail": f"{env_file} (mode 0600)",
                     "fix": None}


def test_secrets_never_appear_in_any_output(trader: Cli, fake: FakeAlpaca) -> None:
    wrong = "wrongsecret0000000000000000000000000000000"
    down = f"http://127.0.0.1:{closed_port()}"
    scenarios: list[dict[str, str]] = [
        {}, {"ALPACA_SECRET_KEY": wrong}, {"ALPACA_BASE_URL": down, "ALPACA_DATA_URL": down},
        {"TRADING_MODE": "live"},  # refused: live mode over plain http
        {"ALPACA_SECRET_KEY": ""},
        {"DATABASE_URL": f"postgresql://tradectl:{fake.secret_key}@127.0.0.1:{closed_port()}/x"},
    ]
    outputs = [trader("check-alpaca", *flag, env=env).output
               for env in scenarios for flag in ((), ("--json",))]
    for secret in (fake.secret_key, fake.api_key, wrong):
        assert not [text for text in outputs if secret in text]
    # the key id is shown masked only (JSON escapes the ellipsis)
    assert all("PKTE…0000" in text or "PKTE\\u20260000" in text for text in outputs[:6])


def test_a_driver_message_quoting_the_url_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://tradectl:pw-in-url-123@db.example.test/tradectl"

    def quoting_driver(self: Database) -> str:
        raise OSError(f"cannot reach {self.url} with key PKSECRETKEYID1234")

    monkeypatch.setattr(Database, "schema_revision", quoting_driver)
    (check,), facts = database_checks(url, ("PKSECRETKEYID1234",))
    assert check.state == "fail" and facts.reachable is False
    assert "pw-in-url-123" not in check.detail and "PKSECRETKEYID1234" not in check.detail
    assert "postgresql+psycopg://tradectl:***@db.example.test/tradectl" in check.detail


def test_an_answer_tradectl_cannot_read_is_diagnosed_in_one_line(
    trader: Cli, fake: FakeAlpaca
) -> None:
    fake.inject("GET", r"^/v2/account$", status=200, times=None,
                body={"status": "ACTIVE", "last_equity": "100000"})  # no equity
    leap = {"timestamp": "2026-06-30T23:59:60Z", "is_open": True,
            "next_open": "2026-07-01T09:30:00-04:00", "next_close": "2026-06-30T16:00:00-04:00"}
    fake.inject("GET", r"^/v2/clock$", status=200, body=leap, times=None)

    result = trader("check-alpaca", "--json")

    assert result.code == 4 and "Traceback" not in result.output
    checks = checks_by_name(result.json())
    account, clock = checks["account"], checks["market clock"]
    assert account["state"] == clock["state"] == "fail"
    assert account["fix"].startswith(
        "Alpaca answered something tradectl cannot read (account.equity)")
    assert "account.equity is missing" in account["detail"]
    assert clock["fix"].startswith(
        "Alpaca answered something tradectl cannot read (clock.timestamp)")
    assert result.json()["account"] is None  # nothing shown as if it had been read
    text = trader("check-alpaca")
    assert text.code == 4 and "Traceback" not in text.output
    lines = [line for line in text.stdout.splitlines() if "cannot read (account.equity)" in line]
    assert len(lines) == 1, text.stdout


def test_an_account_that_leaves_out_its_flags_is_a_warning_not_a_pass(
    trader: Cli, fake: FakeAlpaca
) -> None:
    account = {k: v for k, v in fake.account().items() if k != "trade_suspended_by_user"}
    fake.inject("GET", r"^/v2/account$", status=200, body=account, times=None)
    allowed = checks_by_name(trader("check-alpaca", "--json").json())["trading allowed"]
    assert allowed["state"] == "warn"
    assert allowed["detail"] == "Alpaca did not say whether trading by user is blocked"


@pytest.mark.parametrize("answer", [
    lambda a: {**a, "trade": None}, lambda a: {"symbol": a["symbol"]}],
    ids=["trade null", "no trade"])
def test_an_unknown_symbol_is_diagnosed_as_such_not_as_the_network(
    trader: Cli, fake: FakeAlpaca, answer: Callable[[Any], object],
) -> None:
    fake.set_price("ZZZZ", "1")  # the data API answers for it, without a trade
    fake.rewrite("GET", r"^/v2/stocks/ZZZZ/trades/latest$", answer)
    result = trader("check-alpaca", "--symbol", "ZZZZ", "--json")
    assert result.code == 4
    trade = checks_by_name(result.json())["latest trade"]
    assert trade["state"] == "fail" and "ZZZZ is not a symbol" in trade["fix"]
    assert "network" not in trade["fix"]
