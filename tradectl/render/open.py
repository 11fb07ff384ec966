"""Rendering for `tradectl open`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradectl.render import (
    STATUS_STYLE,
    dollars,
    literal,
    money,
    price_text,
    quantity,
    stdout,
    warning,
)
from tradectl.render.json import plain, print_json

if TYPE_CHECKING:
    from tradectl.domain.bracket import RiskSizing
    from tradectl.services.open.open_position import OpenOutcome, OpenQuote

_DOCUMENT_FIELDS = (
    "id", "cycle_id", "symbol", "side", "qty", "entry_price", "stop_loss", "take_profit",
    "time_in_force", "status", "client_order_id", "alpaca_order_id", "alpaca_status",
    "alpaca_error", "filled_qty", "filled_avg_price",
)


def order_preview(quote: OpenQuote, mode: str) -> str:
    spec = quote.spec
    entry = f"limit {money(spec.entry)}" if spec.entry is not None else "market"
    base = money(quote.base_price) if quote.base_price is not None else "unknown"
    sized = f" (sized by --risk: {sizing_text(quote.sizing)})" if quote.sizing else ""
    return (
        f"[{mode.upper()}] {spec.side.upper()} {spec.qty} {spec.symbol} {entry} "
        f"(last {base}), stop {money(spec.stop)}, target {money(spec.target)}, "
        f"{spec.time_in_force}; notional ${money(quote.notional)}, risk ${money(quote.risk)}"
        f"{sized}"
    )


def sizing_text(sizing: RiskSizing) -> str:
    """How `--risk` found the quantity, with every figure: 13 shares x $15.00 = $195.00 of
    $200.00."""
    return (f"{sizing.qty} shares x ${price_text(sizing.per_share)} (|{price_text(sizing.price)}"
            f" - {price_text(sizing.stop)}|) = {dollars(sizing.risk)} of {dollars(sizing.budget)}")


def sizing_document(sizing: RiskSizing | None) -> dict[str, Any] | None:
    return None if sizing is None else plain(sizing)


def open_document(outcome: OpenOutcome, sizing: RiskSizing | None = None) -> dict[str, Any]:
    position = plain(outcome.position)
    document = {key: position[key] for key in _DOCUMENT_FIELDS}
    document["position_id"] = outcome.position.id
    document["sizing"] = sizing_document(sizing)
    document["warnings"] = list(outcome.warnings)
    failure = outcome.broker_error
    document["exit_code"] = int(failure.exit_code) if failure is not None else 0
    if failure is not None:
        document.update(error=failure.message, hint=failure.hint, **failure.facts())
    return document


def open_outcome(outcome: OpenOutcome, as_json: bool, sizing: RiskSizing | None = None) -> None:
    if as_json:
        print_json(open_document(outcome, sizing))
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
    if sizing is not None:
        table.add_row("sized", f"by --risk: {sizing_text(sizing)}")
    table.add_row("bracket", f"stop {money(p.stop_loss)}  target {money(p.take_profit)}  "
                             f"({p.time_in_force})")
    table.add_row("status", f"[{style}]{p.status}[/]")
    table.add_row("alpaca", literal(f"{p.alpaca_status or '-'}  {p.alpaca_order_id or ''}"
                                    .rstrip()))
    if p.filled_qty:
        table.add_row("filled", f"{quantity(p.filled_qty)} @ {money(p.filled_avg_price)}")
    if p.alpaca_error:
        table.add_row("error", f"[red]{literal(p.alpaca_error)}[/]")
    stdout().print(table)
