"""`--dry-run`, shared by the commands that write: the option, and how its report ends the
command (the real command's exit code, nothing written or sent)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from tradectl.services.dry_run import DryRun

DryRunOption = Annotated[bool, typer.Option(
    "--dry-run", help="Do everything up to the broker write and show it: the reads, the rules "
    "with their figures, the exact request. Nothing is written or sent.")]


def show(report: DryRun[Any], as_json: bool) -> NoReturn:
    from tradectl.render.dry_run import dry_run_report

    dry_run_report(report, as_json)
    raise typer.Exit(report.exit_code)
