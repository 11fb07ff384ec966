"""Checks on POST /v2/orders and PATCH /v2/orders/{id} bodies, answering like Alpaca
does (422 + code/message).

Only the order kinds tradectl uses are modelled: market/limit/stop/stop_limit,
time_in_force day/gtc, order_class ""/simple/bracket/oco, quantities (not notional).
Anything else is refused with a 422 that says the fake does not support it, so a
test never silently relies on behaviour the fake does not have.

Sources of the rules and messages (alpacahq/alpaca-docs content/trading/orders.md,
"Understand Orders", is cited as [orders.md]):
- OCO: exit-only, same side for both orders, `type` must be "limit", the take-profit
  is `take_profit.limit_price`, the stop-loss `stop_loss.stop_price` (+ optional
  `stop_loss.limit_price` for a stop-limit) [orders.md "OCO Orders"]. A top-level
  `limit_price` is not needed and not used (alpacahq/alpaca-py#401: it does not show
  in the order Alpaca answers).
- Stop price threshold: at least 0.01 below (sell) / above (buy) the base price, which
  is the take-profit limit for OCO, the entry limit for brackets, and the market
  price for both [orders.md "Threshold on stop price of stop-loss orders"].
- "market orders require no stop or limit price": a message Alpaca answers, quoted
  in several public client repositories (found with the code search).
- Replace (PATCH): the fields of the spec's PatchOrderRequest; "You can only patch
  full shares" and fractional quantities "are not allowed to change" (spec);
  "order parameters are not changed" (422, alpacahq/alpaca-py#412); "limit orders
  must not have stop_price" (forum.alpaca.markets/t/bracket-order-closing-positions/11938).
  The fake's own wording (no report found) is used for: a trail on a non-trailing
  order, stop_price/limit_price on the other order types, fractional qty on replace,
  OCO type/fractional refusals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .model import ApiError, JsonObject

ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
SUPPORTED_TIF = ("day", "gtc")
KNOWN_TIF = ("day", "gtc", "opg", "cls", "ioc", "fok")
SUB_PENNY = "sub-penny increment does not fulfill minimum pricing criteria"
CENT = Decimal("0.01")


@dataclass
class OrderRequest:
    symbol: str
    qty: Decimal
    side: str
    type: str
    time_in_force: str
    order_class: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    client_order_id: str | None
    extended_hours: bool
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    stop_loss_limit: Decimal | None = None


@dataclass
class ReplaceRequest:
    """The fields a PATCH sets; None = keep the old order's value."""

    qty: Decimal | None = None
    time_in_force: str | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None


def unprocessable(message: str) -> ApiError:
    return ApiError(422, message)


