"""The day's entry rules end to end: `open` refused (exit 3, the rule and its figures in
`--json`, a `refused` event), `open --dry-run` showing them, `status` listing each one set with
its state; against the HTTP fake Alpaca (its pinned clock for the cutoff), both databases."""

from __future__ import annotations

from tests.conftest import Cli, rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Event, Position

AAPL = ("AAPL", "--qty", "2", "--stop", "145", "--target", "160")
MSFT = ("MSFT", "--qty", "1", "--stop", "390", "--target", "420")


def posts(fake: FakeAlpaca) -> int:
    return len([r for r in fake.requests if r.method == "POST" and r.path == "/v2/orders"])


def rule_states(cli: Cli) -> dict[str, dict]:
    result = cli("status", "--json")
    assert result.code == 0, result.output
    return {r["name"]: r for r in result.json()["rules"]}


def test_an_open_inside_the_cutoff_is_refused_by_alpacas_clock(trader: Cli,
                                                              fake: FakeAlpaca) -> None:
    trader.env["NO_NEW_ENTRIES_BEFORE_CLOSE"] = "15"
    fake.set_clock("2026-11-27T12:46", is_open=True, next_open="2026-11-30T09:30",
                   next_close="2026-11-27T13:00")  # a half day: 14 minutes to its close
    result = trader("open", *AAPL, "--json")
    assert result.code == 3, result.output
    document = result.json()
    assert document["rule"] == "entry_cutoff" and document["figures"]["minutes_to_close"] == "14"
    assert "13:00 ET" in document["error"]
    assert posts(fake) == 0
    (event,) = [e for e in rows(trader.env["DATABASE_URL"], Event) if e.kind == "refused"]
    assert event.details is not None and event.details["rule"] == "entry_cutoff"

    dry = trader("open", *AAPL, "--dry-run", "--json")
    assert dry.code == 3, dry.output
    (check,) = [c for c in dry.json()["checks"] if c["rule"] == "entry_cutoff"]
    assert check["passed"] is False
    assert rule_states(trader)["entry_cutoff"]["state"] == "tripped"

    fake.set_clock("2026-11-27T12:44", is_open=True, next_open="2026-11-30T09:30",
                   next_close="2026-11-27T13:00")  # 16 minutes: allowed
    assert trader("open", *AAPL).code == 0
    assert posts(fake) == 1


def test_the_trade_past_the_days_maximum_is_refused(trader: Cli, fake: FakeAlpaca) -> None:
    trader.env["MAX_TRADES_PER_DAY"] = "1"
    assert trader("open", *AAPL).code == 0
    result = trader("open", *MSFT, "--json")
    assert result.code == 3, result.output
    assert (result.json()["rule"], result.json()["figures"]) == (
        "max_trades_per_day", {"trades_today": "1", "limit": "1"})
    assert posts(fake) == 1
    rule = rule_states(trader)["max_trades_per_day"]
    assert (rule["limit"], rule["current"], rule["state"]) == ("1", "1", "tripped")


def lose_on_aapl(trader: Cli, fake: FakeAlpaca) -> None:
    fake.set_price("AAPL", "150.00")
    assert trader("open", *AAPL).code == 0
    assert trader("watch", "--once").code == 0
    fake.set_price("AAPL", "144.00")  # through the stop
    assert trader("watch", "--once").code == 0


def test_two_stop_outs_in_a_row_start_the_cooldown(trader: Cli, fake: FakeAlpaca) -> None:
    lose_on_aapl(trader, fake)
    lose_on_aapl(trader, fake)
    assert [p.realized_pl < 0 for p in rows(trader.env["DATABASE_URL"], Position)
            if p.realized_pl is not None] == [True, True]
    fake.set_price("AAPL", "150.00")
    trader.env["COOLDOWN_AFTER_LOSSES"] = "2:30"
    result = trader("open", *AAPL, "--json")
    assert result.code == 3, result.output
    document = result.json()
    assert document["rule"] == "cooldown" and document["figures"]["loss_streak"] == "2"
    rule = rule_states(trader)["cooldown"]
    assert rule["state"] == "tripped" and rule["until"] is not None
    assert (rule["limit"], rule["current"]) == ("2:30", "2")
    trader.env["COOLDOWN_AFTER_LOSSES"] = "3:30"  # a third loss would be needed
    assert rule_states(trader)["cooldown"]["state"] == "warning"
    assert trader("open", *AAPL).code == 0


def test_at_the_profit_target_no_new_entry_goes_out(trader: Cli, fake: FakeAlpaca) -> None:
    fake.set_last_equity("99500")  # equity 100,000: the day is up $500
    trader.env["DAILY_PROFIT_TARGET"] = "0.5%"  # of 99,500: $497.50
    result = trader("open", *AAPL, "--json")
    assert result.code == 3, result.output
    assert result.json()["rule"] == "profit_target"
    assert result.json()["figures"] == {"day_pnl": "500", "limit": "497.50", "setting": "0.5%"}
    assert posts(fake) == 0
    shown = trader("status")
    assert "profit_target tripped: the day's P&L $500.00 reached DAILY_PROFIT_TARGET $497.50" \
        in shown.stdout
    trader.env["DAILY_PROFIT_TARGET"] = "501"
    assert rule_states(trader)["profit_target"]["state"] == "warning"
    assert trader("open", *AAPL).code == 0


def test_status_lists_no_rule_when_none_is_set(trader: Cli) -> None:
    assert rule_states(trader) == {}


def test_a_percent_loss_limit_is_of_the_days_starting_equity(trader: Cli,
                                                              fake: FakeAlpaca) -> None:
    trader.env["DAILY_LOSS_LIMIT"] = "0.1%"
    fake.set_last_equity("100099")  # 0.1% is $100.09; equity 100,000: -$99 on the day
    tick = trader("watch", "--once", "--json")
    assert tick.code == 0 and tick.json()["emergency_stop"] is None, tick.output
    fake.set_last_equity("100101")  # 0.1% is $100.10: -$101 is past it
    refused = trader("open", *AAPL, "--json")
    assert refused.code == 3 and refused.json()["rule"] == "daily_loss_limit"
    assert "DAILY_LOSS_LIMIT $100.10 (0.1% of the day's starting equity)" in \
        refused.json()["error"]
    tick = trader("watch", "--once", "--json")
    assert tick.json()["emergency_stop"] is not None and tick.json()["cycle_status"] == "stopped"
    assert "reached DAILY_LOSS_LIMIT $100.10" in tick.json()["stop_reason"]
    assert trader("resume", "--reason", "try").code == 3  # still past it


def test_open_risk_as_a_percent_of_the_equity_meets_a_percent_risk_limit(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    trader.env["MAX_RISK_PER_TRADE"] = "0.5%"  # of last_equity 100,000: $500
    sized = trader("open", "AAPL", "--risk", "0.2%", "--stop", "145", "--target", "160",
                   "--json")  # $200 of equity 100,000; 5.00 a share: 40 shares
    assert sized.code == 0, sized.output
    assert sized.json()["qty"] == "40" and sized.json()["sizing"]["budget"] == "200.00"
    refused = trader("open", "MSFT", "--risk", "0.6%", "--stop", "390", "--target", "420")
    assert refused.code == 3, refused.output
    assert ("risk budget $600.00 (--risk) is above MAX_RISK_PER_TRADE $500.00 (0.5% of the "
            "day's starting equity)") in refused.stderr
    assert posts(fake) == 1
    bad = trader("open", "AAPL", "--risk", "1.5.%", "--stop", "145", "--target", "160")
    assert bad.code == 2 and "--risk" in bad.stderr
