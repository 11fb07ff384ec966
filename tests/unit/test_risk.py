"""The pure risk rules: input on Alpaca's tick, bracket ordering, pre-trade checks, loss limit."""

from decimal import Decimal as D

import pytest

from tradectl.broker import BracketRequest
from tradectl.domain.bracket import (
    check_bracket_against_base,
    check_bracket_shape,
    check_exit_prices,
    parse_qty,
    parse_side,
    parse_symbol,
)
from tradectl.domain.loss_limit import loss_limit_reached, loss_warning_reached
from tradectl.domain.money import parse_price, tick_for
from tradectl.domain.pre_trade import BookState, RiskLimits, pre_trade_refusal
from tradectl.errors import InputError

LIMITS = RiskLimits(
    max_open_positions=3,
    max_position_notional=D("10000"),
    max_risk_per_trade=D("500"),
    daily_loss_limit=D("2000"),
)
EMPTY_BOOK = BookState(open_symbols=frozenset(), open_count=0, day_pnl=D(0),
                       buying_power=D("50000"))


def spec(**overrides: object) -> BracketRequest:
    values: dict[str, object] = dict(symbol="AAPL", side="buy", qty=1, stop=D("145"),
                                     target=D("160"), entry=None, time_in_force="day")
    values.update(overrides)
    return BracketRequest(**values)  # type: ignore[arg-type]  # overrides: any field, any value


@pytest.mark.parametrize("text, expected", [("aapl", "AAPL"), (" msft ", "MSFT"),
                                            ("brk.b", "BRK.B")])
def test_symbols_are_upper_cased(text: str, expected: str) -> None:
    assert parse_symbol(text) == expected


@pytest.mark.parametrize("text", ["", "1ABC", "AAPL;DROP", "A A", "ÄPPL", "TOOLONGSYMBOL1",
                                  "BTC/USD", "AAPL.", "'"])
def test_malformed_symbols_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="symbol"):
        parse_symbol(text)


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "1e3", "abc", "", "١", "99999999999",
                                  "9" * 5000])
def test_qty_must_be_a_positive_whole_number(text: str) -> None:
    with pytest.raises(InputError, match="--qty"):
        parse_qty(text)


def test_qty_accepts_whole_shares() -> None:
    assert parse_qty("10") == 10


@pytest.mark.parametrize("text, expected", [("145", D("145.00")), ("145.5", D("145.50")),
                                            ("145.000", D("145.00")), ("0.1234", D("0.1234")),
                                            ("1.00", D("1.00"))])
def test_prices_on_the_tick_are_accepted(text: str, expected: D) -> None:
    price = parse_price(text, "--stop")
    assert price == expected
    assert price.as_tuple().exponent == expected.as_tuple().exponent


@pytest.mark.parametrize("text", ["145.001", "1.005", "0.12345", "0.00001"])
def test_prices_off_the_tick_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="tick"):
        parse_price(text, "--stop")


@pytest.mark.parametrize("text", ["0", "-5", "nan", "inf", "1e2", "", "1,5", "0x10", "-0",
                                  "2000000"])
def test_prices_must_be_plain_positive_decimals(text: str) -> None:
    with pytest.raises(InputError, match="--stop"):
        parse_price(text, "--stop")


def test_tick_is_a_cent_from_one_dollar() -> None:
    assert tick_for(D("1")) == D("0.01")
    assert tick_for(D("0.9999")) == D("0.0001")


def test_side_is_buy_or_sell() -> None:
    assert parse_side("SELL") == "sell"
    with pytest.raises(InputError):
        parse_side("short")


def test_buy_stop_must_be_below_target() -> None:
    with pytest.raises(InputError, match="below --target"):
        check_bracket_shape(spec(stop=D("160"), target=D("145")))


def test_sell_stop_must_be_above_target() -> None:
    check_bracket_shape(spec(side="sell", stop=D("160"), target=D("145")))
    with pytest.raises(InputError, match="above --target"):
        check_bracket_shape(spec(side="sell"))


def test_limit_entry_must_sit_between_stop_and_target() -> None:
    check_bracket_shape(spec(entry=D("150")))
    with pytest.raises(InputError, match="--stop 145.00 must be at least 0.01 below --entry"):
        check_bracket_shape(spec(entry=D("145.00")))
    with pytest.raises(InputError, match="--target 160.00 must be at least 0.01 above"):
        check_bracket_shape(spec(entry=D("159.995")))


