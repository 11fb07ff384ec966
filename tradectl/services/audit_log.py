"""`log`: the events audit log read back, newest first, narrowed to a symbol or a kind."""

from __future__ import annotations

from tradectl.db.session import Database
from tradectl.views import EventView

DEFAULT_LIMIT = 50


def recent_events(db: Database, *, limit: int = DEFAULT_LIMIT, symbol: str | None = None,
                  kind: str | None = None) -> list[EventView]:
    with db.read() as journal:
        return journal.recent_events(limit, symbol=symbol, kind=kind)
