"""HTTP routing of the fake: (method, path, query, body) -> (status, JSON payload).

Trading API paths follow the spec (/v2/account, /v2/orders, ...); the market-data
latest-trade paths (/v2/stocks/...) are served by the same server. An unknown
symbol on GET /v2/stocks/{symbol}/trades/latest answers 404 {"code": 40410000,
"message": "symbol not found"} (the market-data extract documents no 404, so this
is the fake's choice); the multi-symbol endpoint leaves unknown symbols out of
its "trades" map.

With broker.ignore_paging set (FakeAlpaca.ignore_paging), GET /v2/orders drops
before_order_id / after_order_id before anything else looks at the query, as a proxy
that strips them would: every page is the newest one again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeAlias

from .broker import Broker
from .history import portfolio_history
from .market_clock import parse_moment
from .model import ApiError, JsonObject, Query, rfc3339
from .validation import decimal_field

FEEDS = ("delayed_sip", "iex", "otc", "sip", "boats", "overnight")


def _bool(query: Query, name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise ApiError(422, f"invalid {name}")
    return value == "true"


def _choice(query: Query, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _optional_choice(query, name, allowed)
    return default if value is None else value


def _optional_choice(query: Query, name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise ApiError(422, f"invalid {name}")
    return value


def _timestamp(query: Query, name: str) -> datetime | None:
    if name not in query:
        return None
    try:
        moment = datetime.fromisoformat(query[name])
    except ValueError:
        raise ApiError(422, f"invalid {name}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _optional_decimal(query: Query, name: str) -> Decimal | None:
    return decimal_field(query[name], name) if name in query else None


def clock(broker: Broker, _query: Query, _body: object) -> JsonObject:
    return broker.clock.v2(broker.market_open)


def clock_v3(broker: Broker, query: Query, _body: object) -> JsonObject:
    markets = [m.strip().upper() for m in query.get("markets", "").split(",") if m.strip()]
    at = None
    if "time" in query:
        try:
            at = parse_moment(query["time"])
        except ValueError:
            raise ApiError(400, "invalid time") from None
    return broker.clock.v3(broker.market_open, markets, at)


def history(broker: Broker, query: Query, _body: object) -> JsonObject:
    long_mv, short_mv = broker.market_values()
    points = broker.equity_points or [(broker.clock.moment(), broker.cash + long_mv + short_mv)]
    base = broker.last_equity if broker.history_base is None else broker.history_base
    return portfolio_history(query, points, base, broker.clock.moment())


def list_orders(broker: Broker, query: Query, _body: object) -> list[JsonObject]:
    try:
        limit = min(500, int(query.get("limit", "50")))
    except ValueError:
        raise ApiError(422, "invalid limit") from None
    if limit < 1:
        raise ApiError(422, "invalid limit")
    symbols = [s.strip().upper() for s in query.get("symbols", "").split(",") if s.strip()]
    if broker.ignore_paging:
        query = {k: v for k, v in query.items() if k not in ("before_order_id", "after_order_id")}
    before_id, after_id = query.get("before_order_id"), query.get("after_order_id")
    if before_id and after_id:
        raise ApiError(422, "before_order_id and after_order_id are mutually exclusive")
    if (before_id or after_id) and ("after" in query or "until" in query):
        raise ApiError(422, "before_order_id / after_order_id cannot be combined with after/until")
    return broker.list_orders(
        before_order_id=before_id,
        after_order_id=after_id,
        status=_choice(query, "status", ("open", "closed", "all"), "open"),
        limit=limit,
        after=_timestamp(query, "after"),
        until=_timestamp(query, "until"),
        direction=_choice(query, "direction", ("asc", "desc"), "desc"),
        nested=_bool(query, "nested"),
        symbols=symbols or None,
        side=_optional_choice(query, "side", ("buy", "sell")),
    )


def order_by_client_id(broker: Broker, query: Query, _body: object) -> JsonObject:
    if not query.get("client_order_id"):
        raise ApiError(422, "client_order_id is required")
    return broker.order_dict(
        broker.by_client_order_id(query["client_order_id"]), nested=_bool(query, "nested")
    )


def get_order(broker: Broker, query: Query, _body: object, order_id: str) -> JsonObject:
    return broker.order_dict(broker.get_order(order_id), nested=_bool(query, "nested"))


def cancel_order(broker: Broker, _query: Query, _body: object, order_id: str) -> None:
    broker.cancel(order_id)


def replace_order(broker: Broker, _query: Query, body: object, order_id: str) -> JsonObject:
    return broker.replace(order_id, body)


def get_position(broker: Broker, _query: Query, _body: object, symbol: str) -> JsonObject:
    return broker.position_dict(broker.find_position(symbol))


def close_position(broker: Broker, query: Query, _body: object, symbol: str) -> JsonObject:
    return broker.close_position(
        symbol,
        qty=_optional_decimal(query, "qty"),
        percentage=_optional_decimal(query, "percentage"),
    )


def _trade(broker: Broker, symbol: str) -> JsonObject:
    trade_id, stamp = broker.trades[symbol]
    return {
        "t": rfc3339(stamp),
        "x": "V",
        "p": float(broker.prices[symbol]),
        "s": 100,
        "c": ["@"],
        "i": trade_id,
        "z": "C",
    }


def _check_feed(query: Query) -> None:
    if query.get("feed", "iex") not in FEEDS:
        raise ApiError(400, "invalid feed")


def latest_trade(broker: Broker, query: Query, _body: object, symbol: str) -> JsonObject:
    _check_feed(query)
    symbol = symbol.upper()
    if symbol not in broker.prices:
        raise ApiError(404, "symbol not found")
    return {"symbol": symbol, "trade": _trade(broker, symbol)}


def latest_trades(broker: Broker, query: Query, _body: object) -> JsonObject:
    _check_feed(query)
    symbols = [s.strip().upper() for s in query.get("symbols", "").split(",") if s.strip()]
    if not symbols:
        raise ApiError(400, "symbols is required")
    return {"trades": {s: _trade(broker, s) for s in symbols if s in broker.prices}}


# A handler takes (broker, query, body) and the path's named groups as keyword arguments; the
# handlers share that signature, so some leave arguments unused.
Handler: TypeAlias = Callable[..., object]

# (method, path pattern, handler, success status); named groups become arguments.
ROUTES: list[tuple[str, str, Handler, int]] = [
    ("GET", r"/v2/account", lambda b, _q, _body: b.account(), 200),
    ("GET", r"/v2/clock", clock, 200),
    ("GET", r"/v3/clock", clock_v3, 200),
    ("GET", r"/v2/account/portfolio/history", history, 200),
    ("POST", r"/v2/orders", lambda b, _q, body: b.submit(body), 200),
    ("GET", r"/v2/orders", list_orders, 200),
    ("DELETE", r"/v2/orders", lambda b, _q, _body: b.cancel_all(), 207),
    ("GET", r"/v2/orders:by_client_order_id", order_by_client_id, 200),
    ("GET", r"/v2/orders/(?P<order_id>[^/]+)", get_order, 200),
    ("PATCH", r"/v2/orders/(?P<order_id>[^/]+)", replace_order, 200),
    ("DELETE", r"/v2/orders/(?P<order_id>[^/]+)", cancel_order, 204),
    ("GET", r"/v2/positions", lambda b, _q, _body: b.positions_list(), 200),
    ("DELETE", r"/v2/positions", lambda b, q, _body: b.close_all(_bool(q, "cancel_orders")), 207),
    ("GET", r"/v2/positions/(?P<symbol>[^/]+)", get_position, 200),
    ("DELETE", r"/v2/positions/(?P<symbol>[^/]+)", close_position, 200),
    ("GET", r"/v2/stocks/trades/latest", latest_trades, 200),
    ("GET", r"/v2/stocks/(?P<symbol>[^/]+)/trades/latest", latest_trade, 200),
]
_COMPILED = [
    (method, re.compile(pattern + r"/?"), handler, ok) for method, pattern, handler, ok in ROUTES
]


def dispatch(
    broker: Broker, method: str, path: str, query: Query, body: object
) -> tuple[int, object]:
    """Answer one authorised request; ApiError becomes its status and error body."""
    path_known = False
    try:
        for route_method, pattern, handler, ok in _COMPILED:
            match = pattern.fullmatch(path)
            if not match:
                continue
            path_known = True
            if route_method == method:
                return ok, handler(broker, query, body, **match.groupdict())
        if path_known:
            raise ApiError(405, "method not allowed")
        raise ApiError(404, "endpoint not found")
    except ApiError as error:
        return error.status, error.body
