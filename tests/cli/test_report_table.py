"""`report`'s tables are written as plain columns (rich's Table takes seconds at 10,000
trades): byte for byte what rich's borderless tables drew before, piped; folded by rich when
wider than the console. Its JSON document is written directly: what the JSON writer makes."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from tradectl.domain.calendar import MARKET_TZ
from tradectl.domain.performance import ClosedTrade, performance
from tradectl.render import PIPED_WIDTH
from tradectl.render.json import plain
from tradectl.render.report import (
    TRADE_COLUMNS,
    report_document,
    trade_cells,
    trading_report_view,
)

OPENED = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def trades(symbols: list[str]) -> list[ClosedTrade]:
    return [ClosedTrade(i, symbol, "buy" if i % 2 else "sell", Decimal(10 * i + 1),
                        Decimal("150.25") + i, Decimal("149") + 2 * i, Decimal(148),
                        Decimal(i * 37 - 50), ("take_profit", "stop_loss", "emergency_stop")[i % 3],
                        OPENED + timedelta(minutes=i), OPENED + timedelta(hours=i, seconds=7 * i))
            for i, symbol in enumerate(symbols, start=1)]


def by_rich(report_trades: list[ClosedTrade], width: int) -> str:
    """The report's text as its rich tables drew it before (the chart left out)."""
    from tradectl.render.report import _totals_cells

    report = performance(report_trades, [OPENED + timedelta(days=1)], since=date(2026, 11, 2),
                         until=date(2026, 11, 9))
    console = Console(file=io.StringIO(), highlight=False, soft_wrap=True, width=width)
    console.print(f"[bold]trading report[/] {report.since} to {report.until} "
                  "(New York trading days)")
    table = Table(show_edge=False, pad_edge=False, box=None)
    for name, justify in TRADE_COLUMNS:
        table.add_column(name, justify="right" if justify == "right" else "left")
    for row in report.trades:
        table.add_row(*trade_cells(row))
    console.print(table)
    console.print()
    console.print("totals (dollars)")
    totals = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
    for column in ("day", "trades", "win %", "avg win", "avg loss", "expect", "avg R",
                   "best", "worst", "P&L", "max DD", "stops"):
        totals.add_column(column, justify="left" if column == "day" else "right", no_wrap=True)
    for day in report.days:
        totals.add_row(str(day.day), *_totals_cells(day.totals))
    totals.add_row("[bold]period[/]", *(f"[bold]{c}[/]" for c in _totals_cells(report.period)))
    console.print(totals)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def ours(report_trades: list[ClosedTrade]) -> str:
    report = performance(report_trades, [OPENED + timedelta(days=1)], since=date(2026, 11, 2),
                         until=date(2026, 11, 9))
    out = io.StringIO()
    with redirect_stdout(out):
        trading_report_view(report, as_json=False)
    text = out.getvalue()
    return text[:text.index("\ndaily realized P&L")]


def test_the_plain_trade_table_is_what_rich_draws_piped() -> None:
    sample = trades(["AAPL", "MSFT", "NVDA", "BRK.B", "T", "GOOGL", "TSLA", "A", "AMD", "META",
                     "QQQ", "SPY"])
    assert ours(sample) == by_rich(sample, PIPED_WIDTH)
    assert ours(sample[:1]) == by_rich(sample[:1], PIPED_WIDTH)


def test_a_table_wider_than_the_console_is_folded_by_rich() -> None:
    sample = trades(["X" * 90, "AAPL"])
    assert ours(sample) == by_rich(sample, PIPED_WIDTH)
    assert max(len(line) for line in ours(sample).splitlines()) <= PIPED_WIDTH
    assert "X" * 90 not in ours(sample)  # folded


def test_the_json_document_is_what_the_json_writer_makes_of_the_report() -> None:
    sample = trades(["AAPL", "MSFT", "NVDA", "BRK.B"])
    no_risk = ClosedTrade(9, "T", "sell", Decimal("0.5"), Decimal("0.1234"), Decimal("0.12"),
                          Decimal("0.1234"), Decimal("-0.0017"), "unknown",
                          OPENED.astimezone(MARKET_TZ), OPENED + timedelta(days=2))
    report = performance([*sample, no_risk], [OPENED + timedelta(days=1)],
                         since=date(2026, 11, 2), until=date(2026, 11, 9))
    assert report.trades[-1].r_multiple is None
    assert report_document(report) == plain(report)
    assert json.dumps(report_document(report)) == json.dumps(plain(report))
