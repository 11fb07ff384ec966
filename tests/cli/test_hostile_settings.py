"""Hostile input beyond `open`'s arguments: a `.env` file of any bytes, `log`'s options, and
database URLs that would lose the record. Each either works or exits 2 with one line naming what
is wrong: no traceback, nothing written, nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.test_hostile_input import assert_one_error_line
from tests.conftest import Cli, CliResult

FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    cli = Cli(monkeypatch, tmp_path)
    cli.env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'tradectl.db'}"
    return cli


def works_or_names(result: CliResult, name: str) -> None:
    assert result.code in (0, 2), result.output
    if result.code == 2:
        assert name in assert_one_error_line(result)


@pytest.mark.parametrize(("setting", "value"), [
    ("NO_NEW_ENTRIES_BEFORE_CLOSE", "-3"), ("COOLDOWN_AFTER_LOSSES", "2"),
    ("DAILY_PROFIT_TARGET", "1.5.%"), ("MAX_TRADES_PER_DAY", "0"),
    ("DAILY_LOSS_LIMIT", "1.5.%"), ("MAX_RISK_PER_TRADE", "-1%"),
    ("MAX_DRAWDOWN_FROM_PEAK", "0"), ("MAX_DRAWDOWN_FROM_PEAK", "500$"),
    ("FLATTEN_BEFORE_CLOSE", "-3"), ("FLATTEN_BEFORE_CLOSE", "abc"),
])
def test_a_bad_day_rule_is_exit_2_naming_the_setting_its_file_and_line(
    offline: Cli, setting: str, value: str
) -> None:
    (offline.cwd / ".env").write_text(f"# the day's rules\nTRADING_MODE=paper\n{setting}={value}\n")
    for args in (("status",), ("open", "AAPL", "--qty", "1", "--stop", "1", "--target", "2")):
        result = offline(*args)
        assert result.code == 2, result.output
        line = assert_one_error_line(result)
        assert setting in line and f"{offline.cwd / '.env'} line 3" in line
    result = offline("status", env={setting: value})
    assert result.code == 2 and "set in the environment" in assert_one_error_line(result)


@FUZZ
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_env_file_works_or_is_named_with_its_line(offline: Cli, content: bytes) -> None:
    (offline.cwd / ".env").write_bytes(content)
    result = offline("status", "--json")
    works_or_names(result, ".env")
    shown = content.decode("utf-8", "replace").strip()
    if result.code == 2 and "line" in result.stderr and len(shown) >= 8:  # long enough to tell
        assert shown not in result.stderr


@pytest.mark.parametrize(("content", "said"), [
    (b"ALPACA_SECRET_KEY=\xff\xfe\n", "is not UTF-8 text (line 1)"),
    (b"A=1\nSECRETLINE is 'unclosed\n", "line 2 cannot be read"),
    (b"TRADING_MODE=live\nexport OK=1\n= SECRETLINE\n", "line 3 cannot be read"),
])
def test_a_broken_env_file_names_the_file_and_line_never_the_content(
    offline: Cli, content: bytes, said: str
) -> None:
    (offline.cwd / ".env").write_bytes(content)
    result = offline("status")
    assert result.code == 2
    line = assert_one_error_line(result)
    assert str(offline.cwd / ".env") in line and said in line
    assert "SECRETLINE" not in line


@FUZZ
@given(limit=st.one_of(st.integers(), st.text(max_size=30)))
def test_log_limit_is_a_count_or_exit_2(offline: Cli, limit: int | str) -> None:
    if isinstance(limit, str) and limit.startswith("-"):
        limit = " " + limit  # an option value, not an option
    works_or_names(offline("log", "--limit", str(limit)), "--limit")


@FUZZ
@given(kind=st.text(max_size=40))
def test_log_kind_is_a_known_kind_or_exit_2_listing_them(offline: Cli, kind: str) -> None:
    from tradectl.db.journal import EVENT_KINDS

    if kind.startswith("-"):
        kind = " " + kind
    result = offline("log", "--kind", kind)
    works_or_names(result, "--kind")
    if result.code == 2:
        assert kind not in EVENT_KINDS and "order_submitted" in result.stderr


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?mode=memory&uri=true",
    "sqlite:///{tmp}/no/such/dir/tradectl.db",
])
def test_a_database_that_would_lose_the_record_is_bad_input(offline: Cli, url: str,
                                                           tmp_path: Path) -> None:
    url = url.format(tmp=tmp_path)
    for command in (("status",), ("open", "AAPL", "--qty", "1", "--stop", "145",
                                  "--target", "160"), ("halt", "--reason", "x")):
        result = offline(*command, env={"DATABASE_URL": url})
        assert result.code == 2, (command, result.output)
        assert "DATABASE_URL" in assert_one_error_line(result)
    assert not (tmp_path / "no").exists()
