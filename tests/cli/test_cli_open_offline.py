"""`tradectl open` without a broker: bad input, the no-keys journal mode, refusals, live safety."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool

from tests.conftest import Cli, count_rows
from tests.support.db import orm_session
from tradectl.db.models import Cycle, Event, Position
from tradectl.db.session import Database

OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")




def test_without_keys_the_position_is_recorded_with_alpaca_disabled(cli: Cli) -> None:
    result = cli(*OPEN, "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["status"] == "open"
    assert document["alpaca_status"] == "alpaca_disabled"
    assert document["alpaca_order_id"] is None
    assert document["symbol"] == "AAPL" and document["stop_loss"] == "145.00"
    assert document["take_profit"] == "160.00" and document["entry_price"] is None
    assert document["cycle_id"] == 1
    assert any("Alpaca is not configured" in w for w in document["warnings"])
    assert result.stderr == ""  # with --json the warning travels in the document only


def test_without_keys_the_warning_is_printed_once(cli: Cli) -> None:
    result = cli(*OPEN)
    assert result.code == 0
    assert result.stderr.count("Alpaca is not configured") == 1
    assert "alpaca_disabled" in result.stdout


BAD_INPUTS = [
    ("open", "AAPL;DROP TABLE", "--qty", "1", "--stop", "145", "--target", "160"),
    ("open", "AAPL", "--qty", "0", "--stop", "145", "--target", "160"),
    ("open", "AAPL", "--qty", "1.5", "--stop", "145", "--target", "160"),
    ("open", "AAPL", "--qty", "1", "--stop", "-145", "--target", "160"),
    ("open", "AAPL", "--qty", "1", "--stop", "145.001", "--target", "160"),
    ("open", "PENNY", "--qty", "1", "--stop", "0.12345", "--target", "0.5"),
    ("open", "AAPL", "--qty", "1", "--stop", "160", "--target", "145"),
    ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--side", "sell"),
    ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--entry", "145"),
    ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--entry", "170"),
    ("open", "AAPL", "--qty", "1", "--stop", "nan", "--target", "160"),
    ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--side", "hold"),
    ("open", "AAPL", "--qty", "1", "--stop", "145"),
    ("open", "--qty", "1", "--stop", "145", "--target", "160"),
]


@pytest.mark.parametrize("args", BAD_INPUTS, ids=lambda a: " ".join(a[1:]))
def test_bad_input_is_one_line_exit_2_and_nothing_written(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert count_rows(cli.env["DATABASE_URL"], Position) == 0
    assert count_rows(cli.env["DATABASE_URL"], Event) == 0


def test_invalid_setting_is_exit_2_naming_the_variable(cli: Cli) -> None:
    result = cli(*OPEN, env={"DAILY_LOSS_LIMIT": "abc"})
    assert result.code == 2
    assert result.stderr.startswith("error: DAILY_LOSS_LIMIT")
    result = cli(*OPEN, env={"TRADING_MODE": "real"})
    assert result.code == 2 and "TRADING_MODE" in result.stderr


def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(cli: Cli) -> None:
    (cli.cwd / ".env").write_text("DAILY_LOSS_LIMIT=abc\nTRADING_MODE=real\n")
    result = cli(*OPEN, env={"TRADING_MODE": "paper"})
    assert result.code == 2
    assert "DAILY_LOSS_LIMIT" in result.stderr  # from .env; TRADING_MODE=real lost to the env


def test_a_stopped_cycle_refuses_with_exit_3_saying_when_and_why(cli: Cli) -> None:
    db = Database(cli.env["DATABASE_URL"])
    with orm_session(db) as session:
        session.add(Cycle(status="stopped", stopped_at=datetime(2026, 11, 25, 14, 30, tzinfo=UTC),
                          stop_reason="daily loss limit"))
    result = cli(*OPEN)
    assert result.code == 3
    assert "stopped since 2026-11-25 14:30:00 UTC: daily loss limit" in result.stderr
    with orm_session(db) as session:
        assert session.scalar(select(func.count()).select_from(Position)) == 0
        event = session.scalars(select(Event).where(Event.kind == "refused")).one()
        assert event.details is not None and event.details["rule"] == "cycle_stopped"
    db.dispose()


def test_risk_refusal_exits_3_names_the_rule_and_logs_an_event(cli: Cli) -> None:
    result = cli("open", "AAPL", "--qty", "100", "--stop", "100", "--target", "160",
                 "--entry", "150", env={"MAX_RISK_PER_TRADE": "500"})
    assert result.code == 3
    assert "max_position_notional" in result.stderr or "max_risk_per_trade" in result.stderr
    db = Database(cli.env["DATABASE_URL"])
    with orm_session(db) as session:
        assert session.scalar(select(func.count()).select_from(Position)) == 0
        event = session.scalars(select(Event).where(Event.kind == "refused")).one()
        assert event.details is not None and event.details["figures"]
    db.dispose()


def test_second_position_in_the_same_symbol_is_refused(cli: Cli) -> None:
    assert cli(*OPEN).code == 0
    result = cli(*OPEN)
    assert result.code == 3 and "open_position_in_symbol" in result.stderr


def test_live_mode_without_a_terminal_needs_yes(cli: Cli) -> None:
    result = cli(*OPEN, env={"TRADING_MODE": "live"})
    assert result.code == 2 and "--yes" in result.stderr
    assert count_rows(cli.env["DATABASE_URL"], Position) == 0
    assert cli(*OPEN, "--yes", env={"TRADING_MODE": "live"}).code == 0


def test_gtc_and_sell_brackets_are_stored(cli: Cli) -> None:
    result = cli("open", "tsla", "--qty", "2", "--stop", "260", "--target", "240", "--side",
                 "sell", "--entry", "250.5", "--gtc", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["side"] == "sell" and document["time_in_force"] == "gtc"
    assert document["symbol"] == "TSLA" and document["entry_price"] == "250.50"


def test_each_command_closes_what_it_opened(cli: Cli) -> None:
    """In-process callers (these tests) run many commands: none may leave connections behind."""
    import gc

    from sqlalchemy.engine import Engine

    from tradectl.cli import wiring

    assert cli(*OPEN).code == 0
    assert cli("watch", "--once").code == 0
    assert wiring._opened == []
    assert gc.isenabled()
    pools = [o for o in gc.get_objects() if isinstance(o, Engine)]
    assert all(isinstance(e.pool, QueuePool) and e.pool.checkedout() == 0 for e in pools)