def decimal_field(value: object, name: str) -> Decimal:
    """Alpaca takes numbers or numeric strings; the server parses JSON floats as Decimal."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise unprocessable(f"invalid {name}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise unprocessable(f"invalid {name}") from None
    if not number.is_finite():
        raise unprocessable(f"invalid {name}")
    return number


def price_field(container: JsonObject, key: str, name: str) -> Decimal | None:
    if container.get(key) is None:
        return None
    price = decimal_field(container[key], name)
    if price <= 0:
        raise unprocessable(f"{name} must be > 0")
    # Alpaca: prices >= $1 allow 2 decimals, prices < $1 allow 4.
    step = CENT if price >= 1 else Decimal("0.0001")
    if price != price.quantize(step):
        raise unprocessable(SUB_PENNY)
    return price


def _tif(value: object) -> str:
    if value not in KNOWN_TIF:
        raise unprocessable("invalid time_in_force" if value else "time_in_force is required")
    if value not in SUPPORTED_TIF:
        raise unprocessable(f"time_in_force {value} is not supported by the fake")
    return str(value)


def _client_order_id(body: JsonObject) -> str | None:
    client_order_id = body.get("client_order_id")
    if client_order_id is not None and (
        not isinstance(client_order_id, str) or len(client_order_id) > 128
    ):
        raise unprocessable("client_order_id must be a string of at most 128 characters")
    return client_order_id


def parse_order(body: object, current_price: Callable[[str], Decimal | None]) -> OrderRequest:
    """Validate an order body; current_price(symbol) gives None for unknown assets."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body format is invalid")
    order_type = body.get("type")
    if order_type not in ORDER_TYPES:
        raise unprocessable(
            f"invalid order type: {order_type}" if order_type else "type is required"
        )
    tif = _tif(body.get("time_in_force"))
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise unprocessable("invalid side" if side else "side is required")
    symbol, market_price = _symbol(body, current_price)
    qty = _qty(body)
    order_class = body.get("order_class") or ""
    if order_class not in ("", "simple", "bracket", "oco"):
        raise unprocessable(f"order_class {order_class} is not supported by the fake")
    client_order_id = _client_order_id(body)
    extended_hours = body.get("extended_hours") or False
    if not isinstance(extended_hours, bool):
        raise unprocessable("invalid extended_hours")
    if extended_hours:
        check_extended_hours(order_type, tif, order_class)
    fractional = qty != qty.to_integral_value()
    if order_class == "oco":
        return parse_oco(body, symbol, qty, side, tif, client_order_id, market_price)

    limit_price, stop_price = _entry_prices(body, order_type)
    request = OrderRequest(
        symbol,
        qty,
        side,
        order_type,
        tif,
        order_class,
        limit_price,
        stop_price,
        client_order_id,
        extended_hours,
    )
    if order_class == "bracket":
        if fractional:
            raise unprocessable("fractional orders are not supported for bracket orders")
        check_bracket(request, body, market_price)
    elif fractional and (order_type != "market" or tif != "day"):
        raise unprocessable("fractional orders must be market orders with time_in_force day")
    return request


def _symbol(
    body: JsonObject, current_price: Callable[[str], Decimal | None]
) -> tuple[str, Decimal]:
    """The order's symbol, upper-cased, and its price now; an unknown asset is refused."""
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise unprocessable("symbol is required")
    symbol = symbol.strip().upper()
    price = current_price(symbol)
    if price is None:
        raise ApiError(422, f'asset "{symbol}" not found', code=40010001)
    return symbol, price


def _qty(body: JsonObject) -> Decimal:
    if body.get("notional") is not None:
        raise unprocessable("notional orders are not supported by the fake")
    if body.get("qty") is None:
        raise unprocessable("qty is required")
    qty = decimal_field(body["qty"], "qty")
    if qty <= 0:
        raise unprocessable("qty must be > 0")
    return qty


def _entry_prices(body: JsonObject, order_type: str) -> tuple[Decimal | None, Decimal | None]:
    """limit_price and stop_price of a simple or bracket order, each kept only where the
    order type uses it."""
    limit_price = price_field(body, "limit_price", "limit_price")
    stop_price = price_field(body, "stop_price", "stop_price")
    if order_type in ("limit", "stop_limit") and limit_price is None:
        raise unprocessable("limit_price is required")
    if order_type in ("stop", "stop_limit") and stop_price is None:
        raise unprocessable("stop_price is required")
    if order_type == "market" and (limit_price is not None or stop_price is not None):
        raise unprocessable("market orders require no stop or limit price")
    return (
        limit_price if order_type in ("limit", "stop_limit") else None,
        stop_price if order_type in ("stop", "stop_limit") else None,
    )


def _exit_prices(request: OrderRequest, body: JsonObject, kind: str) -> None:
    """take_profit.limit_price and stop_loss.stop_price (+ limit) of a bracket or OCO."""
    take_profit = body.get("take_profit")
    stop_loss = body.get("stop_loss")
    if not isinstance(take_profit, dict) or take_profit.get("limit_price") is None:
        raise unprocessable(f"{kind} orders require take_profit.limit_price")
    if not isinstance(stop_loss, dict) or stop_loss.get("stop_price") is None:
        raise unprocessable(f"{kind} orders require stop_loss.stop_price")
    request.take_profit = price_field(take_profit, "limit_price", "take_profit.limit_price")
    request.stop_loss = price_field(stop_loss, "stop_price", "stop_loss.stop_price")
    request.stop_loss_limit = price_field(stop_loss, "limit_price", "stop_loss.limit_price")


