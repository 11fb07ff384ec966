"""Rendering for `tradectl report`: the closed trades, the totals per day with the period's under
them, and a bar chart of daily realized P&L (green gains, red losses); or one JSON object; or
the trade rows as CSV."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tradectl.domain.calendar import MARKET_TZ
from tradectl.domain.money import CENT, cents, dollars, price_text, quantity_text
from tradectl.domain.performance import bar_lengths
from tradectl.render import stdout
from tradectl.render.json import plain

if TYPE_CHECKING:
    from collections.abc import Sequence
    from decimal import Decimal

    from tradectl.domain.performance import Performance, Totals, TradeRow

BAR_WIDTH = 24  # characters on each side of the axis
CSV_COLUMNS = ("position_id", "symbol", "side", "qty", "entry", "exit", "realized_pl",
               "initial_risk", "r_multiple", "close_reason", "opened_at", "closed_at",
               "held_seconds", "day")


def trading_report_view(report: Performance, as_json: bool) -> None:
    if as_json:
        # report_document is JSON-ready already: print_json would walk its 10,000 trades again
        sys.stdout.write(json.dumps(report_document(report)) + "\n")
        sys.stdout.flush()
        return
    console = stdout()
    console.print(f"[bold]trading report[/] {report.since} to {report.until} "
                  "(New York trading days)")
    if not report.trades and not report.days:
        console.print("no closed trades and no stops in this period")
        return
    if report.trades:
        plain_table(TRADE_COLUMNS, [trade_cells(row) for row in report.trades])
    console.print()
    console.print("totals (dollars)")
    rows = [(str(day.day), *_totals_cells(day.totals)) for day in report.days]
    plain_table(TOTALS_COLUMNS, [*rows, ("period", *_totals_cells(report.period))],
                no_wrap=True, bold_last=True)
    console.print()
    _chart(report)


TRADE_COLUMNS = (("closed (NY)", "left"), ("symbol", "left"), ("side", "left"),
                 ("qty", "right"), ("entry", "right"), ("exit", "right"), ("P&L", "right"),
                 ("R", "right"), ("closed by", "left"), ("held", "right"))


TOTALS_COLUMNS = (("day", "left"), *((name, "right") for name in (
    "trades", "win %", "avg win", "avg loss", "expect", "avg R", "best", "worst", "P&L", "max DD",
    "stops")))


def report_document(report: Performance) -> dict[str, Any]:
    """The --json document: what json.plain makes of the report, the 10,000 trades written out
    field by field (plain's walk over each dataclass's annotations takes a second there)."""
    return {"since": report.since.isoformat(), "until": report.until.isoformat(),
            "trades": [_trade_json(row) for row in report.trades],
            "days": plain(report.days), "period": plain(report.period)}


def _trade_json(row: TradeRow) -> dict[str, Any]:
    t = row.trade
    return {"trade": {
        "position_id": t.position_id, "symbol": t.symbol, "side": t.side,
        "qty": quantity_text(t.qty), "entry": price_text(t.entry), "exit": price_text(t.exit),
        "initial_stop": price_text(t.initial_stop), "realized_pl": cents(t.realized_pl),
        "close_reason": t.close_reason, "opened_at": _utc(t.opened_at),
        "closed_at": _utc(t.closed_at)},
        "day": row.day.isoformat(), "initial_risk": cents(row.initial_risk),
        "r_multiple": None if row.r_multiple is None else format(row.r_multiple, "f"),
        "held_seconds": row.held_seconds}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def trade_cells(row: TradeRow) -> tuple[str, ...]:
    t = row.trade
    # isoformat, sliced to the minute: strftime took twice as long, at 10,000 rows a report
    return (t.closed_at.astimezone(MARKET_TZ).isoformat(" ", "minutes")[:16], t.symbol, t.side,
            quantity_text(t.qty), price_text(t.entry), price_text(t.exit),
            _signed(t.realized_pl), "-" if row.r_multiple is None else f"{row.r_multiple:+}",
            t.close_reason, held_text(row.held_seconds))


def plain_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], *,
                no_wrap: bool = False, bold_last: bool = False) -> None:
    """Plain text columns laid out as rich's borderless table lays them out (rich's Table takes
    seconds for 10,000 rows), the header in bold, and the last row with `bold_last`. A table
    wider than the console is left to rich, which folds it."""
    from rich.cells import cell_len
    from rich.text import Text

    console = stdout()
    # Plain ASCII (the usual case) is one cell per character: str.format pads it and len
    # measures it, without rich's per-character width lookup.
    ascii_rows = all(map(str.isascii, ("".join(cells) for cells in rows)))
    width = len if ascii_rows else cell_len
    widths = [max(cell_len(name), max(map(width, cells), default=0))
              for (name, _), cells in zip(columns, zip(*rows, strict=True), strict=True)]
    if sum(widths) + 2 * (len(widths) - 1) > console.width:
        _rich_table(columns, rows, no_wrap=no_wrap, bold_last=bold_last)
        return

    def padded(cells: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - cell_len(c)) if justify == "left"
                         else " " * (w - cell_len(c)) + c
                         for c, w, (_, justify) in zip(cells, widths, columns, strict=True))

    template = "  ".join(f"{{:{'<' if justify == 'left' else '>'}{w}}}"
                         for w, (_, justify) in zip(widths, columns, strict=True))

    def line(cells: Sequence[str]) -> str:
        return template.format(*cells) if ascii_rows else padded(cells)

    console.print(Text(padded([name for name, _ in columns]), style="bold"))
    body = rows[:-1] if bold_last else rows
    if ascii_rows:
        text = "".join([template.format(*cells) + "\n" for cells in body])
    else:
        text = "".join([padded(cells) + "\n" for cells in body])
    console.file.write(text)
    console.file.flush()
    if bold_last:
        console.print(Text(line(rows[-1]), style="bold"))


def _rich_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], *,
                no_wrap: bool, bold_last: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False, box=None)
    for name, justify in columns:
        table.add_column(name, justify="right" if justify == "right" else "left",
                         no_wrap=no_wrap)
    for cells in rows[:-1] if bold_last else rows:
        table.add_row(*(Text(c) for c in cells))
    if bold_last:
        table.add_row(*(Text(c, style="bold") for c in rows[-1]))
    stdout().print(table)


def _totals_cells(t: Totals) -> list[str]:
    """Plain amounts (the header says dollars): the table must fit a terminal."""
    return [str(t.trades), "-" if t.win_rate is None else f"{t.win_rate}",
            _amount(t.average_win), _amount(t.average_loss), _amount(t.expectancy),
            "-" if t.average_r is None else f"{t.average_r}", _amount(t.best),
            _amount(t.worst), _amount(t.realized_pl), _amount(-t.max_drawdown),
            str(t.stops_pulled)]


def _chart(report: Performance) -> None:
    """One bar a day: losses to the left of the axis in red, gains to the right in green."""
    console = stdout()
    console.print("daily realized P&L")
    values = [d.totals.realized_pl for d in report.days]
    for day, value, length in zip(report.days, values, bar_lengths(values, BAR_WIDTH),
                                  strict=True):
        left = f"[red]{'█' * length}[/]" if value < 0 else ""
        right = f"[green]{'█' * length}[/]" if value > 0 else ""
        pad_left = " " * (BAR_WIDTH - (length if value < 0 else 0))
        pad_right = " " * (BAR_WIDTH - (length if value > 0 else 0))
        colour = "green" if value > 0 else "red" if value < 0 else "dim"
        console.print(f"{day.day}  {pad_left}{left}│{right}{pad_right}  "
                      f"[{colour}]{_signed(value)}[/]")


def report_csv(report: Performance) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.trades:
        t = row.trade
        writer.writerow([t.position_id, t.symbol, t.side, quantity_text(t.qty),
                         price_text(t.entry), price_text(t.exit), cents(t.realized_pl),
                         cents(row.initial_risk),
                         "" if row.r_multiple is None else str(row.r_multiple),
                         t.close_reason, t.opened_at.isoformat(), t.closed_at.isoformat(),
                         row.held_seconds, row.day.isoformat()])
    sys.stdout.flush()


def held_text(seconds: int) -> str:
    """3d 4h, 2h 05m, 7m 30s."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def _amount(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.quantize(CENT) + 0:,}"


def _signed(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + dollars(value)
