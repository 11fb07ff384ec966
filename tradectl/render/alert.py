"""Rendering for `tradectl alert test`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradectl.render import literal, stdout
from tradectl.render.json import print_json

if TYPE_CHECKING:
    from tradectl.services.alerts import AlertTestReport


def alert_test_report(report: AlertTestReport, as_json: bool) -> None:
    if as_json:
        print_json({"channels": [{"channel": c.channel, "recipients": c.recipients,
                                  "sent": c.sent, "error": c.error} for c in report.channels],
                    "exit_code": int(report.exit_code)})
        return

    console = stdout()
    for c in report.channels:
        verdict = ("[green]✓ sent[/]" if c.sent
                   else f"[red]✗ not sent: {literal(c.error or '')}[/]")
        console.print(f"{c.channel:<8} {literal(c.recipients)}  {verdict}")
    failed = sum(not c.sent for c in report.channels)
    console.print("[green bold]every channel took the test alert[/]" if not failed else
                  f"[red bold]{failed} channel{'s' * (failed != 1)} did not take it[/] "
                  f"(exit {int(report.exit_code)})")
