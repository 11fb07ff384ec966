"""`tradectl status` and `tradectl log`: the journal read back, with the broker's view added when
there is one and a broker failure degrading the view instead of failing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.conftest import Cli, closed_port
from tests.fakes.alpaca import FakeAlpaca
from tests.support.context import FakeParts
from tests.support.db import orm_session
from tradectl.db.models import Alert, Cycle, Event, Position
from tradectl.db.session import Database

NOW = datetime.now(UTC)



READS = {"account", "list_positions", "list_orders", "get_order", "find_order_by_client_id",
         "latest_trade_price", "clock"}  # the in-process broker's calls that change nothing


def position(cycle_id: int, symbol: str, status: str, **fields: object) -> Position:
    values: dict[str, object] = dict(
        cycle_id=cycle_id, symbol=symbol, side="buy", qty=Decimal(2), stop_loss=Decimal(140),
        take_profit=Decimal(170), status=status, client_order_id=f"tradectl-{symbol}-{status}",
    )
    values.update(fields)
    return Position(**values)


def journal(url: str, *rows: object) -> None:
    db = Database(url)
    with orm_session(db) as session:
        for row in rows:
            session.add(row)
            session.flush()
    db.dispose()


def book(url: str, *, cycle: Cycle | None = None) -> None:
    """A cycle with an open AAPL (2 filled at 150 at Alpaca), a pending MSFT limit and a TSLA
    closed today at a loss."""
    journal(
        url,
        cycle or Cycle(id=1, status="active", started_at=NOW - timedelta(hours=2)),
        position(1, "AAPL", "open", filled_qty=Decimal(2), filled_avg_price=Decimal(150),
                 alpaca_order_id="order-aapl"),
        position(1, "MSFT", "pending", entry_price=Decimal(395), alpaca_order_id="order-msft"),
        position(1, "TSLA", "closed", filled_qty=Decimal(2), filled_avg_price=Decimal(250),
                 exit_price=Decimal("243.75"), realized_pl=Decimal("-12.50"), closed_at=NOW),
    )


# -- status ----------------------------------------------------------------------------------


def test_status_of_an_empty_journal_without_keys(cli: Cli) -> None:
    result = cli("status", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["mode"] == "paper" and document["trading"] == "active"
    assert document["cycle"] is None and document["positions"] == []
    assert document["alerts"] == [] and document["realized_pl_today"] == "0.00"
    assert document["broker"] == {"configured": False, "account": None, "error": None}
    text = cli("status")
    assert "no positions yet" in text.stdout and "Alpaca not configured" in text.stdout


def test_status_shows_positions_with_their_pl(cli: Cli, parts: FakeParts) -> None:
    book(cli.env["DATABASE_URL"])
    journal(cli.env["DATABASE_URL"],
            position(1, "SHOP", "open", side="sell", qty=Decimal(3), filled_qty=Decimal(3),
                     filled_avg_price=Decimal(100), alpaca_order_id="order-shop"))
    fake = parts.broker
    assert fake is not None
    fake.state.add_position("AAPL", Decimal(2), Decimal(150))
    fake.set_price("AAPL", "155.25")
    fake.state.add_position("SHOP", Decimal(-3), Decimal(100))
    fake.set_price("SHOP", "96.50")
    result = cli("status", "--json", context=parts.context())
    assert result.code == 0, result.output
    document = result.json()
    by_symbol = {p["symbol"]: p for p in document["positions"]}
    assert [p["symbol"] for p in document["positions"]] == ["AAPL", "MSFT", "SHOP", "TSLA"]
    assert by_symbol["AAPL"]["unrealized_pl"] == "10.50"
    assert by_symbol["AAPL"]["last_price"] == "155.25"
    assert by_symbol["SHOP"]["unrealized_pl"] == "10.50"  # short: the price fell 3.50 on 3
    assert by_symbol["MSFT"]["status"] == "pending" and by_symbol["MSFT"]["unrealized_pl"] is None
    assert by_symbol["TSLA"]["realized_pl"] == "-12.50"
    assert document["realized_pl_today"] == "-12.50"
    assert document["broker"]["account"]["account_number"] == \
        fake.state.account()["account_number"]
    assert document["warnings"] == []
    text = cli("status", context=parts.context())
    assert text.code == 0
    lines = {line.split()[1]: line for line in text.stdout.splitlines()
             if line.split()[:1] in (["1"], ["2"], ["3"], ["4"])}
    assert lines["AAPL"].split()[-3] == "$10.50" and "open" in lines["AAPL"]
    assert lines["TSLA"].split()[-3] == "-$12.50"
    assert "lmt 395.00" in lines["MSFT"]
    assert "realized P&L -$12.50" in text.stdout
    assert not [call for call in fake.calls if call not in READS]


def test_status_shows_a_stopped_cycle_with_reason_and_time(cli: Cli) -> None:
    stopped_at = datetime(2026, 3, 2, 15, 4, tzinfo=UTC)
    book(cli.env["DATABASE_URL"], cycle=Cycle(id=1, status="stopped", stopped_at=stopped_at,
                                               stop_reason="daily loss limit reached"))
    document = cli("status", "--json").json()
    assert document["trading"] == "stopped"
    assert document["cycle"]["stop_reason"] == "daily loss limit reached"
    assert document["cycle"]["stopped_at"] == "2026-03-02T15:04:00Z"
    text = cli("status").stdout
    assert "STOPPED since 2026-03-02 15:04 UTC: daily loss limit reached" in text


def test_broker_failure_degrades_the_view_but_not_the_exit_code(trader: Cli) -> None:
    book(trader.env["DATABASE_URL"])
    down = f"http://127.0.0.1:{closed_port()}"
    env = {"ALPACA_BASE_URL": down, "ALPACA_DATA_URL": down}
    result = trader("status", "--json", env=env)
    assert result.code == 0, result.output
    document = result.json()
    assert "could not connect to Alpaca" in document["broker"]["error"]
    assert document["broker"]["account"] is None
    assert len(document["positions"]) == 3  # the journal is still shown
    text = trader("status", env=env)
    assert text.code == 0 and "broker unavailable, journal only" in text.stdout
    rejected = trader("status", "--json", env={"ALPACA_SECRET_KEY": "wrongsecret000000000000"})
    assert rejected.code == 0 and "401" in rejected.json()["broker"]["error"]


def test_journal_position_alpaca_does_not_hold_is_warned(cli: Cli, parts: FakeParts) -> None:
    book(cli.env["DATABASE_URL"])  # the fake holds nothing
    document = cli("status", "--json", context=parts.context()).json()
    assert document["warnings"] == [
        "#1 AAPL: open in the journal but Alpaca holds no AAPL position"]


def test_status_lists_live_positions_and_the_ten_most_recent_others(cli: Cli) -> None:
    finished = [position(1, f"S{i:02d}", "cancelled", closed_at=NOW) for i in range(12)]
    journal(cli.env["DATABASE_URL"], Cycle(id=1), *finished,
            position(1, "LIVE", "pending"))
    symbols = [p["symbol"] for p in cli("status", "--json").json()["positions"]]
    assert symbols == ["LIVE", *(f"S{i:02d}" for i in range(11, 1, -1))]


def test_status_shows_pending_alerts_only(cli: Cli) -> None:
    alert = dict(kind="emergency_stop", body="...", recipients="trader@example.test")
    journal(cli.env["DATABASE_URL"], Cycle(id=1),
            Alert(subject="sent one", status="sent", attempts=1, **alert),
            Alert(subject="tradectl: emergency stop", status="pending", attempts=2,
                  last_error="connection refused", **alert))
    (pending,) = cli("status", "--json").json()["alerts"]
    assert pending["subject"] == "tradectl: emergency stop"
    assert pending["attempts"] == 2 and pending["last_error"] == "connection refused"
    text = cli("status").stdout
    assert "1 pending, oldest: tradectl: emergency stop (2 attempts, connection refused)" in text


# -- log -------------------------------------------------------------------------------------


def events(url: str) -> None:
    """Five events a minute apart: two on AAPL's position, one AAPL refusal without a
    position, one on MSFT, one about no symbol."""
    db = Database(url)
    with orm_session(db) as session:
        session.add(Cycle(id=1))
        session.flush()
        aapl = position(1, "AAPL", "open")
        msft = position(1, "MSFT", "open")
        session.add_all([aapl, msft])
        session.flush()
        for minute, (kind, message, position_id, details) in enumerate([
            ("cycle_started", "first trading cycle started", None, None),
            ("position_created", "buy 2 AAPL at market", aapl.id, None),
            ("order_submitted", "AAPL: bracket order accepted", aapl.id, None),
            ("refused", "AAPL: refused by max_open_positions", None, {"symbol": "AAPL"}),
            ("order_submitted", "MSFT: bracket order accepted", msft.id, None),
        ]):
            session.add(Event(kind=kind, message=message, cycle_id=1, position_id=position_id,
                              details=details, created_at=NOW - timedelta(minutes=10 - minute)))
    db.dispose()


def test_log_is_newest_first_with_time_kind_symbol_message(cli: Cli) -> None:
    events(cli.env["DATABASE_URL"])
    result = cli("log", "--json")
    assert result.code == 0, result.output
    found = result.json()["events"]
    assert [(e["kind"], e["symbol"]) for e in found] == [
        ("order_submitted", "MSFT"), ("refused", "AAPL"), ("order_submitted", "AAPL"),
        ("position_created", "AAPL"), ("cycle_started", None)]
    text = cli("log").stdout.splitlines()
    assert text[0].split() == ["time", "(UTC)", "kind", "symbol", "message"]
    newest = (NOW - timedelta(minutes=6)).strftime("%Y-%m-%d %H:%M:%S")
    assert text[1].split(maxsplit=4) == [*newest.split(), "order_submitted", "MSFT",
                                         "MSFT: bracket order accepted"]
    assert text[-1].split()[2:4] == ["cycle_started", "-"]


def test_log_filters_by_symbol_kind_and_limit(cli: Cli) -> None:
    events(cli.env["DATABASE_URL"])

    def kinds(*args: str) -> list[str]:
        result = cli("log", "--json", *args)
        assert result.code == 0, result.output
        return [e["kind"] for e in result.json()["events"]]

    assert kinds("--symbol", "aapl") == ["refused", "order_submitted", "position_created"]
    assert kinds("--kind", "order_submitted") == ["order_submitted", "order_submitted"]
    assert kinds("--symbol", "AAPL", "--kind", "order_submitted") == ["order_submitted"]
    assert kinds("--limit", "2") == ["order_submitted", "refused"]
    assert kinds("--symbol", "TSLA") == []
    assert cli("log", "--symbol", "TSLA").stdout.strip() == "no events"
    assert cli("log", "--limit", "0").code == 2
    assert cli("log", "--symbol", "AAPL;DROP").code == 2


def test_log_shows_what_open_recorded(cli: Cli, parts: FakeParts) -> None:
    opened = cli("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160",
                 context=parts.context())
    assert opened.code == 0, opened.output
    found = cli("log", "--json", context=parts.context()).json()["events"]
    assert [e["kind"] for e in found] == ["order_submitted", "position_created", "cycle_started"]
    assert found[0]["symbol"] == "AAPL" and found[0]["details"]["alpaca_order_id"]


def test_status_and_log_never_show_secrets(trader: Cli, fake: FakeAlpaca) -> None:
    trader("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")
    wrong = "wrongsecret0000000000000000000000000000000"
    outputs = [trader(*command, env=env).output
               for command in (("status",), ("status", "--json"), ("log",), ("log", "--json"))
               for env in ({}, {"ALPACA_SECRET_KEY": wrong})]
    for secret in (fake.secret_key, fake.api_key, wrong):
        assert not [text for text in outputs if secret in text]
