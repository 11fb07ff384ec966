"""`open --risk`: sizing a trade by the dollars it risks, and every rule's verdict with its
figures (what a dry run shows). Figures worked out by hand in the comments."""

from decimal import Decimal as D

import pytest

from tests.unit.test_risk import EMPTY_BOOK, LIMITS, spec
from tradectl.domain.bracket import MAX_QTY, size_by_risk
from tradectl.domain.money import parse_dollars
from tradectl.domain.pre_trade import BookState, pre_trade_checks, pre_trade_refusal
from tradectl.errors import InputError


@pytest.mark.parametrize("budget, price, stop, qty, risk", [
    # $200 / |150 - 145| = 200 / 5 = 40 shares exactly: 40 x 5 = 200
    ("200", "150", "145", 40, "200"),
    # $200 / |150.00 - 144.10| = 200 / 5.90 = 33.89... -> 33 shares: 33 x 5.90 = 194.70
    ("200", "150.00", "144.10", 33, "194.70"),
    # a short: $500 / |250 - 262.35| = 500 / 12.35 = 40.48... -> 40: 40 x 12.35 = 494.00
    ("500", "250", "262.35", 40, "494.00"),
    # sub-dollar: $10 / |0.5000 - 0.4850| = 10 / 0.015 = 666.66... -> 666: 666 x 0.015 = 9.990
    ("10", "0.5000", "0.4850", 666, "9.990"),
    # the budget's cents count: $99.99 / 3.33 = 30.027... -> 30; $99.89 / 3.33 = 29.99... -> 29
    ("99.99", "103.33", "100", 30, "99.90"),
    ("99.89", "103.33", "100", 29, "96.57"),
])
def test_the_largest_whole_number_of_shares_whose_risk_fits(
    budget: str, price: str, stop: str, qty: int, risk: str,
) -> None:
    sizing = size_by_risk(D(budget), D(price), D(stop))
    assert sizing.qty == qty and sizing.risk == D(risk)
    assert sizing.risk <= sizing.budget < sizing.risk + sizing.per_share  # one more would not fit
    assert isinstance(sizing.risk, D)


def test_zero_shares_is_an_input_error_with_the_figures() -> None:
    with pytest.raises(InputError) as raised:
        size_by_risk(D("4.99"), D("150"), D("145"))
    assert raised.value.message == ("--risk $4.99 buys no share: one share risks $5.00 "
                                    "(|150.00 - 145.00|), --risk is $4.99")
    assert raised.value.hint == "raise --risk or move --stop closer"


def test_more_shares_than_an_order_carries_is_an_input_error() -> None:
    # $200 / 0.0001 = 2,000,000 > 1,000,000
    with pytest.raises(InputError, match=f"would buy 2,000,000 shares, more than {MAX_QTY:,}"):
        size_by_risk(D("200"), D("0.5001"), D("0.5000"))


@pytest.mark.parametrize("text", ["0", "-5", "1e3", "abc", "", "1.005", "0.00", "1,000", "nan"])
def test_risk_dollars_must_be_plain_positive_dollars_and_cents(text: str) -> None:
    with pytest.raises(InputError, match="--risk must be a positive dollar amount"):
        parse_dollars(text, "--risk")


def test_risk_dollars_are_kept_exact() -> None:
    assert parse_dollars(" 250.50 ", "--risk") == D("250.50")


def test_every_rule_says_its_verdict_and_figures() -> None:
    # qty 10 at 150, stop 145: notional 1,500, risk 50; day P&L -120
    book = BookState(frozenset({"MSFT"}), 1, D("-120"), D("50000"))
    checks = pre_trade_checks(spec(qty=10), D("150"), book, LIMITS)
    assert [(c.rule, c.passed, c.message) for c in checks] == [
        ("open_position_in_symbol", True, "no open, pending or untracked AAPL position"),
        ("max_open_positions", True, "1 positions are open; MAX_OPEN_POSITIONS is 3"),
        ("max_position_notional", True,
         "notional $1,500.00 is within MAX_POSITION_NOTIONAL $10,000.00"),
        ("max_risk_per_trade", True,
         "risk $50.00 (qty x |price - stop|) is within MAX_RISK_PER_TRADE $500.00"),
        ("daily_loss_limit", True,
         "the day's P&L -$120.00 is short of -DAILY_LOSS_LIMIT -$2,000.00"),
        ("buying_power", True,
         "notional $1,500.00 is within the account's buying power $50,000.00"),
    ]
    assert checks[2].figures == {"notional": "1500", "limit": "10000"}


def test_the_refusal_is_the_first_rule_that_fails() -> None:
    # qty 100 at 150, stop 140: notional 15,000 > 10,000 and risk 1,000 > 500
    checks = pre_trade_checks(spec(qty=100, stop=D("140")), D("150"), EMPTY_BOOK, LIMITS)
    assert [c.rule for c in checks if not c.passed] == ["max_position_notional",
                                                        "max_risk_per_trade"]
    refusal = pre_trade_refusal(spec(qty=100, stop=D("140")), D("150"), EMPTY_BOOK, LIMITS)
    assert refusal is not None and refusal.rule == "max_position_notional"
