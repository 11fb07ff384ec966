"""What the emergency stop could not write to the database, kept in a local file until it can be.

The stop never waits for the database: when the latch or the record cannot be written, the stop
still flattens the account at the broker and leaves a spool file here (one per stop). The next
`watch` tick or `halt` that reaches the database records it and removes the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class OfflineStop:
    """An emergency stop that ran without the database."""

    stopped_at: datetime
    reason: str
    close_orders: dict[str, str]  # symbol -> the close order Alpaca accepted
    database_error: str  # why it could not be recorded


class StopSpool:
    """A directory of spooled stops, one per database (named by a hash of its URL)."""

    def __init__(self, root: Path, database_url: str) -> None:
        digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        self.directory = root / "spool" / digest

    def save(self, stop: OfflineStop) -> str | None:
        """Write the stop; returns None, or why it could not be written (a full or read-only
        disk): the stop itself never fails for it."""
        document = {"stopped_at": stop.stopped_at.isoformat(), "reason": stop.reason,
                    "close_orders": stop.close_orders, "database_error": stop.database_error}
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.directory / f"stop-{stop.stopped_at:%Y%m%dT%H%M%S%f}.json"
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(document))
            os.replace(partial, path)  # a reader never sees half a file
        except OSError as err:
            return f"{type(err).__name__}: {err}"
        return None

    def pending(self) -> Iterator[tuple[Path, OfflineStop]]:
        """Spooled stops, oldest first; a file that cannot be read is skipped (and kept)."""
        try:
            paths = sorted(self.directory.glob("stop-*.json"))
        except OSError:
            return
        for path in paths:
            try:
                raw = json.loads(path.read_text())
                stop = OfflineStop(datetime.fromisoformat(raw["stopped_at"]), str(raw["reason"]),
                                   {str(k): str(v) for k, v in raw["close_orders"].items()},
                                   str(raw["database_error"]))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            yield path, stop

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)
