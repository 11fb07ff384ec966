"""All terminal output: rich summaries, one-line errors and warnings, and --json documents."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from tradectl.services.open_position import OpenOutcome, OrderPreview


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, default=_plain, sort_keys=False) + "\n")
    sys.stdout.flush()


def error(message: str, hint: str | None = None) -> None:
    """One line on stderr."""
    line = f"error: {message}" + (f" ({hint})" if hint else "")
    sys.stderr.write(line.replace("\n", " ") + "\n")
    sys.stderr.flush()


def warning(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def money(value: Decimal | None) -> str:
    """Prices as Alpaca ticks them: cents at or above $1, four places below."""
    if value is None:
        return "-"
    places = Decimal("0.01") if abs(value) >= 1 or value == 0 else Decimal("0.0001")
    return f"{value.quantize(places):,}"


def quantity(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return format(value.normalize(), "f") if value != value.to_integral() else str(int(value))


def order_preview(preview: OrderPreview, mode: str) -> str:
    spec = preview.spec
    entry = f"limit {money(spec.entry)}" if spec.entry is not None else "market"
    base = money(preview.base_price) if preview.base_price is not None else "unknown"
    return (
        f"[{mode.upper()}] {spec.side.upper()} {spec.qty} {spec.symbol} {entry} "
        f"(last {base}), stop {money(spec.stop)}, target {money(spec.target)}, "
        f"{spec.time_in_force}; notional ${money(preview.notional)}, risk ${money(preview.risk)}"
    )


_STATUS_STYLE = {
    "open": "green", "pending": "yellow", "closing": "yellow", "closed": "dim",
    "cancelled": "dim", "rejected": "red", "failed": "red",
}


def open_outcome(outcome: OpenOutcome, as_json: bool) -> None:
    p = outcome.position
    if as_json:
        document = {
            key: p[key]
            for key in (
                "id", "cycle_id", "symbol", "side", "qty", "entry_price", "stop_loss",
                "take_profit", "time_in_force", "status", "client_order_id", "alpaca_order_id",
                "alpaca_status", "alpaca_error", "filled_qty", "filled_avg_price",
            )
        }
        document["position_id"] = p["id"]
        document["warnings"] = outcome.warnings
        print_json(document)
        return
    for line in outcome.warnings:
        warning(line)
    from rich.table import Table

    entry = money(p["entry_price"]) if p["entry_price"] is not None else "market"
    style = _STATUS_STYLE.get(p["status"], "")
    table = Table.grid(padding=(0, 2))
    table.add_row("position", f"#{p['id']} in cycle {p['cycle_id']}")
    table.add_row("order", f"{p['side']} {quantity(p['qty'])} {p['symbol']} @ {entry}")
    table.add_row("bracket", f"stop {money(p['stop_loss'])}  target {money(p['take_profit'])}  "
                             f"({p['time_in_force']})")
    table.add_row("status", f"[{style}]{p['status']}[/]")
    table.add_row("alpaca", f"{p['alpaca_status'] or '-'}  {p['alpaca_order_id'] or ''}".rstrip())
    if p["filled_qty"]:
        table.add_row("filled", f"{quantity(p['filled_qty'])} @ {money(p['filled_avg_price'])}")
    if p["alpaca_error"]:
        table.add_row("error", f"[red]{p['alpaca_error']}[/]")
    stdout().print(table)
