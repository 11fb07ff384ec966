"""What an emergency stop reports (`HaltReport`) and the alert it sends, drawn from the same
figures: the subject, the plain-text body and the facts a webhook carries beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradectl.domain.money import cents, dollars
from tradectl.errors import ExitCode
from tradectl.services.alerts import NOT_CONFIGURED
from tradectl.services.halt.stop_record import SymbolReport


@dataclass(frozen=True)
class HaltReport:
    cycle_id: int | None  # None: the latch could not be written
    reason: str  # the latched reason (the first stop's, when the cycle was already stopped)
    stopped_at: datetime
    already_stopped: bool
    broker_enabled: bool
    path: str = "none"
    symbols: tuple[SymbolReport, ...] = ()
    market_open: bool | None = None
    equity: Decimal | None = None
    day_pnl: Decimal | None = None
    broker_error: str | None = None
    notes: tuple[str, ...] = ()
    alert: str = NOT_CONFIGURED
    broker_requests: int | None = None
    database_error: str | None = None  # the stop could not be (fully) recorded: why
    given_reason: str | None = None  # this halt's own reason, when it differs from the latched
    unread: tuple[str, ...] = ()  # reads after the stop that failed: the record is partial
    swept: tuple[str, ...] = ()  # symbols placed after the close-all, closed after the latch
    completed: tuple[str, ...] = ()  # earlier stops whose process ended before their record
    began: datetime | None = None  # when the stop began (written ahead), before the latch

    @property
    def exit_code(self) -> ExitCode:
        if self.database_error is not None:
            return ExitCode.DATABASE
        if self.broker_error is not None or self.unread or any(s.failed for s in self.symbols):
            return ExitCode.BROKER
        return ExitCode.OK


def alert_subject(report: HaltReport) -> str:
    failed = sum(1 for s in report.symbols if s.failed)
    outcome = f"{failed} FAILED" if failed or report.broker_error else "all closed or closing"
    unrecorded = " - NOT RECORDED" if report.database_error else ""
    return f"EMERGENCY STOP - trading halted: {outcome}{unrecorded}"


def alert_facts(report: HaltReport) -> dict[str, Any]:
    """The stop's figures as a webhook carries them beside the text."""
    return {
        "reason": report.reason, "cycle_id": report.cycle_id,
        "stopped_at": report.stopped_at.isoformat(), "already_stopped": report.already_stopped,
        "symbols": [{"symbol": s.symbol, "state": s.state, "external": s.external,
                     "close_order_id": s.close_order_id, "error": s.error}
                    for s in report.symbols],
        "equity": _text(report.equity), "day_pnl": _text(report.day_pnl),
        "broker_error": report.broker_error, "database_error": report.database_error,
        "notes": list(report.notes),
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else cents(value)


def alert_body(report: HaltReport) -> str:
    cycle = (f"Cycle: {report.cycle_id} (new entries refused until `tradectl resume`)"
             if report.cycle_id is not None else
             "Cycle: not recorded (the database was unreachable; `open` cannot trade without it)")
    lines = [f"tradectl emergency stop at {report.stopped_at:%Y-%m-%d %H:%M:%S} UTC",
             f"Reason: {report.reason}", cycle, ""]
    if report.database_error:
        lines += [f"DATABASE: the stop could not be recorded: {report.database_error}", ""]
    if report.broker_error:
        lines.append(f"BROKER UNREACHABLE: {report.broker_error}")
    for s in report.symbols:
        detail = s.error or (f"close order {s.close_order_id}" if s.close_order_id else "")
        who = " (not opened by tradectl)" if s.external else ""
        lines.append(f"  {s.symbol:<8} {s.state:<14} {detail}{who}".rstrip())
    if not report.symbols:
        lines.append("  no open positions")
    lines.append("")
    if report.equity is not None and report.day_pnl is not None:
        lines.append(f"Equity: {dollars(report.equity)}   Day P&L: {dollars(report.day_pnl)}")
    lines.extend(report.notes)
    return "\n".join(lines) + "\n"

