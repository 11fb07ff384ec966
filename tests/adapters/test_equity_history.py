"""The day's equity from GET /v2/account/portfolio/history (MAX_DRAWDOWN_FROM_PEAK's peak after
a gap): the adapter's request against the HTTP fake, and wire.py's strict reading of it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.adapters.fake_alpaca.spec_log import spec_problems
from tests.adapters.test_spec_conformance import adapter
from tests.fakes.alpaca import FakeAlpaca
from tradectl.broker import EquityPoint, wire
from tradectl.errors import BrokerProtocolError


def test_the_adapter_reads_todays_1_minute_equity_from_the_days_start(fake: FakeAlpaca) -> None:
    fake.set_clock("2026-11-30T15:00:00", is_open=True, next_open="2026-12-01T09:30:00",
                   next_close="2026-11-30T16:00:00")
    fake.set_equity_history([("2026-11-27T12:00:00", "120000"),  # the trading day before
                             ("2026-11-30T08:00:30", "100050"),  # pre-market counts
                             ("2026-11-30T12:00:10", "100600"),
                             ("2026-11-30T14:59:00", "100100")])
    start = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # midnight in New York

    points = adapter(fake).equity_history(start)

    assert points == [
        EquityPoint(datetime(2026, 11, 30, 13, 0, tzinfo=UTC), Decimal("100050.0")),
        EquityPoint(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), Decimal("100600.0")),
        EquityPoint(datetime(2026, 11, 30, 19, 59, tzinfo=UTC), Decimal("100100.0"))]
    (request,) = [r for r in fake.requests if r.path == "/v2/account/portfolio/history"]
    assert request.query == {"start": "2026-11-30T05:00:00+00:00", "timeframe": "1Min",
                             "intraday_reporting": "extended_hours"}
    assert spec_problems(fake) == {}  # the request and the answer as Alpaca's spec says


def decoded(text: str) -> object:
    return wire.decode(text.encode())


def test_a_null_equity_is_left_out_and_the_rest_read_exactly() -> None:
    raw = decoded('{"timestamp": [1796049000, 1796049060], "equity": [null, 100600.07],'
                  ' "profit_loss": [0, 0], "profit_loss_pct": [0, 0], "base_value": 1,'
                  ' "timeframe": "1Min"}')
    assert wire.parse_equity_history(raw) == [
        EquityPoint(datetime(2026, 11, 30, 14, 31, tzinfo=UTC), Decimal("100600.07"))]


@pytest.mark.parametrize(("body", "field"), [
    ('{"timestamp": [1796049000], "equity": []}', "portfolio_history.equity"),
    ('{"timestamp": ["1796049000"], "equity": [1]}', "portfolio_history.timestamp[0]"),
    ('{"timestamp": [1796049000], "equity": [true]}', "portfolio_history.equity[0]"),
    ('{"timestamp": [1796049000], "equity": ["1e5"]}', "portfolio_history.equity[0]"),
    ('{"timestamp": null, "equity": []}', "portfolio_history.timestamp"),
])
def test_an_unreadable_history_is_an_error_never_a_peak(body: str, field: str) -> None:
    with pytest.raises(BrokerProtocolError) as caught:
        wire.parse_equity_history(decoded(body))
    assert caught.value.field == field
