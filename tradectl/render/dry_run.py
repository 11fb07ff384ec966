"""Rendering of every `--dry-run`: the shared envelope (the rules, the requests, the notes, the
verdict) around each command's own plan summary, drawn by the section its type matches (`_section`).
With --json, the DryRun as one object."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tradectl.render import dollars, literal, money, price_text, quantity, stdout
from tradectl.render.json import plain, print_json

if TYPE_CHECKING:
    from rich.console import Console

    from tradectl.services import dry_run
    from tradectl.services.dry_run import DryRun, OrderToCancel


def dry_run_report(report: DryRun[Any], as_json: bool) -> None:
    if as_json:
        print_json(report)
        return

    console = stdout()
    console.print(f"[bold cyan]DRY RUN[/] of `{report.command}` ({report.trading_mode}): "
                  "nothing was written or sent")
    _section(console, report.plan)
    if report.checks:
        console.print("rules")
        width = max(len(c.rule) for c in report.checks)
        for check in report.checks:
            mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
            console.print(f"  {mark} {check.rule:<{width}}  {literal(check.message)}")
    for request in report.requests:
        console.print(f"request  {request.method} {literal(request.url)}")
        if request.body is not None:
            body = json.dumps(plain(request.body), indent=2)
            console.print("\n".join(f"         {line}" for line in body.splitlines()),
                          markup=False)
    for note in report.notes:
        console.print(f"note: {literal(note)}")
    code = int(report.exit_code)
    if report.refusal:
        console.print(f"verdict  [red bold]{literal(report.refusal)}[/] (exit {code})")
    elif code:
        console.print(f"verdict  [red bold]the real command would fail[/] (exit {code})")
    else:
        console.print(f"verdict  [green bold]would go ahead[/] (exit {code})")


def _section(console: Console, plan: object) -> None:
    """The command's own section, by the summary's type."""
    from tradectl.services.dry_run import AdjustSummary, CloseSummary, HaltSummary, OpenSummary

    match plan:
        case OpenSummary():
            _open_section(console, plan)
        case HaltSummary():
            _halt_section(console, plan)
        case CloseSummary():
            _close_section(console, plan)
        case AdjustSummary():
            _adjust_section(console, plan)
        case _:
            raise TypeError(f"no dry-run section for {type(plan).__name__}")


def _open_section(console: Console, plan: dry_run.OpenSummary) -> None:
    entry = f"limit {money(plan.entry)}" if plan.entry is not None else "at market"
    console.print(f"order    {plan.side} {plan.qty} {plan.symbol} {entry}, stop "
                  f"{money(plan.stop)}, target {money(plan.target)} ({plan.time_in_force})")
    base = price_text(plan.base_price) if plan.base_price is not None else "unknown"
    console.print(f"price    {base} ({plan.base_source})")
    if plan.sizing is not None:
        from tradectl.render.open import sizing_text

        console.print(f"sized    by --risk: {sizing_text(plan.sizing)}")
    console.print(f"exposure notional {dollars(plan.notional)}, risk {dollars(plan.risk)}")
    if plan.equity is not None:
        console.print(f"account  equity {dollars(plan.equity)}, buying power "
                      f"{dollars(plan.buying_power)}, day P&L {dollars(plan.day_pnl)}; "
                      f"{plan.broker_positions} position(s) at Alpaca")
    cycle = (f"{plan.cycle_id} {plan.cycle_status}" if plan.cycle_id is not None
             else "none yet (the first open starts one)")
    console.print(f"cycle    {cycle}")


def _halt_section(console: Console, plan: dry_run.HaltSummary) -> None:
    from rich.table import Table

    cycle = f"cycle {plan.cycle_id}" if plan.cycle_id is not None else "a first cycle"
    again = " (already stopped: the stop would retry what is left)" if plan.already_stopped \
        else ""
    console.print(f"latch    {cycle} would be stopped{again}: {literal(plan.reason)}")
    if plan.spooled_stops:
        console.print(f"spool    {plan.spooled_stops} stop(s) made without the database would "
                      "be recorded first")
    console.print(f"cancel   {len(plan.orders)} order(s) working at Alpaca")
    _orders_table(console, plan.orders)
    console.print(f"close    {len(plan.positions)} position(s) held at Alpaca")
    if plan.positions:
        table = Table(show_edge=False, pad_edge=False, box=None)
        for column in ("symbol", "side", "qty", "last", "market value", "unrealized P&L",
                       "whose"):
            table.add_column(column)
        for p in plan.positions:
            whose = ("position " + ", ".join(f"#{i}" for i in p.position_ids)
                     if p.position_ids else "external")
            table.add_row(p.symbol, p.side, quantity(p.qty), money(p.last_price),
                          dollars(p.market_value), dollars(p.unrealized_pl), whose)
        console.print(table)
    if plan.entries_to_cancel:
        console.print(f"entries  {', '.join(plan.entries_to_cancel)}: entry still working, "
                      "cancelled on its own if the close-all leaves it")
    if plan.closed_locally:
        console.print(f"local    {', '.join(plan.closed_locally)}: recorded without a broker, "
                      "closed in the database only")
    if plan.equity is not None:
        market = {True: "open", False: "closed", None: "unknown"}[plan.market_open]
        console.print(f"account  equity {dollars(plan.equity)}, day P&L "
                      f"{dollars(plan.day_pnl)}; market {market}")
    console.print("alerts   " + (literal("; ".join(plan.alerts)) if plan.alerts else "none"))


def _orders_table(console: Console, orders: tuple[OrderToCancel, ...], *,
                  whose: bool = True) -> None:
    if not orders:
        return
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, box=None)
    columns = ("symbol", "order", "type", "side", "qty", "price", "status", "whose")
    for column in columns[:None if whose else -1]:
        table.add_column(column)
    for o in orders:
        cells = [o.symbol, o.id[:8], ("leg " if o.leg else "") + o.type, o.side,
                 quantity(o.qty), money(o.price), o.status]
        table.add_row(*cells, *(["tradectl" if o.tracked else "external"] if whose else []))
    console.print(table)


def _position_line(console: Console, position_id: int, symbol: str, side: str,
                   status: str) -> None:
    console.print(f"position #{position_id} {symbol} ({side}, {status})")


def _close_section(console: Console, plan: dry_run.CloseSummary) -> None:
    _position_line(console, plan.position_id, plan.symbol, plan.side, plan.status)
    console.print(f"exits    stop {money(plan.stop)}, target {money(plan.target)}")
    if plan.last_price is not None:
        console.print(f"market   last {money(plan.last_price)}, unrealized P&L "
                      f"{dollars(plan.unrealized_pl)}")
    if plan.cancel:
        console.print(f"cancel   {len(plan.cancel)} order(s) working at Alpaca")
        _orders_table(console, plan.cancel, whose=False)
    action = {
        "close": f"close {quantity(plan.qty)} at market (the account holds "
                 f"{quantity(plan.account_qty)}), close_reason manual",
        "cancel_entry": "cancel the unfilled entry",
        "close_locally": "close in the database only",
        "none": "nothing",
    }[plan.action]
    console.print(f"then     {action}")
    console.print(f"cycle    {plan.cycle_status}")


def _adjust_section(console: Console, plan: dry_run.AdjustSummary) -> None:
    from rich.table import Table

    _position_line(console, plan.position_id, plan.symbol, plan.side, plan.status)
    if plan.last_trade is not None:
        console.print(f"price    {money(plan.last_trade)} (the last trade)")
    if plan.legs:
        table = Table(show_edge=False, pad_edge=False, box=None)
        for column in ("leg", "was", "now", "action", "order", "status"):
            table.add_column(column)
        for leg in plan.legs:
            table.add_row(leg.leg, money(leg.old_price), money(leg.new_price), leg.action,
                          (leg.order_id or "-")[:8], leg.order_status or "-")
        console.print(table)
    if plan.stop is not None:
        console.print(f"after    stop {money(plan.stop)}, target {money(plan.target)}")