def test_market_bracket_is_checked_against_the_last_trade() -> None:
    check_bracket_against_base(spec(), D("150"), base_name="the last trade")
    with pytest.raises(InputError, match="below the last trade 144"):
        check_bracket_against_base(spec(), D("144"), base_name="the last trade")
    with pytest.raises(InputError, match="above the last trade 170"):
        check_bracket_against_base(spec(side="sell", stop=D("160"), target=D("150")), D("170"),
                                   base_name="the last trade")


@pytest.mark.parametrize(("side", "stop", "target", "refused"), [
    ("buy", "149.99", "150.01", None),
    ("buy", "150.00", "160", "--stop 150.00 must be at least 0.01 below the last trade 150"),
    ("buy", "145", "150", "--target 150.00 must be at least 0.01 above the last trade 150"),
    ("sell", "150.01", "149.99", None),
    ("sell", "149.99", "140", "--stop 149.99 must be at least 0.01 above the last trade 150"),
    ("sell", "155", "150.5", "--target 150.50 must be at least 0.01 below the last trade 150"),
])
def test_moved_exits_are_checked_against_the_last_trade(
    side: str, stop: str, target: str, refused: str | None
) -> None:
    """`adjust`: a long's stop below the market and its target above, a short's the reverse."""
    if refused is None:
        check_exit_prices(side, D(stop), D(target), D("150"), base_name="the last trade")
        return
    with pytest.raises(InputError) as caught:
        check_exit_prices(side, D(stop), D(target), D("150"), base_name="the last trade")
    assert caught.value.message.startswith(refused)


def test_a_trade_within_every_limit_passes() -> None:
    assert pre_trade_refusal(spec(), D("150"), EMPTY_BOOK, LIMITS) is None


def test_second_position_in_a_symbol_is_refused() -> None:
    book = BookState(frozenset({"AAPL"}), 1, D(0), D("50000"))
    refusal = pre_trade_refusal(spec(), D("150"), book, LIMITS)
    assert refusal is not None and refusal.rule == "open_position_in_symbol"


def test_max_open_positions() -> None:
    book = BookState(frozenset({"A", "B", "C"}), 3, D(0), D("50000"))
    refusal = pre_trade_refusal(spec(), D("150"), book, LIMITS)
    assert refusal is not None and refusal.rule == "max_open_positions"
    assert refusal.figures == {"open_positions": "3", "limit": "3"}


def test_max_notional_names_the_figures() -> None:
    refusal = pre_trade_refusal(spec(qty=100, stop=D("149"), target=D("160")), D("150"),
                                EMPTY_BOOK, LIMITS)
    assert refusal is not None and refusal.rule == "max_position_notional"
    assert refusal.figures["notional"] == "15000"
    assert "$15,000.00" in refusal.message


def test_max_risk_per_trade_uses_distance_to_stop() -> None:
    refusal = pre_trade_refusal(spec(qty=60, stop=D("140"), target=D("160")), D("150"),
                                EMPTY_BOOK, LIMITS)
    assert refusal is not None and refusal.rule == "max_risk_per_trade"
    assert refusal.figures["risk"] == "600"
    assert pre_trade_refusal(spec(qty=50, stop=D("140"), target=D("160")), D("150"),
                             EMPTY_BOOK, LIMITS) is None


def test_day_loss_past_the_limit_refuses_new_entries() -> None:
    book = BookState(frozenset(), 0, D("-2000"), D("50000"))
    refusal = pre_trade_refusal(spec(), D("150"), book, LIMITS)
    assert refusal is not None and refusal.rule == "daily_loss_limit"


def test_buying_power() -> None:
    book = BookState(frozenset(), 0, D(0), D("100"))
    refusal = pre_trade_refusal(spec(), D("150"), book, LIMITS)
    assert refusal is not None and refusal.rule == "buying_power"


def test_without_a_price_the_worst_case_of_the_bracket_is_assumed() -> None:
    # qty 40, bracket 145..160: risk could be 40 x 15 = 600 > 500
    refusal = pre_trade_refusal(spec(qty=40), None, EMPTY_BOOK, LIMITS)
    assert refusal is not None and refusal.rule == "max_risk_per_trade"


def test_loss_limit_is_reached_at_exactly_minus_the_limit() -> None:
    assert loss_limit_reached(D("-2000"), D("2000"))
    assert not loss_limit_reached(D("-1999.99"), D("2000"))
    assert loss_warning_reached(D("-1600"), D("2000"))
    assert not loss_warning_reached(D("-1599.99"), D("2000"))
