"""Rendering for `tradectl status`: a summary grid, then the positions table."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tradectl.domain.money import CENT
from tradectl.render import STATUS_STYLE, cents, dollars, literal, money, one_line, quantity, stdout
from tradectl.render.check import account_document
from tradectl.render.json import plain, print_json
from tradectl.render.protection import exit_cells, protection_mark

if TYPE_CHECKING:
    from tradectl.domain.day_rules import RuleVerdict
    from tradectl.services.report.status import StatusReport
    from tradectl.views import PositionView


def status_report(report: StatusReport, as_json: bool) -> None:
    if as_json:
        print_json(status_document(report))
        return
    from rich.text import Text

    console = stdout()
    for label, text in (
        ("mode", f"[bold]{report.mode}[/]"),
        ("trading", _trading_line(report)),
        ("today", f"realized P&L {_signed(report.realized_pl_today)}"),
        ("account", _account_line(report)),
        ("alerts", _alerts_line(report)),
    ):
        console.print(f"{label:<9}{text}")
    for rule in report.rules:
        console.print(f"{'rule':<9}{_rule_line(rule)}")
    for warning in report.warnings:
        console.print(f"[yellow]{'!':<9}{literal(warning)}[/]")
    if report.positions or report.external:
        console.print(_positions_table(report))
        for p in report.positions:  # what the broker reported wrong, under the table
            if p.note:
                style = "dim" if p.local_only else "red"
                console.print(Text(one_line(f"#{p.id} {p.symbol}: {p.note}"), style=style))
    else:
        console.print("no positions yet")


def _positions_table(report: StatusReport) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="positions (times UTC)", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
    for name in ("#", "symbol", "order", "entry", "stop", "target", "status", "P&L", "opened"):
        table.add_column(name, justify="right" if name in ("#", "P&L") else "left",
                         no_wrap=True)
    for p in report.positions:
        note = p.note
        failing = bool(note) and not p.local_only
        style = "bold red" if failing else STATUS_STYLE.get(p.status, "")
        if p.filled_avg_price is not None:
            entry = money(p.filled_avg_price)
        else:
            entry = "mkt" if p.entry_price is None else f"lmt {money(p.entry_price)}"
        stop, target = exit_cells(p) if p.is_live else (money(p.stop_loss), money(p.take_profit))
        table.add_row(
            str(p.id), Text(p.symbol), f"{p.side} {_filled(p)}",
            entry, protection_mark(p, stop), protection_mark(p, target),
            Text(p.status + (" !" if failing else ""), style=style), _pl(p),
            _time(p.created_at, "%m-%d %H:%M"),
        )
    for x in report.external:
        table.add_row("-", Text(one_line(x.symbol)), f"{x.side} {quantity(x.qty)}",
                      money(x.avg_entry_price), "-", "-", Text("external", style="magenta"),
                      _signed(x.unrealized_pl) if x.unrealized_pl is not None else "-", "-")
    return table


def _filled(p: PositionView) -> str:
    """`4/10` while an entry is partly filled, else the shares."""
    if p.filled_qty and p.filled_qty != p.qty and p.is_live:
        return f"{quantity(p.filled_qty)}/{quantity(p.qty)}"
    return quantity(p.filled_qty or p.qty)


def _trading_line(report: StatusReport) -> str:
    cycle = report.cycle
    if cycle is None:
        return "[green]active[/] (no trades yet)"
    if report.trading_stopped:
        return (f"[red bold]STOPPED[/] since {_time(cycle.stopped_at)} UTC: "
                f"{literal(cycle.stop_reason or 'no reason given')}")
    return f"[green]active[/] (cycle {cycle.id} since {_time(cycle.started_at)} UTC)"


def _account_line(report: StatusReport) -> str:
    if not report.broker_configured:
        return "Alpaca not configured (no keys): journal only"
    if report.broker_error is not None:
        return f"[yellow]! broker unavailable, journal only: {literal(report.broker_error)}[/]"
    a = report.account
    assert a is not None
    blocked = " [red]trading blocked[/]" if (
        a.trading_blocked or a.account_blocked or a.trade_suspended_by_user) else ""
    baseline = (f" ({_signed(a.day_pnl - report.loss_baseline)} since the forced resume)"
                if report.loss_baseline is not None else "")
    return (f"{literal(a.account_number)} {literal(a.status)}: equity {dollars(a.equity)}, "
            f"cash {dollars(a.cash)}, "
            f"buying power {dollars(a.buying_power)}, day P&L {_signed(a.day_pnl)}"
            f"{baseline}{blocked}")


RULE_STYLE = {"ok": "green", "warning": "yellow", "tripped": "red bold"}


def _rule_line(rule: RuleVerdict) -> str:
    return f"{rule.rule} [{RULE_STYLE[rule.state]}]{rule.state}[/]: {literal(rule.message)}"


def rules_document(rules: tuple[RuleVerdict, ...]) -> list[dict[str, Any]]:
    return [{"name": r.rule, "limit": r.limit, "current": r.current, "state": r.state,
             "message": r.message, "until": plain(r.until)} for r in rules]


def _alerts_line(report: StatusReport) -> str:
    if not report.alerts:
        return "none pending"
    first = report.alerts[0]
    return (f"[yellow]{len(report.alerts)} pending[/], oldest: {literal(first.subject or '')}"
            + (f" ({first.attempts} attempts, {literal(first.last_error)})"
               if first.last_error else ""))


def _pl(position: PositionView) -> str:
    if position.realized_pl is not None:
        return _signed(position.realized_pl)
    if position.unrealized_pl is not None:
        return _signed(position.unrealized_pl)
    return "-"


def _signed(value: Decimal) -> str:
    """Money in the one format (-$2,020.00), green for a gain and red for a loss."""
    colour = "green" if value.quantize(CENT) > 0 else "red" if value.quantize(CENT) < 0 else ""
    text = dollars(value)
    return f"[{colour}]{text}[/]" if colour else text


def _time(moment: datetime | None, form: str = "%Y-%m-%d %H:%M") -> str:
    return moment.strftime(form) if moment is not None else "-"


def status_document(report: StatusReport) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "trading": "stopped" if report.trading_stopped else "active",
        "cycle": plain(report.cycle),
        "realized_pl_today": cents(report.realized_pl_today),
        "positions": plain(report.positions),
        "alerts": plain(report.alerts),
        "broker": {"configured": report.broker_configured,
                   "account": account_document(report.account), "error": report.broker_error},
        "warnings": list(report.warnings),
        "external": plain(report.external),
        "loss_baseline": plain(report.loss_baseline, "money"),
        "rules": rules_document(report.rules),
    }

