"""GET /v2/account/portfolio/history from the equity points a test sets (set_equity_history).

What the fake models of the spec: period (<n>D/W/M/A, default 1M), timeframe (1Min, 5Min,
15Min, 1H, 1D; defaulting as the spec says from the period), intraday_reporting
(market_hours 09:30-16:00 ET, extended_hours 04:00-20:00 ET, continuous), start / end (only
two of start, end, period at once: all three answer 422), pnl_reset (accepted; the base is
always base_value). Each window answers its last point's equity, labelled with the window's
start (left-labelled, UNIX seconds), from the points inside [start, end]. base_value is the
account's last_equity (the previous close) unless the test set one. Without any points set,
the answer is one point: the account's current equity at the clock's time.
Not modelled: cashflow, session-start rounding of start for intraday timeframes, holidays.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from .market_clock import ET, parse_moment
from .model import ApiError, JsonObject, Query

TIMEFRAMES = {
    "1Min": timedelta(minutes=1),
    "5Min": timedelta(minutes=5),
    "15Min": timedelta(minutes=15),
    "1H": timedelta(hours=1),
    "1D": timedelta(days=1),
}
UNIT_DAYS = {"D": 1, "W": 7, "M": 30, "A": 365}
WINDOWS = {
    "market_hours": (time(9, 30), time(16, 0)),
    "extended_hours": (time(4, 0), time(20, 0)),
    "continuous": (time(0, 0), time(23, 59, 59, 999999)),
}


def _period(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([DWMA])", text)
    if not match or int(match[1]) < 1:
        raise ApiError(422, "invalid period")
    return timedelta(days=int(match[1]) * UNIT_DAYS[match[2]])


def _moment(query: Query, name: str) -> datetime | None:
    if name not in query:
        return None
    try:
        return parse_moment(query[name])
    except ValueError:
        raise ApiError(422, f"invalid {name}") from None


def _timeframe(query: Query, span: timedelta) -> str:
    if "timeframe" not in query:
        if span < timedelta(days=7):
            return "1Min"
        return "15Min" if span < timedelta(days=30) else "1D"
    name = query["timeframe"]
    if name not in TIMEFRAMES:
        raise ApiError(422, "invalid timeframe")
    if name != "1D" and span > timedelta(days=30):
        raise ApiError(422, "intraday timeframes are limited to 30 days")
    return name


def _window(query: Query, clock_now: datetime) -> tuple[datetime, datetime]:
    start, end = _moment(query, "start"), _moment(query, "end")
    if start is not None and end is not None and "period" in query:
        raise ApiError(422, "only two of start, end and period can be specified")
    if start is not None and end is None and "period" in query:
        return start, start + _period(query["period"])
    end = end or clock_now
    return (start, end) if start is not None else (end - _period(query.get("period", "1M")), end)


def _label(moment: datetime, timeframe: str) -> datetime:
    local = moment.astimezone(ET)
    if timeframe == "1D":
        return datetime.combine(local.date(), time(0, 0), ET)
    step = int(TIMEFRAMES[timeframe].total_seconds())
    seconds = local.hour * 3600 + local.minute * 60
    midnight = datetime.combine(local.date(), time(0, 0), ET)
    return midnight + timedelta(seconds=seconds - seconds % step)


def _pct(change: Decimal, base: Decimal) -> float:
    return float((change / base).quantize(Decimal("0.0001"))) if base else 0.0


def portfolio_history(
    query: Query, points: list[tuple[datetime, Decimal]], base_value: Decimal, clock_now: datetime
) -> JsonObject:
    reporting = query.get("intraday_reporting", "market_hours")
    if reporting not in WINDOWS:
        raise ApiError(422, "invalid intraday_reporting")
    if query.get("pnl_reset", "per_day") not in ("per_day", "no_reset"):
        raise ApiError(422, "invalid pnl_reset")
    start, end = _window(query, clock_now)
    if end < start:
        raise ApiError(422, "end is before start")
    timeframe = _timeframe(query, end - start)
    opens, closes = WINDOWS["continuous" if timeframe == "1D" else reporting]
    buckets: dict[datetime, Decimal] = {}
    for moment, equity in sorted(points):
        local = moment.astimezone(ET)
        if start <= moment <= end and opens <= local.time() <= closes:
            buckets[_label(moment, timeframe)] = equity  # the window's last point wins
    labels = sorted(buckets)
    equities = [buckets[label] for label in labels]
    return {
        "timestamp": [int(label.astimezone(UTC).timestamp()) for label in labels],
        "equity": [float(e) for e in equities],
        "profit_loss": [float(e - base_value) for e in equities],
        "profit_loss_pct": [_pct(e - base_value, base_value) for e in equities],
        "base_value": float(base_value),
        "timeframe": timeframe,
    }
