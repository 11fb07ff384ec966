"""Rendering for `tradectl watch`: a rich Live view on a terminal, one line per tick otherwise."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tradectl.broker import StreamStatus
from tradectl.domain.limits import Limit, limit_dollars
from tradectl.render import cents, dollars, money, one_line, quantity, stdout
from tradectl.render.json import plain, print_json
from tradectl.render.protection import exit_cells, protection_cell
from tradectl.views import overlaid

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from tradectl.services.watch.tick_report import TickReport
    from tradectl.services.watch.trade_updates import StreamReport
    from tradectl.views import ExternalPositionView, PositionView

GAUGE_WIDTH = 30
STREAM_OFF = StreamStatus("off")
STREAM_STYLES = {"connected": "green", "connecting": "yellow", "reconnecting": "yellow",
                 "unauthorized": "bold red", "off": "dim"}

RULE_STYLES = {"ok": "green", "warning": "yellow", "tripped": "bold red"}

class WatchDisplay:
    def __init__(self, *, mode: str, limit: Limit, interval: float, as_json: bool, live: bool,
                 broker_enabled: bool) -> None:
        self.mode, self.limit, self.interval = mode, limit, interval
        self.as_json, self.broker_enabled = as_json, broker_enabled
        self._live: Live | None = None
        self._last: TickReport | None = None  # the live view between ticks: the last, updated
        self._next_in: float | None = None
        self._stream = STREAM_OFF
        if live:
            from rich.live import Live

            self._live = Live(console=stdout(), auto_refresh=False, transient=False)

    def __enter__(self) -> WatchDisplay:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def show(self, result: TickReport, next_in: float | None,
             stream: StreamStatus | None = None) -> None:
        self._last, self._next_in, self._stream = result, next_in, stream or STREAM_OFF
        if self._live is not None:
            self._live.update(self._view(result, next_in), refresh=True)
        elif self.as_json:
            print_json({**tick_document(result), "kind": "tick", "stream": plain(self._stream)})
        else:
            sys.stdout.write(self._line(result) + "\n")
            sys.stdout.flush()

    def show_stream(self, update: StreamReport) -> None:
        """Between ticks: what trade updates changed, or that the stream's state changed. In
        --json, the last tick's document brought up to date (the same fields), "kind":
        "trade_updates"; the account figures are the last tick's."""
        self._stream = update.stream
        last = self._last
        if last is not None and update.positions is not None:
            last = self._last = replace(last, positions=_with_marks(
                update.positions, last.positions), events=update.events)
        if self._live is not None and last is not None:
            self._live.update(self._view(last, self._next_in, update), refresh=True)
        elif self.as_json and last is not None:
            now = replace(last, at=update.at, changes=update.changes, error=update.error,
                          warning=None, stop=None, alerts_sent=0,
                          unprotected=tuple(f"{p.symbol} #{p.id}" for p in last.positions
                                            if p.unprotected),
                          protection_error=update.protection_error)
            print_json({**tick_document(now), "kind": "trade_updates",
                        "stream": plain(update.stream)})
        elif not self.as_json:
            parts = [f"{update.at:%Y-%m-%dT%H:%M:%SZ}", self.mode.upper(),
                     f"stream: {stream_text(update.stream)}"]
            parts += [f"change: {one_line(c)}" for c in update.changes]
            if update.error:
                parts.append(f"ERROR: {one_line(update.error)}")
            sys.stdout.write(" | ".join(parts) + "\n")
            sys.stdout.flush()

    # -- one line per tick ---------------------------------------------------------------

    def _line(self, result: TickReport) -> str:
        parts = [f"{result.at:%Y-%m-%dT%H:%M:%SZ}", self.mode.upper(),
                 f"cycle={result.cycle_status}"]
        if result.account is not None:
            limit = limit_dollars(self.limit, result.account.last_equity)
            parts += [f"equity={cents(result.account.equity)}",
                      f"day_pnl={cents(result.account.day_pnl)}",
                      f"limit=-{cents(limit) if limit is not None else 'unknown'}"]
            if result.loss_baseline is not None:
                parts.append(f"baseline={cents(result.loss_baseline)}")
        elif not self.broker_enabled:
            parts.append("pnl=unknown (P&L needs a broker: set ALPACA_API_KEY)")
        held = sum(1 for p in result.positions if p.is_live) + len(result.external)
        parts.append(f"positions={held}")  # what is open after the tick
        parts += [f"{r.rule}={r.state} ({r.current or '-'} of {r.limit or '-'})"
                  for r in result.rules]
        if result.external:
            parts.append(f"external={len(result.external)}")
        if result.standing_by:
            parts.append(f"standby (driver: {one_line(result.driver or 'unknown')})")
        elif not result.drives_stops:
            parts.append("read-only")
        if result.unprotected:
            parts.append(f"UNPROTECTED: {', '.join(result.unprotected)}")
        parts.append(f"stream: {stream_text(self._stream)}")
        parts += [f"change: {one_line(c)}" for c in result.changes]
        if result.warning:
            parts.append(f"WARNING: {one_line(result.warning)}")
        if result.error:
            parts.append(f"ERROR: {one_line(result.error)}")
        if result.stop is not None:
            parts.append(f"EMERGENCY STOP: {one_line(result.stop_reason or '')} "
                         f"(exit {int(result.stop.exit_code)})")
        return " | ".join(parts)

    # -- the live view -------------------------------------------------------------------

    def _view(self, result: TickReport, next_in: float | None,
              update: StreamReport | None = None) -> RenderableType:
        from rich.console import Group
        from rich.panel import Panel
        from rich.text import Text

        footer = f"last tick {result.at:%H:%M:%S} UTC"
        if update is not None and update.changes:
            footer += f"   trade update {update.at:%H:%M:%S} UTC"
        if next_in is not None:
            upcoming = result.at + timedelta(seconds=next_in)
            footer += f"   next {upcoming:%H:%M:%S} UTC   Ctrl-C to leave"
        return Group(Panel(Group(*self._summary(result, update)), title="tradectl watch"),
                     _positions_table(result), Panel(_events(result), title="recent events"),
                     Text(footer, style="dim"))

    def _summary(self, result: TickReport, update: StreamReport | None) -> list[RenderableType]:
        """The panel's lines: mode and cycle, the account and the gauge, the stream, notes."""
        from rich.text import Text

        mode_style = "bold white on red" if self.mode == "live" else "bold black on cyan"
        header = Text.assemble((f" {self.mode.upper()} ", mode_style), "  ")
        if result.cycle_status == "stopped":
            header.append(f"STOPPED: {one_line(result.stop_reason or '')}", style="bold red")
        else:
            header.append(f"cycle {result.cycle_id or '-'} {result.cycle_status}", style="green")
        if result.standing_by:
            header.append(f"  (standing by: {one_line(result.driver or 'another watch')} "
                          "drives stops; this one takes over if it stops)", style="yellow")
        elif not result.drives_stops:
            header.append("  (read-only: never pulls the emergency stop)", style="yellow")
        lines: list[RenderableType] = [header]
        if result.account is not None:
            lines += [Text(f"equity {dollars(result.account.equity)}   "
                           f"cash {dollars(result.account.cash)}"), self._gauge(result)]
        elif not self.broker_enabled:
            lines.append(Text("P&L needs a broker: set ALPACA_API_KEY and ALPACA_SECRET_KEY",
                              style="yellow"))
        lines += [Text(f"rule {r.rule} {r.state}: {one_line(r.message)}",
                       style=RULE_STYLES[r.state]) for r in result.rules]
        lines.append(Text(f"stream: {stream_text(self._stream)}",
                          style=STREAM_STYLES[self._stream.state]))
        for note, style in ((result.warning, "bold yellow"), (result.error, "bold red"),
                            (update.error if update else None, "bold red")):
            if note:
                lines.append(Text(one_line(note), style=style))
        return lines

    def _gauge(self, result: TickReport) -> RenderableType:
        from rich.text import Text

        pnl = result.loss_pnl or Decimal(0)
        # a percentage is of the day's starting equity (Alpaca's last_equity)
        limit = limit_dollars(self.limit, result.account.last_equity if result.account else None)
        limit = limit or Decimal(0)
        used = min(max(-pnl / limit, Decimal(0)), Decimal(1)) if limit else Decimal(0)
        filled = int(used * GAUGE_WIDTH)
        style = "red" if used >= Decimal("0.8") else "yellow" if used >= Decimal("0.5") else "green"
        label = f"day P&L {dollars(result.day_pnl)}"
        if result.loss_baseline is not None:
            label += f" ({dollars(pnl)} since the forced resume)"
        return Text.assemble(f"{label} of {dollars(-limit)} limit  ",
                             ("█" * filled, style), ("░" * (GAUGE_WIDTH - filled), "dim"),
                             f" {used:.0%}")


