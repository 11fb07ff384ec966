"""`tradectl report`: how trading went, from the database."""

from __future__ import annotations

from typing import Annotated

import typer

from tradectl.cli.app import JsonOption, app, context


@app.command("report")
def report_command(
    typer_ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="First trading day, YYYY-MM-DD (default: the first recorded).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Last trading day, YYYY-MM-DD (default: today).")] = None,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option(
        "--csv", help="The closed trades as CSV rows, for a spreadsheet.")] = False,
) -> None:
    """How trading went: each closed trade with its R multiple, totals per day and for the
    period, and a chart of daily realized P&L. From the database only: no broker call.

    Days are New York trading days. Example: tradectl report --since 2026-11-02 --until 2026-11-06
    """
    from tradectl.domain.performance import parse_day
    from tradectl.errors import InputError
    from tradectl.render.report import report_csv, trading_report_view
    from tradectl.services.report.report import trading_report

    if as_json and as_csv:
        raise InputError("--json and --csv: pick one")
    first = parse_day(since, "--since") if since is not None else None
    last = parse_day(until, "--until") if until is not None else None
    ctx = context(typer_ctx)
    result = trading_report(ctx.report_database, since=first, until=last, now=ctx.clock.now())
    if as_csv:
        report_csv(result)
    else:
        trading_report_view(result, as_json)
