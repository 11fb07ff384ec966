"""`log`: the events audit log read back, newest first, narrowed to a symbol or a kind."""

from __future__ import annotations

from tradectl.db.session import Database
from tradectl.services.row_views import recent_events as journal_events
from tradectl.views import EventView

DEFAULT_LIMIT = 50


def recent_events(db: Database, *, limit: int = DEFAULT_LIMIT, symbol: str | None = None,
                  kind: str | None = None) -> list[EventView]:
    with db.read() as journal:
        return journal_events(journal, limit, symbol=symbol, kind=kind)