def stream_text(status: StreamStatus) -> str:
    """`connected`, or `reconnecting (connection failed: ...; next try in 2 s)`."""
    text = status.state + (f" ({one_line(status.detail)})" if status.detail else "")
    if status.dropped:
        text += f", {status.dropped} update{'s' if status.dropped > 1 else ''} dropped"
    return text


def _with_marks(positions: tuple[PositionView, ...],
                marked: tuple[PositionView, ...]) -> tuple[PositionView, ...]:
    """Positions from a trade update, with the last tick's market price beside them, and its
    protection where the update did not check it again (a position in the same state)."""
    marks = {p.id: p for p in marked}
    return tuple(overlaid(p, _marks_of(m, checked=p.protection is not None
                                       or p.status != m.status))
                 if (m := marks.get(p.id)) is not None else p for p in positions)


def _marks_of(mark: PositionView, *, checked: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {"last_price": mark.last_price, "unrealized_pl": mark.unrealized_pl}
    if not checked:
        fields.update(protection=mark.protection, protected=mark.protected,
                      working_stop=mark.working_stop, working_target=mark.working_target)
    return fields


def _positions_table(result: TickReport) -> RenderableType:
    from rich.table import Table

    table = Table(expand=True, show_edge=False)
    for column in ("symbol", "side", "qty", "entry", "last", "stop", "target", "protected",
                   "unreal. P&L", "status", "note"):
        table.add_column(column, justify="right" if column not in (
            "symbol", "side", "protected", "status", "note") else "left")
    for p in result.positions:
        table.add_row(*_position_row(p))
    for x in result.external:
        table.add_row(*_external_row(x))
    return table


def _events(result: TickReport) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    events = Table.grid(padding=(0, 1))
    for e in result.events:
        events.add_row(f"{e.created_at:%H:%M:%S}", Text(e.kind), Text(one_line(e.message)))
    return events


def _position_row(p: PositionView) -> tuple[Any, ...]:
    from rich.text import Text

    qty, filled = quantity(p.qty), quantity(p.filled_qty) if p.filled_qty else "0"
    partial = filled not in ("0", qty)
    pnl = p.unrealized_pl
    pnl_style = "green" if pnl and pnl > 0 else "red" if pnl else ""
    note = p.note
    stop, target = exit_cells(p)
    return (
        Text(p.symbol), p.side, f"{filled}/{qty}" if partial else qty,
        money(p.filled_avg_price or p.entry_price), money(p.last_price),
        stop, target, protection_cell(p), Text(dollars(pnl), style=pnl_style),
        Text(p.status + (" (partial)" if partial else ""),
             style="bold red" if note and not p.local_only else ""),
        Text(one_line(note or ""), style="dim" if p.local_only else "red"),
    )


def _external_row(x: ExternalPositionView) -> tuple[Any, ...]:
    from rich.text import Text

    pnl = x.unrealized_pl
    return (Text(one_line(x.symbol)), x.side, quantity(x.qty), money(x.avg_entry_price),
            money(x.last_price), "-", "-", "-",
            Text(dollars(pnl), style="green" if pnl and pnl > 0 else "red" if pnl else ""),
            Text("external", style="magenta"), Text("not opened by tradectl", style="dim"))


def tick_document(result: TickReport) -> dict[str, Any]:
    from tradectl.render.status import rules_document

    account = result.account
    return {
        "at": result.at,
        "cycle_id": result.cycle_id,
        "cycle_status": result.cycle_status,
        "stop_reason": result.stop_reason,
        "equity": plain(account.equity, "money") if account else None,
        "day_pnl": plain(result.day_pnl, "money"),
        "loss_baseline": plain(result.loss_baseline, "money"),
        "drives_stops": result.drives_stops,
        "role": result.role,
        "driver": result.driver,
        "positions": plain(result.positions),
        "external": plain(result.external),
        "changes": list(result.changes),
        "unprotected": list(result.unprotected),
        "protection_error": result.protection_error,
        "warning": result.warning,
        "error": result.error,
        "emergency_stop": None if result.stop is None else {
            "exit_code": int(result.stop.exit_code),
            "symbols": [{"symbol": s.symbol, "state": s.state, "error": s.error}
                        for s in result.stop.symbols],
            "alert": result.stop.alert,
        },
        "alerts_sent": result.alerts_sent,
        "rules": rules_document(result.rules),
    }
