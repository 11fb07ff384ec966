"""`--dry-run` on `open` and `halt`: the reads, the rules with their figures and the exact request,
with nothing written to the database and nothing sent (to Alpaca or to an alert channel); the
exit code the real command would have. The real command, against the fake Alpaca, both
databases."""

from __future__ import annotations

import pytest

from tests.conftest import Cli, SmtpSink, broker_env, count_rows
from tests.fakes.alpaca import FakeAlpaca
from tests.support.webhook import WebhookSink
from tradectl.db.models import Alert, Cycle, Event, Position

OPEN_AAPL = ("open", "AAPL", "--qty", "10", "--stop", "145", "--target", "160")
DOWN = {"ALPACA_BASE_URL": "http://127.0.0.1:9", "ALPACA_DATA_URL": "http://127.0.0.1:9"}


def table_counts(cli: Cli) -> dict[str, int]:
    url = cli.env["DATABASE_URL"]
    return {model.__tablename__: count_rows(url, model)
            for model in (Cycle, Position, Event, Alert)}


def writes(fake: FakeAlpaca) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method != "GET"]


def test_open_dry_run_shows_the_request_and_sends_nothing(trader: Cli, fake: FakeAlpaca) -> None:
    result = trader("open", "AAPL", "--risk", "200", "--stop", "144.10", "--target", "160",
                    "--dry-run", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["dry_run"] is True and document["command"] == "open"
    assert document["exit_code"] == 0 and document["refusal"] is None
    (request,) = document["requests"]
    assert (request["method"], request["url"]) == ("POST", f"{fake.url}/v2/orders")
    assert request["body"] == {
        "symbol": "AAPL", "qty": "33", "side": "buy", "type": "market", "time_in_force": "day",
        "order_class": "bracket",
        "client_order_id": "tradectl-<new id, made when the order is written ahead>",
        "take_profit": {"limit_price": "160.00"}, "stop_loss": {"stop_price": "144.10"}}
    plan = document["plan"]
    assert (plan["base_price"], plan["base_source"], plan["notional"], plan["risk"]) == (
        "150.00", "the last trade", "4950.00", "194.70")
    assert plan["sizing"]["qty"] == 33 and plan["buying_power"] == "200000.00"
    assert [c["rule"] for c in document["checks"]] == [
        "cycle_stopped", "open_position_in_symbol", "max_open_positions",
        "max_position_notional", "max_risk_per_trade", "daily_loss_limit", "buying_power"]
    assert all(c["passed"] for c in document["checks"])
    # the reads went out; nothing else did, and nothing was written
    assert sorted({r.path for r in fake.requests}) == [
        "/v2/account", "/v2/positions", "/v2/stocks/AAPL/trades/latest"]
    assert table_counts(trader) == {"cycles": 0, "positions": 0, "events": 0, "alerts": 0}


def test_a_refused_dry_run_exits_3_with_every_rule_and_its_figures(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    assert trader(*OPEN_AAPL).code == 0
    before = table_counts(trader)
    # 200 x 400 = $80,000 notional, 200 x |400 - 390| = $2,000 risk; MSFT is not held
    result = trader("open", "MSFT", "--qty", "200", "--stop", "390", "--target", "420",
                    "--dry-run")
    assert result.code == 3, result.output
    lines = result.stdout.splitlines()
    assert "  ✓ max_open_positions       1 positions are open; MAX_OPEN_POSITIONS is 10" in lines
    assert ("  ✗ max_position_notional    notional $80,000.00 is above MAX_POSITION_NOTIONAL "
            "$25,000.00") in lines
    assert ("  ✗ max_risk_per_trade       risk $2,000.00 (qty x |price - stop|) is above "
            "MAX_RISK_PER_TRADE $500.00") in lines
    assert lines[-1] == ("verdict  refused by max_position_notional: notional $80,000.00 is "
                         "above MAX_POSITION_NOTIONAL $25,000.00 (exit 3)")
    assert "request  POST " in result.stdout  # what would have gone, had the rules allowed it
    assert table_counts(trader) == before  # not even the refusal is logged
    assert writes(fake) == ["POST /v2/orders"]  # the real open's, before


def test_a_dry_run_on_a_stopped_cycle_is_refused_like_the_real_one(trader: Cli) -> None:
    assert trader("halt", "--reason", "test").code == 0
    result = trader(*OPEN_AAPL, "--dry-run", "--json")
    assert result.code == 3
    document = result.json()
    assert document["checks"][0]["rule"] == "cycle_stopped"
    assert document["checks"][0]["passed"] is False
    assert document["refusal"].startswith("trading is stopped since")


def test_a_live_dry_run_asks_nothing_and_input_errors_stay_exit_2(live_trader: Cli) -> None:
    live = live_trader(*OPEN_AAPL, "--dry-run")
    assert live.code == 0 and live.stdout.startswith("DRY RUN of `open` (live)")
    bad = live_trader("open", "AAPL", "--qty", "10", "--stop", "165", "--target", "160",
                      "--dry-run")
    assert bad.code == 2 and "must be below --target" in bad.stderr


def test_a_dry_run_whose_reads_fail_exits_4_and_logs_nothing(trader: Cli) -> None:
    result = trader(*OPEN_AAPL, "--dry-run", env=DOWN)
    assert result.code == 4 and result.stderr.startswith("error: could not connect to Alpaca")
    assert table_counts(trader)["events"] == 0  # the real open would log it


def test_without_a_broker_the_dry_run_says_no_order_would_be_sent(cli: Cli) -> None:
    result = cli(*OPEN_AAPL, "--dry-run", "--json")
    assert result.code == 0
    document = result.json()
    assert document["requests"] == [] and document["notes"] == [
        "Alpaca is not configured: no order would be sent; the position would be recorded "
        "locally"]
    # no price to judge by: the worst case of the bracket, 10 x 160 and 10 x 15
    assert (document["plan"]["notional"], document["plan"]["risk"]) == ("1600.00", "150.00")


def test_halt_dry_run_lists_what_would_be_cancelled_and_closed(
    trader: Cli, fake: FakeAlpaca, smtp: SmtpSink, webhook: WebhookSink,
) -> None:
    trader.env.update({**smtp.env(), "ALERT_WEBHOOK_URL": webhook.url})
    assert trader(*OPEN_AAPL).code == 0
    assert trader("open", "MSFT", "--qty", "5", "--stop", "390", "--target", "420",
                  "--entry", "395").code == 0
    fake.add_position("TSLA", 3, "250")  # opened elsewhere
    before, writes_before = table_counts(trader), writes(fake)
    result = trader("halt", "--reason", "checking", "--dry-run", "--json")
    assert result.code == 0, result.output
    document = result.json()
    plan = document["plan"]
    assert (plan["cycle_id"], plan["already_stopped"], plan["reason"]) == (1, False, "checking")
    assert [(p["symbol"], p["qty"], p["position_ids"]) for p in plan["positions"]] == [
        ("AAPL", "10", [1]), ("TSLA", "3", [])]
    assert [(o["symbol"], o["type"], o["leg"], o["status"], o["tracked"])
            for o in plan["orders"]] == [
        ("AAPL", "limit", True, "new", True), ("AAPL", "stop", True, "new", True),
        ("MSFT", "limit", False, "new", True), ("MSFT", "limit", True, "held", True),
        ("MSFT", "stop", True, "held", True)]
    assert plan["entries_to_cancel"] == ["MSFT"]
    assert plan["alerts"] == ["e-mail to trader@example.test",
                              f"webhook to http://127.0.0.1:{webhook.port}/…"]
    (request,) = document["requests"]
    assert (request["method"], request["url"]) == (
        "DELETE", f"{fake.url}/v2/positions?cancel_orders=true")
    # nothing latched, cancelled, closed, recorded or alerted
    assert table_counts(trader) == before and writes(fake) == writes_before
    assert len(fake.positions_list()) == 2 and len(fake.open_orders()) == 5  # legs too
    assert smtp.messages == [] and webhook.attempts == 0
    text = trader("halt", "--reason", "checking", "--dry-run")
    assert "close    2 position(s) held at Alpaca" in text.stdout
    assert "TSLA    long  3    250.00  $750.00       $0.00           external" in text.stdout


@pytest.mark.usefixtures("fake")
def test_halt_dry_run_exits_as_the_real_halt_would(trader: Cli) -> None:
    assert trader(*OPEN_AAPL).code == 0
    down = trader("halt", "--reason", "checking", "--dry-run", "--json", env=DOWN)
    assert down.code == 4
    assert "could not read the positions at Alpaca" in " ".join(down.json()["notes"])
    empty = trader("halt", "--reason", " ", "--dry-run")
    assert empty.code == 2


def test_halt_dry_run_without_a_broker_closes_locally(cli: Cli) -> None:
    assert cli(*OPEN_AAPL).code == 0
    result = cli("halt", "--reason", "checking", "--dry-run", "--json")
    assert result.code == 0 and result.json()["plan"]["closed_locally"] == ["AAPL"]
    assert result.json()["requests"] == []
    assert count_rows(cli.env["DATABASE_URL"], Cycle) == 1  # still active, not latched
    assert cli("open", "MSFT", "--qty", "1", "--stop", "390", "--target", "420").code == 0


def test_the_dry_run_never_prints_the_keys(trader: Cli, fake: FakeAlpaca) -> None:
    env = broker_env(fake)
    for args in ((*OPEN_AAPL, "--dry-run", "--json"),
                 ("halt", "--reason", "x", "--dry-run", "--json")):
        output = trader(*args).output
        assert env["ALPACA_SECRET_KEY"] not in output and env["ALPACA_API_KEY"] not in output


# -- close and adjust ---------------------------------------------------------------------------


def sent_since(fake: FakeAlpaca, count: int) -> list[tuple[str, str, dict, object]]:
    return [(r.method, r.path, r.query, r.json) for r in fake.requests if r.method != "GET"][
        count:]


def described(document: dict) -> list[tuple[str, str, dict, object]]:
    return [(r["method"], r["path"], r["params"], r["body"]) for r in document["requests"]]


def open_and_tick(trader: Cli, *args: str) -> None:
    assert trader(*(args or OPEN_AAPL)).code == 0
    assert trader("watch", "--once").code == 0  # filled, its exits recorded


def test_close_dry_run_shows_what_the_real_close_then_sends(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    open_and_tick(trader)
    fake.add_position("AAPL", 15, "150")  # 5 more shares held outside this position
    before, count = table_counts(trader), len(writes(fake))
    result = trader("close", "AAPL", "--dry-run", "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["command"] == "close" and document["refusal"] is None
    plan = document["plan"]
    assert (plan["action"], plan["status"], plan["qty"], plan["account_qty"]) == (
        "close", "open", "10", "15")
    assert [(o["symbol"], o["leg"], o["status"]) for o in plan["cancel"]] == [
        ("AAPL", True, "new")]  # one cancel: Alpaca cancels the rest of the bracket
    (cancel, close) = document["requests"]
    assert (cancel["method"], cancel["url"]) == (
        "DELETE", f"{fake.url}/v2/orders/{plan['cancel'][0]['id']}")
    assert (close["method"], close["url"]) == ("DELETE", f"{fake.url}/v2/positions/AAPL?qty=10")
    assert table_counts(trader) == before and writes(fake)[count:] == []
    assert len(fake.open_orders()) == 2

    real = trader("close", "AAPL", "--json")
    assert real.code == 0 and real.json()["state"] in ("closing", "closed")
    assert sent_since(fake, count) == described(document)  # what was shown is what went
    assert trader("watch", "--once").code == 0  # records the close's fill
    gone = trader("close", "AAPL", "--dry-run")
    assert gone.code == 2 and "no live position in 'AAPL'" in gone.stderr


def test_close_dry_run_of_an_unfilled_entry_cancels_it_and_nothing_else(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    open_and_tick(trader, *OPEN_AAPL, "--entry", "148")
    count = len(writes(fake))
    result = trader("close", "1", "--dry-run")
    assert result.code == 0, result.output
    assert "then     cancel the unfilled entry" in result.stdout
    (entry,) = [o for o in fake.open_orders() if o["side"] == "buy"]
    assert f"request  DELETE {fake.url}/v2/orders/{entry['id']}\n" in result.stdout
    assert result.stdout.splitlines()[-1] == "verdict  would go ahead (exit 0)"
    assert writes(fake)[count:] == []
    assert trader("close", "1").code == 0
    assert [s[:2] for s in sent_since(fake, count)] == [("DELETE", f"/v2/orders/{entry['id']}")]


def test_close_dry_run_exits_as_the_real_close_would(trader: Cli, fake: FakeAlpaca) -> None:
    open_and_tick(trader)
    fake.set_market_open(False)
    assert trader("halt", "--reason", "stop here").code == 0  # the close waits: `closing`
    before, count = table_counts(trader), len(writes(fake))
    closing = trader("close", "AAPL", "--dry-run", "--json")
    assert closing.code == 0 and closing.json()["plan"]["action"] == "none"
    assert closing.json()["requests"] == []
    assert closing.json()["notes"] == [
        "a close is already working: `tradectl watch` records its fill"]
    assert trader("close", "MSFT", "--dry-run").code == 2
    down = trader("close", "AAPL", "--dry-run", env=DOWN)
    assert down.code == 4 and down.stderr.startswith("error: could not connect to Alpaca")
    assert table_counts(trader) == before and writes(fake)[count:] == []


def test_close_dry_run_is_allowed_while_stopped_and_settles_what_alpaca_no_longer_holds(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    open_and_tick(trader)
    fake.fail_close("AAPL")
    assert trader("halt", "--reason", "test").code == 4  # legs cancelled, close refused
    fake.fail_close("AAPL", None)
    stopped = trader("close", "AAPL", "--dry-run", "--json")
    assert stopped.code == 0, stopped.output
    assert stopped.json()["plan"]["cycle_status"] == "stopped"
    assert [r["url"] for r in stopped.json()["requests"]] == [
        f"{fake.url}/v2/positions/AAPL"]  # no exit order is left to cancel
    assert "trading is stopped: closing is still allowed" in stopped.json()["notes"]

    fake.reset()  # Alpaca holds nothing any more, and no order of its own is working
    settled = trader("close", "AAPL", "--dry-run", "--json")
    assert settled.code == 0  # the real close settles it (issue 23): nothing is sent
    assert settled.json()["requests"] == []
    assert settled.json()["notes"] == ["the position is closed at Alpaca: nothing would be sent"]


def test_adjust_dry_run_shows_the_patches_the_real_adjust_then_sends(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    open_and_tick(trader)
    fake.set_price("AAPL", "152")
    before, count = table_counts(trader), len(writes(fake))
    result = trader("adjust", "AAPL", "--stop", "147", "--target", "158", "--dry-run", "--json")
    assert result.code == 0, result.output
    document = result.json()
    plan = document["plan"]
    assert (plan["last_trade"], plan["stop"], plan["target"]) == ("152.00", "147.00", "158.00")
    assert [(leg["leg"], leg["old_price"], leg["new_price"], leg["action"])
            for leg in plan["legs"]] == [("stop", "145.00", "147.00", "replace"),
                                         ("target", "160.00", "158.00", "replace")]
    assert [r["body"] for r in document["requests"]] == [{"stop_price": "147.00"},
                                                         {"limit_price": "158.00"}]
    assert [r["url"] for r in document["requests"]] == [
        f"{fake.url}/v2/orders/{leg['order_id']}" for leg in plan["legs"]]
    assert [c["rule"] for c in document["checks"]] == ["exit_prices_last_trade"]
    assert table_counts(trader) == before and writes(fake)[count:] == []

    assert trader("adjust", "AAPL", "--stop", "147", "--target", "158").code == 0
    assert sent_since(fake, count) == described(document)


def test_adjust_dry_run_exits_as_the_real_adjust_would(trader: Cli, fake: FakeAlpaca) -> None:
    open_and_tick(trader)
    before, count = table_counts(trader), len(writes(fake))
    above = trader("adjust", "AAPL", "--stop", "151", "--dry-run")
    assert above.code == 2
    assert "--stop 151.00 must be at least 0.01 below the last trade 150.00" in above.stderr
    assert trader("adjust", "AAPL", "--dry-run").code == 2  # neither --stop nor --target
    unchanged = trader("adjust", "AAPL", "--stop", "145", "--dry-run", "--json")
    assert unchanged.code == 0 and unchanged.json()["requests"] == []
    assert unchanged.json()["plan"]["legs"][0]["action"] == "unchanged"
    assert trader("adjust", "AAPL", "--stop", "146", "--dry-run", env=DOWN).code == 4
    fake.set_market_open(False)
    assert trader("close", "AAPL").code == 0  # its close waits for the open: `closing`
    count = len(writes(fake))
    closing = trader("adjust", "AAPL", "--stop", "146", "--dry-run", "--json")
    assert closing.code == 3
    assert closing.json()["refusal"] == "AAPL #1 is closing: there is nothing to adjust"
    assert table_counts(trader)["positions"] == before["positions"]
    assert writes(fake)[count:] == []


def test_close_and_adjust_dry_runs_without_a_broker_touch_the_database_only(cli: Cli) -> None:
    assert cli(*OPEN_AAPL).code == 0
    before = table_counts(cli)
    close = cli("close", "AAPL", "--dry-run", "--json")
    assert close.code == 0 and close.json()["plan"]["action"] == "close_locally"
    adjust = cli("adjust", "AAPL", "--target", "170", "--dry-run", "--json")
    assert adjust.code == 0 and adjust.json()["requests"] == []
    assert [leg["action"] for leg in adjust.json()["plan"]["legs"]] == ["recorded"]
    assert cli("adjust", "AAPL", "--stop", "171", "--dry-run").code == 2  # above the target
    assert table_counts(cli) == before


def test_close_and_adjust_dry_runs_never_print_the_keys(trader: Cli, fake: FakeAlpaca) -> None:
    open_and_tick(trader)
    env = broker_env(fake)
    for args in (("close", "AAPL", "--dry-run", "--json"), ("close", "AAPL", "--dry-run"),
                 ("adjust", "AAPL", "--stop", "146", "--dry-run", "--json")):
        output = trader(*args).output
        assert env["ALPACA_SECRET_KEY"] not in output and env["ALPACA_API_KEY"] not in output
