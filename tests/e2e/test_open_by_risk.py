"""`tradectl open --risk DOLLARS`: the quantity from the dollars a trade may lose, shown in the
output and the JSON, then the usual rules; against the fake Alpaca, both databases."""

from __future__ import annotations

from tests.conftest import Cli, count_rows
from tests.fakes.alpaca import FakeAlpaca
from tradectl.db.models import Position

BRACKET = ("--stop", "144.10", "--target", "160")


def test_a_market_entry_is_sized_from_the_last_trade(trader: Cli, fake: FakeAlpaca) -> None:
    # last trade 150.00, stop 144.10: 5.90 a share; $200 / 5.90 = 33.9 -> 33 shares, $194.70
    result = trader("open", "AAPL", "--risk", "200", *BRACKET, "--json")
    assert result.code == 0, result.output
    document = result.json()
    assert document["qty"] == "33"
    assert document["sizing"] == {"budget": "200.00", "price": "150.00", "stop": "144.10",
                                  "per_share": "5.90", "qty": 33, "risk": "194.70"}
    (order,) = [r for r in fake.requests if r.method == "POST"]
    assert order.json["qty"] == "33"


def test_a_limit_entry_is_sized_from_the_entry_and_shown(trader: Cli) -> None:
    # entry 148.00, stop 144.10: 3.90 a share; $100 / 3.90 = 25.6 -> 25 shares, $97.50
    result = trader("open", "AAPL", "--risk", "100", "--entry", "148", *BRACKET)
    assert result.code == 0, result.output
    assert "buy 25 AAPL @ 148.00" in result.stdout
    assert "by --risk: 25 shares x $3.90 (|148.00 - 144.10|) = $97.50 of $100.00" in result.stdout


def test_a_budget_too_small_for_one_share_exits_2_with_the_figures(
    trader: Cli, fake: FakeAlpaca,
) -> None:
    result = trader("open", "AAPL", "--risk", "5", *BRACKET)
    assert result.code == 2
    assert result.stderr == ("error: --risk $5.00 buys no share: one share risks $5.90 "
                             "(|150.00 - 144.10|), --risk is $5.00 (raise --risk or move --stop "
                             "closer)\n")
    assert not [r for r in fake.requests if r.method == "POST"]
    assert count_rows(trader.env["DATABASE_URL"], Position) == 0


def test_the_sized_trade_still_meets_the_risk_rules(trader: Cli) -> None:
    # $600 / 5.90 = 101 shares: a budget above MAX_RISK_PER_TRADE $500 -> refused
    result = trader("open", "AAPL", "--risk", "600", *BRACKET)
    assert result.code == 3
    assert "risk budget $600.00 (--risk) is above MAX_RISK_PER_TRADE $500.00" in result.stderr


def test_a_budget_over_the_limit_is_refused_even_when_the_shares_fit(trader: Cli,
                                                                      fake: FakeAlpaca) -> None:
    # $502 / 5.00 = 100 shares risking exactly $500: the budget itself is over the limit
    result = trader("open", "AAPL", "--risk", "502", "--stop", "145", "--target", "160",
                    "--json")
    assert result.code == 3, result.output
    assert result.json()["rule"] == "max_risk_per_trade"
    assert "risk budget $502.00 (--risk) is above MAX_RISK_PER_TRADE $500.00" in \
        result.json()["error"]
    assert fake.count("POST", "/v2/orders") == 0
    within = trader("open", "AAPL", "--risk", "500", "--stop", "145", "--target", "160")
    assert within.code == 0, within.output


def test_qty_and_risk_are_one_or_the_other(cli: Cli) -> None:
    both = cli("open", "AAPL", "--qty", "1", "--risk", "100", *BRACKET)
    neither = cli("open", "AAPL", *BRACKET)
    assert (both.code, neither.code) == (2, 2)
    assert "pass either --qty (shares) or --risk (dollars), not both" in both.stderr
    assert "not neither" in neither.stderr
    bad = cli("open", "AAPL", "--risk", "1e3", *BRACKET)
    assert bad.code == 2 and "--risk must be a positive dollar amount" in bad.stderr


def test_without_a_broker_a_market_entry_cannot_be_sized(cli: Cli) -> None:
    result = cli("open", "AAPL", "--risk", "100", *BRACKET)
    assert result.code == 2 and "--risk needs a price to size the trade" in result.stderr
    local = cli("open", "AAPL", "--risk", "100", "--entry", "148", *BRACKET, "--json")
    assert local.code == 0 and local.json()["qty"] == "25"
