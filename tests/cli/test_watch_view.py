"""The live view of `watch` (drawn on a terminal only): what a trader reads at a glance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Console

from tradectl.broker import Account
from tradectl.render.watch import WatchDisplay
from tradectl.services.watch.tick_report import TickReport
from tradectl.views import ExternalPositionView, PositionView

NOW = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)
ACCOUNT = Account(account_number="PA1", status="ACTIVE", currency="USD", cash=Decimal(90000),
                  equity=Decimal("98400"), last_equity=Decimal(100000),
                  portfolio_value=Decimal("98400"), buying_power=Decimal(190000),
                  trading_blocked=False, account_blocked=False, trade_suspended_by_user=False)


def position(**fields: object) -> PositionView:
    values: dict[str, object] = dict(
        id=1, cycle_id=1, symbol="AAPL", side="buy", qty=Decimal(10), entry_price=None,
        stop_loss=Decimal(145), take_profit=Decimal(160), time_in_force="day", status="open",
        client_order_id="c", alpaca_order_id="o", alpaca_status="filled", alpaca_error=None,
        filled_qty=Decimal(4), filled_avg_price=Decimal(150), exit_price=None, realized_pl=None,
        created_at=NOW, closed_at=None, close_reason=None, last_price=Decimal("147.20"),
        unrealized_pl=Decimal("-11.20"))
    values.update(fields)
    return PositionView(**values)  # type: ignore[arg-type]


def drawn(report: TickReport) -> str:
    display = WatchDisplay(mode="live", limit=Decimal(2000), interval=60, as_json=False,
                           live=False, broker_enabled=True)
    console = Console(width=160, record=True)
    console.print(display._view(report, 60))
    return console.export_text()


def test_the_live_view_shows_the_gauge_rows_externals_failures_and_read_only() -> None:
    report = TickReport(
        NOW, 1, "active", None, account=ACCOUNT, drives_stops=False,
        positions=(position(), position(id=2, symbol="TSLA", alpaca_error="[red]x[/red] \x1b[2J",
                                        protected=False, protection="unprotected")),
        external=(ExternalPositionView("GOOG", "long", Decimal(100), Decimal(170),
                                       Decimal(154), Decimal(-1600)),))
    text = drawn(report)
    assert " LIVE " in text and "read-only: never pulls the emergency stop" in text
    assert "day P&L -$1,600.00 of -$2,000.00 limit" in text and "80%" in text
    assert "4/10" in text  # a partly filled entry
    assert "GOOG" in text and "external" in text and "-$1,600.00" in text
    assert "[red]x[/red] \\x1b[2J" in text  # outside text printed literally, never interpreted
    assert "next 14:01:00 UTC" in text


def test_a_standing_by_watch_says_who_drives_and_that_it_takes_over() -> None:
    report = TickReport(NOW, 1, "active", None, account=ACCOUNT, drives_stops=False,
                        standing_by=True, driver="pid 4242 on host-a")
    text = drawn(report)
    assert "standing by: pid 4242 on host-a drives stops; this one takes over" in text
    assert "read-only" not in text
    assert report.role == "standby"
    assert TickReport(NOW, 1, "active", None, drives_stops=False).role == "read_only"
