"""The --json objects as JSON Schemas: what docs/json.md documents and scripts rely on. Every
object is closed (no field outside the contract) and every field named here is required."""

from __future__ import annotations

from typing import Any

MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2,}$"}  # dollars with cents
PRICE = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2,}$"}  # on the tick (or finer)
QTY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
TIME = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"}  # UTC
DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}  # a plain exact number
DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
TEXT, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
ANY_OBJECT = {"type": "object"}


def maybe(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def closed(optional: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """An object with exactly these fields (and maybe the optional ones)."""
    return {"type": "object", "required": sorted(fields),
            "properties": {**fields, **(optional or {})}, "additionalProperties": False}


def listing(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


# What every failure adds (with --json a failure is one object with these, and what is known).
FAILURE_FIELDS = {"error": TEXT, "exit_code": INT, "hint": maybe(TEXT)}
FAILURE_FACTS = {"rule": TEXT, "figures": {"type": "object"}, "http_status": maybe(INT),
                 "alpaca_code": maybe(INT), "field": maybe(TEXT)}
ERROR = closed(FAILURE_FACTS, **FAILURE_FIELDS)

POSITION = closed(
    id=INT, cycle_id=INT, symbol=TEXT, side={"enum": ["buy", "sell"]}, qty=QTY,
    entry_price=maybe(PRICE), stop_loss=PRICE, take_profit=PRICE, time_in_force=TEXT,
    status={"enum": ["pending", "open", "closing", "closed", "cancelled", "rejected", "failed"]},
    client_order_id=TEXT, alpaca_order_id=maybe(TEXT), alpaca_status=maybe(TEXT),
    alpaca_error=maybe(TEXT), filled_qty=maybe(QTY), filled_avg_price=maybe(PRICE),
    exit_price=maybe(PRICE), realized_pl=maybe(MONEY), created_at=TIME, closed_at=maybe(TIME),
    close_reason=maybe(TEXT), last_price=maybe(PRICE), unrealized_pl=maybe(MONEY),
    protection=maybe({"enum": ["protected", "unprotected", "closing"]}), protected=maybe(BOOL),
    working_stop=maybe(PRICE), working_target=maybe(PRICE), stop_order_id=maybe(TEXT),
    target_order_id=maybe(TEXT), unprotected_since=maybe(TIME), protection_error=maybe(TEXT),
    restore_client_order_id=maybe(TEXT), restore_order_id=maybe(TEXT),
    restore_sent_at=maybe(TIME), exit_order_id=maybe(TEXT), exit_sent_at=maybe(TIME),
    outside_qty=maybe(QTY), outside_pl=maybe(MONEY),
)
EXTERNAL = closed(symbol=TEXT, side=TEXT, qty=QTY, avg_entry_price=maybe(PRICE),
                  last_price=maybe(PRICE), unrealized_pl=maybe(MONEY), tracked_qty=QTY)
CYCLE = closed(id=INT, status={"enum": ["active", "stopped"]}, started_at=TIME,
               stopped_at=maybe(TIME), stop_reason=maybe(TEXT), loss_baseline=maybe(MONEY),
               baseline_at=maybe(TIME))
ACCOUNT = closed(
    account_number=TEXT, status=TEXT, currency=maybe(TEXT), cash=maybe(MONEY), equity=MONEY,
    last_equity=MONEY, portfolio_value=maybe(MONEY), buying_power=maybe(MONEY),
    trading_blocked=maybe(BOOL), account_blocked=maybe(BOOL),
    trade_suspended_by_user=maybe(BOOL), day_pnl=MONEY)

SIZING = closed(budget=MONEY, price=PRICE, stop=PRICE, per_share=PRICE, qty=INT, risk=MONEY)
OPEN = closed(
    {**FAILURE_FIELDS, **FAILURE_FACTS},
    **{name: POSITION["properties"][name] for name in (
        "id", "cycle_id", "symbol", "side", "qty", "entry_price", "stop_loss", "take_profit",
        "time_in_force", "status", "client_order_id", "alpaca_order_id", "alpaca_status",
        "alpaca_error", "filled_qty", "filled_avg_price")},
    position_id=INT, sizing=maybe(SIZING), warnings=listing(TEXT), exit_code=INT)

HALT_SYMBOL = closed(symbol=TEXT, state=TEXT, external=BOOL, position_ids=listing(INT),
                     cancelled_orders=INT, close_order_id=maybe(TEXT), error=maybe(TEXT))
HALT = closed(
    cycle_id=maybe(INT), reason=TEXT, given_reason=maybe(TEXT), stopped_at=TIME,
    already_stopped=BOOL, broker_enabled=BOOL, path={"enum": ["none", "close_all", "fallback"]},
    market_open=maybe(BOOL), symbols=listing(HALT_SYMBOL),
    totals={"type": "object", "additionalProperties": INT}, equity=maybe(MONEY),
    day_pnl=maybe(MONEY), broker_error=maybe(TEXT), broker_requests=maybe(INT), alert=TEXT,
    notes=listing(TEXT), database_error=maybe(TEXT), unread=listing(TEXT), swept=listing(TEXT),
    completed=listing(TEXT), exit_code=INT)

RESUME = closed(cycle_id=INT, resumed=BOOL, previous_cycle_id=maybe(INT),
                day_pnl=maybe(MONEY), forced=BOOL, loss_baseline=maybe(MONEY), alerts_sent=INT)

# a rule's state: status lists the day's rules that are set, watch the ones it enforces
RULE = closed(
    name={"enum": ["entry_cutoff", "max_trades_per_day", "cooldown", "profit_target",
                   "drawdown_from_peak", "flatten_before_close"]},
    limit=maybe(TEXT), current=maybe(TEXT), state={"enum": ["ok", "warning", "tripped"]},
    message=TEXT, until=maybe(TIME))
TICK = closed(
    at=TIME, cycle_id=maybe(INT), cycle_status={"enum": ["active", "stopped", "none",
                                                         "unknown"]},
    stop_reason=maybe(TEXT), equity=maybe(MONEY), day_pnl=maybe(MONEY),
    loss_baseline=maybe(MONEY), drives_stops=BOOL,
    role={"enum": ["driver", "standby", "read_only"]}, driver=maybe(TEXT),
    positions=listing(POSITION), external=listing(EXTERNAL), changes=listing(TEXT),
    warning=maybe(TEXT), error=maybe(TEXT),
    emergency_stop=maybe(closed(exit_code=INT, alert=TEXT, symbols=listing(closed(
        symbol=TEXT, state=TEXT, error=maybe(TEXT))))),
    alerts_sent=INT, unprotected=listing(TEXT), protection_error=maybe(TEXT),
    rules=listing(RULE),
    kind={"enum": ["tick", "trade_updates"]},
    stream=maybe(closed(state={"enum": ["connecting", "connected", "reconnecting",
                                        "unauthorized", "off"]},
                        detail=maybe(TEXT), dropped=INT)))

STATUS = closed(
    mode={"enum": ["paper", "live"]}, trading={"enum": ["active", "stopped"]},
    cycle=maybe(CYCLE), realized_pl_today=MONEY, positions=listing(POSITION),
    alerts=listing(closed(id=INT, created_at=TIME, subject=TEXT, status=TEXT, attempts=INT,
                          last_error=maybe(TEXT))),
    broker=closed(configured=BOOL, account=maybe(ACCOUNT), error=maybe(TEXT)),
    warnings=listing(TEXT), external=listing(EXTERNAL), loss_baseline=maybe(MONEY),
    rules=listing(RULE))

LOG = closed(events=listing(closed(
    id=INT, created_at=TIME, kind=TEXT, symbol=maybe(TEXT), message=TEXT, cycle_id=maybe(INT),
    position_id=maybe(INT), details=maybe({"type": "object"}))))

CHECK = closed(
    ok=BOOL, exit_code=INT,
    checks=listing(closed(name=TEXT, state={"enum": ["pass", "warn", "fail"]}, detail=TEXT,
                          fix=maybe(TEXT))),
    configuration=maybe(closed(trading_mode=TEXT, base_url=TEXT, data_url=TEXT, api_key=TEXT,
                               secret_key={"enum": ["set", "not set"]}, env_file=maybe(TEXT),
                               alert_webhook_url=maybe(TEXT), orders_host=TEXT,
                               orders_trusted=TEXT)),
    account=maybe(ACCOUNT),
    clock=maybe(closed(is_open=BOOL, timestamp=TIME, next_open=TIME, next_close=TIME)),
    latest_trade=maybe(closed(symbol=TEXT, price=PRICE)),
    database=maybe(closed(url=TEXT, reachable=maybe(BOOL), revision=maybe(TEXT), head=TEXT,
                          error=maybe(TEXT))))

DB = closed({"before": maybe(TEXT)}, database=TEXT, revision=maybe(TEXT), head=TEXT,
            up_to_date=BOOL)

CLOSE = closed(
    position_id=INT, symbol=TEXT, state=TEXT, cancelled_orders=INT, close_order_id=maybe(TEXT),
    exit_price=maybe(PRICE), realized_pl=maybe(MONEY), close_reason=maybe(TEXT),
    error=maybe(TEXT), notes=listing(TEXT), unprotected=BOOL, exit_code=INT, position=POSITION)

ADJUST = closed(
    position_id=INT, symbol=TEXT, last_trade=maybe(PRICE),
    legs=listing(closed(leg=TEXT, old_price=maybe(PRICE), new_price=maybe(PRICE), state=TEXT,
                        old_order_id=maybe(TEXT), new_order_id=maybe(TEXT), error=maybe(TEXT))),
    stop_loss=PRICE, take_profit=PRICE, stop_order_id=maybe(TEXT), target_order_id=maybe(TEXT),
    exit_code=INT, position=POSITION)

ALERT_TEST = closed(channels=listing(closed(channel=TEXT, recipients=TEXT, sent=BOOL,
                                            error=maybe(TEXT))), exit_code=INT)

TOTALS = closed(
    trades=INT, wins=INT, losses=INT, win_rate=maybe(DECIMAL), average_win=maybe(MONEY),
    average_loss=maybe(MONEY), expectancy=maybe(MONEY), average_r=maybe(DECIMAL),
    best=maybe(MONEY), worst=maybe(MONEY), realized_pl=MONEY, max_drawdown=MONEY,
    stops_pulled=INT)
REPORT = closed(
    since=DATE, until=DATE,
    trades=listing(closed(
        trade=closed(position_id=INT, symbol=TEXT, side=TEXT, qty=QTY, entry=PRICE, exit=PRICE,
                     initial_stop=PRICE, realized_pl=MONEY, close_reason=TEXT, opened_at=TIME,
                     closed_at=TIME),
        day=DATE, initial_risk=MONEY, r_multiple=maybe(DECIMAL), held_seconds=INT)),
    days=listing(closed(day=DATE, totals=TOTALS)), period=TOTALS)

OPEN_PLAN = closed(
    symbol=TEXT, side=TEXT, qty=INT, entry=maybe(PRICE), stop=PRICE, target=PRICE,
    time_in_force=TEXT, base_price=maybe(PRICE), base_source=TEXT, notional=MONEY, risk=MONEY,
    sizing=maybe(SIZING), equity=maybe(MONEY), buying_power=maybe(MONEY), day_pnl=maybe(MONEY),
    broker_positions=INT, cycle_id=maybe(INT), cycle_status=TEXT)
ORDER_TO_CANCEL = closed(id=TEXT, symbol=TEXT, side=TEXT, type=TEXT, qty=maybe(QTY),
                         status=TEXT, price=maybe(PRICE), leg=BOOL, tracked=BOOL)
HALT_PLAN = closed(
    reason=TEXT, cycle_id=maybe(INT), already_stopped=BOOL, orders=listing(ORDER_TO_CANCEL),
    positions=listing(closed(symbol=TEXT, side=TEXT, qty=QTY, last_price=maybe(PRICE),
                             market_value=maybe(MONEY), unrealized_pl=maybe(MONEY),
                             position_ids=listing(INT))),
    entries_to_cancel=listing(ANY_OBJECT), closed_locally=listing(ANY_OBJECT),
    market_open=maybe(BOOL), equity=maybe(MONEY), day_pnl=maybe(MONEY), alerts=listing(TEXT),
    spooled_stops=INT)
CLOSE_PLAN = closed(
    position_id=INT, symbol=TEXT, side=TEXT, status=TEXT,
    action={"enum": ["close", "cancel_entry", "close_locally", "none"]}, qty=maybe(QTY),
    account_qty=maybe(QTY), cancel=listing(ORDER_TO_CANCEL), stop=PRICE, target=PRICE,
    last_price=maybe(PRICE), unrealized_pl=maybe(MONEY), cycle_status=TEXT)
ADJUST_PLAN = closed(
    position_id=INT, symbol=TEXT, side=TEXT, status=TEXT, last_trade=maybe(PRICE),
    entry=maybe(PRICE),
    legs=listing(closed(leg={"enum": ["stop", "target"]}, old_price=maybe(PRICE),
                        new_price=PRICE, action={"enum": ["replace", "unchanged", "recorded"]},
                        order_id=maybe(TEXT), order_status=maybe(TEXT))),
    stop=maybe(PRICE), target=maybe(PRICE))
DRY_RUN = closed(
    command=TEXT, trading_mode=TEXT,
    plan={"anyOf": [OPEN_PLAN, HALT_PLAN, CLOSE_PLAN, ADJUST_PLAN]},
    checks=listing(closed(rule=TEXT, passed=BOOL, message=TEXT, figures=ANY_OBJECT)),
    requests=listing(closed(method=TEXT, url=TEXT, path=TEXT, params=ANY_OBJECT,
                            body=maybe(ANY_OBJECT))),
    refusal=maybe({}), notes=listing(TEXT), exit_code=INT, dry_run={"const": True})

# command (as in docs/json.md) -> its object
CONTRACT: dict[str, dict[str, Any]] = {
    "error": ERROR, "open": OPEN, "halt": HALT, "resume": RESUME, "watch": TICK,
    "status": STATUS, "log": LOG, "check-alpaca": CHECK, "db": DB, "close": CLOSE,
    "adjust": ADJUST, "alert test": ALERT_TEST, "report": REPORT, "dry-run": DRY_RUN,
}
