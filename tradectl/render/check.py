"""Rendering for `tradectl check-alpaca`: one line per check, its fix beneath a failure or a
warning, and a verdict; or one JSON document carrying the same facts."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tradectl.errors import ExitCode
from tradectl.render import cents, literal, price_text, stdout
from tradectl.render.json import print_json

if TYPE_CHECKING:
    from tradectl.broker import Account
    from tradectl.services.check.check_alpaca import CheckReport

_MARKS = {"pass": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red")}
_EXIT_MEANING = {ExitCode.BAD_INPUT: "configuration", ExitCode.BROKER: "broker",
                 ExitCode.DATABASE: "database"}


def check_report(report: CheckReport, as_json: bool) -> None:
    if as_json:
        print_json(check_document(report))
        return
    console = stdout()
    width = max(len(c.name) for c in report.checks)
    shown_fixes: set[str] = set()
    for check in report.checks:
        mark, colour = _MARKS[check.state]
        console.print(f"[{colour}]{mark}[/] [bold]{check.name:<{width}}[/]  "
                      f"{literal(check.detail)}")
        if check.fix and check.state != "pass" and check.fix not in shown_fixes:
            shown_fixes.add(check.fix)  # the same cause behind several checks: say it once
            console.print(f"  {'':<{width}}  [{colour}]→ {literal(check.fix)}[/]")
    console.print(_verdict(report))


def _verdict(report: CheckReport) -> str:
    failed = sum(c.state == "fail" for c in report.checks)
    warned = sum(c.state == "warn" for c in report.checks)
    if failed:
        area = _EXIT_MEANING.get(report.exit_code, "")
        return (f"[red bold]{failed} check{'s' * (failed != 1)} failed[/] "
                f"(exit {report.exit_code}: {area} error)")
    if warned:
        return f"[yellow bold]ready, with {warned} warning{'s' * (warned != 1)}[/]"
    return "[green bold]all checks passed[/]"


def check_document(report: CheckReport) -> dict[str, Any]:
    return {
        "ok": report.exit_code == 0,
        "exit_code": int(report.exit_code),
        "checks": [
            {"name": c.name, "state": c.state, "detail": c.detail, "fix": c.fix}
            for c in report.checks
        ],
        "configuration": _optional(report.configuration),
        "account": account_document(report.account),
        "clock": _optional(report.clock),
        "latest_trade": None if report.latest_trade is None else {
            "symbol": report.latest_trade.symbol, "price": price_text(report.latest_trade.price)},
        "database": _optional(report.database),
    }


def account_document(account: Account | None) -> dict[str, Any] | None:
    """The account for --json: money as strings in cents (status shows the same object)."""
    if account is None:
        return None
    document: dict[str, Any] = asdict(account)
    for name in ("cash", "equity", "last_equity", "portfolio_value", "buying_power"):
        document[name] = None if document[name] is None else cents(document[name])
    document["day_pnl"] = cents(account.day_pnl)
    return document



def _optional(value: Any) -> dict[str, Any] | None:
    return None if value is None else asdict(value)
