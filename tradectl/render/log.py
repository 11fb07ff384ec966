"""Rendering for `tradectl log`: one line per event, newest first, columns aligned for grep."""

from __future__ import annotations

from tradectl.render import literal, stdout
from tradectl.render.json import print_json
from tradectl.views import EventView


def event_log(events: list[EventView], as_json: bool) -> None:
    if as_json:
        print_json({"events": events})
        return
    console = stdout()
    if not events:
        console.print("no events")
        return
    kind_width = max(len("kind"), *(len(e.kind) for e in events))
    symbol_width = max(len("symbol"), *(len(e.symbol or "-") for e in events))
    console.print(f"[dim]{'time (UTC)':<19}  {'kind':<{kind_width}}  {'symbol':<{symbol_width}}  "
                  "message[/]")
    for e in events:
        console.print(
            f"{e.created_at:%Y-%m-%d %H:%M:%S}  {e.kind:<{kind_width}}  "
            f"{(e.symbol or '-'):<{symbol_width}}  {literal(e.message)}"
        )
