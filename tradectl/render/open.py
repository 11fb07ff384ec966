"""Rendering for `tradectl open`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradectl.render import STATUS_STYLE, literal, money, quantity, stdout, warning
from tradectl.render.json import plain, print_json

if TYPE_CHECKING:
    from tradectl.services.open_position import OpenOutcome, OpenQuote

_DOCUMENT_FIELDS = (
    "id", "cycle_id", "symbol", "side", "qty", "entry_price", "stop_loss", "take_profit",
    "time_in_force", "status", "client_order_id", "alpaca_order_id", "alpaca_status",
    "alpaca_error", "filled_qty", "filled_avg_price",
)


def order_preview(quote: OpenQuote, mode: str) -> str:
    spec = quote.spec
    entry = f"limit {money(spec.entry)}" if spec.entry is not None else "market"
    base = money(quote.base_price) if quote.base_price is not None else "unknown"
    return (
        f"[{mode.upper()}] {spec.side.upper()} {spec.qty} {spec.symbol} {entry} "
        f"(last {base}), stop {money(spec.stop)}, target {money(spec.target)}, "
        f"{spec.time_in_force}; notional ${money(quote.notional)}, risk ${money(quote.risk)}"
    )


def open_document(outcome: OpenOutcome) -> dict[str, Any]:
    position = plain(outcome.position)
    document = {key: position[key] for key in _DOCUMENT_FIELDS}
    document["position_id"] = outcome.position.id
    document["warnings"] = list(outcome.warnings)
    failure = outcome.broker_error
    document["exit_code"] = int(failure.exit_code) if failure is not None else 0
    if failure is not None:
        document.update(error=failure.message, hint=failure.hint, **failure.facts())
    return document


def open_outcome(outcome: OpenOutcome, as_json: bool) -> None:
    if as_json:
        print_json(open_document(outcome))
        return
    for line in outcome.warnings:
        warning(line)
    from rich.table import Table

    p = outcome.position
    entry = money(p.entry_price) if p.entry_price is not None else "market"
    style = STATUS_STYLE.get(p.status, "")
    table = Table.grid(padding=(0, 2))
    table.add_row("position", f"#{p.id} in cycle {p.cycle_id}")
    table.add_row("order", f"{p.side} {quantity(p.qty)} {p.symbol} @ {entry}")
    table.add_row("bracket", f"stop {money(p.stop_loss)}  target {money(p.take_profit)}  "
                             f"({p.time_in_force})")
    table.add_row("status", f"[{style}]{p.status}[/]")
    table.add_row("alpaca", f"{p.alpaca_status or '-'}  {p.alpaca_order_id or ''}".rstrip())
    if p.filled_qty:
        table.add_row("filled", f"{quantity(p.filled_qty)} @ {money(p.filled_avg_price)}")
    if p.alpaca_error:
        table.add_row("error", f"[red]{literal(p.alpaca_error)}[/]")
    stdout().print(table)
