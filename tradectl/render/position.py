"""Rendering for `tradectl close` and `tradectl adjust`: what was done to one position, drawn
from the row as recorded (like `halt`'s report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradectl.render import dollars, literal, money, stdout
from tradectl.render.json import plain, print_json

if TYPE_CHECKING:
    from tradectl.services.position.adjust import AdjustReport
    from tradectl.services.position.close_position import ExitOutcome

_STATE_STYLE = {
    "closed": "green", "closing": "yellow", "cancelled": "dim", "cancelling": "yellow",
    "closed_locally": "dim", "already_closing": "yellow", "failed": "bold red",
    "unknown": "bold red", "replaced": "green", "recorded": "yellow", "unchanged": "dim",
}


def close_document(outcome: ExitOutcome) -> dict[str, Any]:
    p = outcome.position
    return {
        "position_id": p.id, "symbol": p.symbol, "state": outcome.state,
        "cancelled_orders": outcome.cancelled_orders, "close_order_id": outcome.close_order_id,
        "exit_price": plain(p.exit_price, "price"), "realized_pl": plain(p.realized_pl, "money"),
        "close_reason": p.close_reason, "error": outcome.error, "notes": list(outcome.notes),
        # a working close is not a gap: only an open position's shares can be left unprotected
        "unprotected": p.unprotected_since is not None and p.status == "open",
        "exit_code": int(outcome.exit_code), "position": plain(p),
    }


def close_report(outcome: ExitOutcome, as_json: bool) -> None:
    if as_json:
        print_json(close_document(outcome))
        return
    from rich.table import Table

    p, console = outcome.position, stdout()
    console.print(f"[bold]CLOSE[/] #{p.id} {literal(p.symbol)} ({p.side}, "
                  f"{literal(p.close_reason or 'manual')})")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("symbol", "state", "cancelled", "close order", "exit price", "P&L",
                   "error"):
        table.add_column(column)
    table.add_row(literal(p.symbol), f"[{_STATE_STYLE.get(outcome.state, '')}]{outcome.state}[/]",
                  str(outcome.cancelled_orders), literal(outcome.close_order_id or "-"),
                  money(p.exit_price), dollars(p.realized_pl) if p.realized_pl is not None
                  else "-", literal(outcome.error or ""))
    console.print(table)
    if p.status == "open" and p.unprotected_since is not None:
        console.print(f"[bold red]UNPROTECTED: {literal(p.protection_error or '')}: the shares "
                      "are still held with no stop; `tradectl close` again or `tradectl watch` "
                      "restores one[/]")
    for note in outcome.notes:
        console.print(f"note: {literal(note)}")


def adjust_document(report: AdjustReport) -> dict[str, Any]:
    p = report.position
    return {
        "position_id": p.id, "symbol": p.symbol, "last_trade": plain(report.last_trade, "price"),
        "legs": plain(report.legs), "stop_loss": plain(p.stop_loss, "price"),
        "take_profit": plain(p.take_profit, "price"), "stop_order_id": p.stop_order_id,
        "target_order_id": p.target_order_id, "exit_code": int(report.exit_code),
        "position": plain(p),
    }


def adjust_report(report: AdjustReport, as_json: bool) -> None:
    if as_json:
        print_json(adjust_document(report))
        return
    from rich.table import Table

    p, console = report.position, stdout()
    last = f", last trade {money(report.last_trade)}" if report.last_trade is not None else ""
    console.print(f"[bold]ADJUST[/] #{p.id} {literal(p.symbol)} ({p.side}{last})")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("leg", "was", "now", "state", "order", "error"):
        table.add_column(column)
    for leg in report.legs:
        order = literal(leg.old_order_id or "-")
        if leg.new_order_id and leg.new_order_id != leg.old_order_id:
            order = literal(f"{_short(leg.old_order_id)} -> {_short(leg.new_order_id)}")
        table.add_row(leg.leg, money(leg.old_price), money(leg.new_price),
                      f"[{_STATE_STYLE.get(leg.state, '')}]{leg.state}[/]", order,
                      literal(leg.error or ""))
    console.print(table)
    console.print(f"stop {money(p.stop_loss)}  target {money(p.take_profit)}")
    if any(leg.state == "recorded" for leg in report.legs) and not p.local_only:
        console.print("note: no working order to move: recorded on the position; `tradectl "
                      "watch` restores protection at these prices")


def _short(order_id: str | None) -> str:
    return (order_id or "-")[:8]
