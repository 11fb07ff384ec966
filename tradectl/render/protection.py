"""How a position's protection reads in the `watch` views and `status`: the stop and target
columns show what is working at Alpaca, never only what was asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradectl.render import money

if TYPE_CHECKING:
    from rich.text import Text

    from tradectl.views import PositionView

PROTECTION_STYLE = {"protected": "green", "unprotected": "bold red", "closing": "yellow"}


def exit_cells(p: PositionView) -> tuple[str, str]:
    """(stop, target): the working prices when Alpaca's orders were read; `none` for held
    shares without one; the asked-for prices when nothing is held or nothing was read."""
    if p.protection is None:
        return money(p.working_stop or p.stop_loss), money(p.working_target or p.take_profit)
    return (money(p.working_stop) if p.working_stop is not None else "none",
            money(p.working_target) if p.working_target is not None else "none")


def protection_cell(p: PositionView) -> Text:
    from rich.text import Text

    label = {"protected": "yes", "unprotected": "UNPROTECTED"}.get(p.protection or "",
                                                                    p.protection or "-")
    return Text(label, style=PROTECTION_STYLE.get(p.protection or "", "dim"))


def protection_mark(p: PositionView, cell: str) -> Text:
    """A stop or target cell marked: red when held shares have none working (the note under
    the table says why), green when Alpaca's orders show it working."""
    from rich.text import Text

    style = {"protected": "green", "unprotected": "bold red"}.get(p.protection or "", "")
    return Text(cell, style=style)