def _check_stop_threshold(request: OrderRequest, bases: list[Decimal]) -> None:
    """The exit side's stop must be at least a cent beyond every base price [orders.md]."""
    assert request.stop_loss is not None
    exit_sells = request.side == "sell" if request.order_class == "oco" else request.side == "buy"
    for base in bases:
        if exit_sells and request.stop_loss > base - CENT:
            raise unprocessable("stop_loss.stop_price must be <= base_price - 0.01")
        if not exit_sells and request.stop_loss < base + CENT:
            raise unprocessable("stop_loss.stop_price must be >= base_price + 0.01")


def parse_oco(
    body: JsonObject,
    symbol: str,
    qty: Decimal,
    side: str,
    tif: str,
    client_order_id: str | None,
    market_price: Decimal,
) -> OrderRequest:
    """An exit pair: the take-profit limit is the parent order, the stop (limit) its leg."""
    if body.get("type") != "limit":
        raise unprocessable("oco orders must be limit orders")
    if qty != qty.to_integral_value():
        raise unprocessable("fractional orders are not supported for oco orders")
    if body.get("extended_hours"):
        raise unprocessable("extended hours are not supported for oco orders")
    request = OrderRequest(
        symbol, qty, side, "limit", tif, "oco", None, None, client_order_id, False
    )
    _exit_prices(request, body, "oco")
    request.limit_price = request.take_profit
    assert request.take_profit is not None
    _check_stop_threshold(request, [request.take_profit, market_price])
    return request


def check_extended_hours(order_type: str, tif: str, order_class: str) -> None:
    """The spec: extended_hours "only works with type limit and time_in_force set to either
    day or gtc". The fake also refuses it on bracket and OCO orders (their stop legs cannot
    be extended-hours orders). The message is the fake's wording."""
    if order_type != "limit" or tif not in ("day", "gtc") or order_class not in ("", "simple"):
        raise unprocessable(
            "extended hours orders must be simple limit orders with time_in_force day or gtc"
        )


def check_bracket(request: OrderRequest, body: JsonObject, market_price: Decimal) -> None:
    """Fill in the legs and apply Alpaca's base-price rules (base = entry price)."""
    _exit_prices(request, body, "bracket")
    assert request.take_profit is not None
    base = request.limit_price or request.stop_price or market_price
    if request.side == "buy":
        if request.take_profit < base + CENT:
            raise unprocessable("take_profit.limit_price must be >= base_price + 0.01")
    elif request.take_profit > base - CENT:
        raise unprocessable("take_profit.limit_price must be <= base_price - 0.01")
    _check_stop_threshold(request, [base])


def parse_replace(body: object, order_type: str, qty: Decimal) -> ReplaceRequest:
    """A PATCH body, checked against the type and qty of the order it replaces."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body format is invalid")
    if body.get("notional") is not None:
        raise unprocessable("notional orders cannot be replaced")
    request = ReplaceRequest(client_order_id=_client_order_id(body))
    if body.get("qty") is not None:
        request.qty = decimal_field(body["qty"], "qty")
        if request.qty <= 0:
            raise unprocessable("qty must be > 0")
        if request.qty != request.qty.to_integral_value():
            raise unprocessable("qty must be a whole number of shares when replacing")
        if qty != qty.to_integral_value():
            raise unprocessable("qty of a fractional order cannot be changed")
    if body.get("time_in_force") is not None:
        request.time_in_force = _tif(body["time_in_force"])
    request.limit_price = price_field(body, "limit_price", "limit_price")
    request.stop_price = price_field(body, "stop_price", "stop_price")
    if body.get("trail") is not None:
        raise unprocessable("trail can only be replaced on trailing_stop orders")
    if order_type == "market" and (request.limit_price or request.stop_price):
        raise unprocessable("market orders require no stop or limit price")
    if order_type == "limit" and request.stop_price is not None:
        raise unprocessable("limit orders must not have stop_price")
    if order_type == "stop" and request.limit_price is not None:
        raise unprocessable("stop orders must not have limit_price")
    return request
