"""Rendering for `tradectl halt` and `tradectl resume`."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from tradectl.render import dollars, literal, stdout
from tradectl.render.json import plain, print_json

if TYPE_CHECKING:
    from tradectl.services.halt.emergency_stop import HaltReport
    from tradectl.services.halt.resume import ResumeReport

_STATE_STYLE = {
    "closed": "green", "closing": "yellow", "cancelled": "dim", "flat": "dim",
    "closed_locally": "dim", "cancelling": "yellow", "failed": "bold red", "missing": "bold red",
    "unknown": "bold red", "no_order": "yellow",
}


def halt_document(report: HaltReport) -> dict[str, Any]:
    totals = Counter(s.state for s in report.symbols)
    return {
        "cycle_id": report.cycle_id,
        "reason": report.reason,
        "given_reason": report.given_reason,
        "stopped_at": report.stopped_at,
        "already_stopped": report.already_stopped,
        "broker_enabled": report.broker_enabled,
        "path": report.path,
        "market_open": report.market_open,
        "symbols": [
            {"symbol": s.symbol, "state": s.state, "external": s.external,
             "position_ids": s.position_ids, "cancelled_orders": s.cancelled_orders,
             "close_order_id": s.close_order_id, "error": s.error}
            for s in report.symbols
        ],
        "totals": dict(sorted(totals.items())),
        "equity": plain(report.equity, "money"),
        "day_pnl": plain(report.day_pnl, "money"),
        "broker_error": report.broker_error,
        "broker_requests": report.broker_requests,
        "alert": report.alert,
        "notes": report.notes,
        "database_error": report.database_error,
        "unread": list(report.unread),
        "swept": list(report.swept),
        "completed": list(report.completed),
        "exit_code": int(report.exit_code),
    }


def halt_report(report: HaltReport, as_json: bool) -> None:
    if as_json:
        print_json(halt_document(report))
        return
    from rich.table import Table

    console = stdout()
    again = " (already stopped: re-tried what was left)" if report.already_stopped else ""
    given = (f" (this halt's reason: {literal(report.given_reason)})"
             if report.given_reason else "")
    cycle = f"cycle {report.cycle_id}" if report.cycle_id is not None else "(not recorded)"
    console.print(f"[bold red]EMERGENCY STOP[/] {cycle} stopped at "
                  f"{report.stopped_at:%H:%M:%S} UTC{again}: {literal(report.reason)}{given}")
    if report.database_error:
        console.print(f"[bold red]database: the stop could not be recorded: "
                      f"{literal(report.database_error)}[/]")
    if report.broker_error:
        console.print(f"[bold red]broker: {literal(report.broker_error)}[/]")
    if report.symbols:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("symbol", "state", "cancelled orders", "close order", "error"):
            table.add_column(column)
        for s in report.symbols:
            name = literal(s.symbol) + (" (external)" if s.external else "")
            table.add_row(name, f"[{_STATE_STYLE.get(s.state, '')}]{s.state}[/]",
                          str(s.cancelled_orders), s.close_order_id or "-",
                          literal(s.error or ""))
        console.print(table)
    else:
        console.print("no open positions")
    totals = Counter(s.state for s in report.symbols)
    console.print("totals: " + (", ".join(f"{n} {state}" for state, n in sorted(totals.items()))
                                or "nothing to close"))
    if report.equity is not None:
        console.print(f"equity {dollars(report.equity)}, day P&L {dollars(report.day_pnl)}")
    for note in report.notes:
        console.print(f"note: {literal(note)}")
    console.print(f"alert: {literal(report.alert)}")
    if report.cycle_id is not None:
        console.print("new entries are refused until `tradectl resume --reason ...`")


def resume_report(report: ResumeReport, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    if not report.resumed:
        stdout().print(f"trading is already active (cycle {report.cycle_id}); nothing changed")
        return
    forced = " [yellow](forced past the daily loss limit)[/]" if report.forced else ""
    stdout().print(f"trading resumed: cycle {report.cycle_id} is active{forced}")
    if report.loss_baseline is not None:
        stdout().print(f"the loss limit counts from today's P&L now, "
                       f"{dollars(report.loss_baseline)}, for the rest of the trading day")
