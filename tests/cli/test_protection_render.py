"""What the screens draw for a position's protection: the working prices, and UNPROTECTED in
red, in `watch`'s live view and in `status`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Console

from tradectl.render.protection import exit_cells, protection_cell
from tradectl.render.watch import WatchDisplay
from tradectl.services.watch.tick_report import TickReport
from tradectl.views import PositionView, overlaid

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
RED = "\x1b[1;31m"


def held(**protection: object) -> PositionView:
    view = PositionView(
        id=3, cycle_id=1, symbol="MSFT", side="buy", qty=Decimal(2), entry_price=None,
        stop_loss=Decimal(390), take_profit=Decimal(420), time_in_force="day", status="open",
        client_order_id="tradectl-3", alpaca_order_id="entry-3", alpaca_status="filled",
        alpaca_error=None, filled_qty=Decimal(2), filled_avg_price=Decimal(400), exit_price=None,
        realized_pl=None, created_at=NOW, closed_at=None, close_reason=None)
    return overlaid(view, dict(protection))


def drawn(report: TickReport) -> str:
    display = WatchDisplay(mode="paper", limit=Decimal(2000), interval=60, as_json=False,
                           live=False, broker_enabled=True)
    console = Console(width=160, force_terminal=True, color_system="standard")
    with console.capture() as captured:
        console.print(display._view(report, None))
    return captured.get()


def test_an_unprotected_position_is_red_in_the_live_view_and_shows_no_stop() -> None:
    view = held(protection="unprotected", protected=False,
                protection_error="restore refused: Alpaca 403: account is restricted")
    text = drawn(TickReport(NOW, 1, "active", None, positions=(view,),
                            unprotected=("MSFT #3",)))
    assert f"{RED}UNPROTECTED" in text  # the protected column
    assert f"{RED}open" in text  # the status
    assert "UNPROTECTED: restore refused: Alpaca 403: account is restricted" in text  # the note
    assert exit_cells(view) == ("none", "none")
    assert "390.00" not in text  # the stop asked for is not shown as if it worked


def test_a_protected_position_shows_the_prices_working_at_alpaca() -> None:
    view = held(protection="protected", protected=True, working_stop=Decimal("391.50"),
                working_target=Decimal(420))
    assert exit_cells(view) == ("391.50", "420.00")
    assert protection_cell(view).plain == "yes"
    assert "391.50" in drawn(TickReport(NOW, 1, "active", None, positions=(view,)))


def test_without_an_orders_read_the_asked_prices_are_shown_and_protection_unknown() -> None:
    view = held()
    assert exit_cells(view) == ("390.00", "420.00")
    assert protection_cell(view).plain == "-"
