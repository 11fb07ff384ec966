"""The report's read (db/report_rows.py, through services.report) on SQLite and Postgres: which
positions it takes, in what order, and each trade's initial stop; its Core tables in step with the
models; the report imports no ORM."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from tradectl.db import report_rows
from tradectl.db.models import Base, Cycle, Event, Position
from tradectl.db.session import Database
from tradectl.services.report.report import trading_report

OPENED = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York


def position(pid: int, *, status: str = "closed", closed_after: timedelta | None = None,
             stop: str = "99", filled_qty: str | None = "10") -> dict[str, Any]:
    closed = OPENED + closed_after if closed_after is not None else None
    return {"id": pid, "cycle_id": 1, "symbol": "AAPL", "side": "buy", "qty": Decimal(12),
            "stop_loss": Decimal(stop), "take_profit": Decimal(110), "status": status,
            "client_order_id": f"tradectl-{pid}", "created_at": OPENED,
            "filled_qty": None if filled_qty is None else Decimal(filled_qty),
            "filled_avg_price": Decimal(100), "exit_price": Decimal(104) if closed else None,
            "realized_pl": Decimal(40) if closed else None, "closed_at": closed,
            "close_reason": "take_profit" if closed else None}


def created(pid: int, details: dict[str, Any] | None) -> dict[str, Any]:
    return {"created_at": OPENED, "cycle_id": 1, "position_id": pid, "kind": "position_created",
            "message": f"position #{pid} created", "details": details}


def test_closed_trades_in_closing_order_each_with_the_stop_it_opened_with(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(insert(Cycle), [{"id": 1, "status": "active", "started_at": OPENED}])
        connection.execute(insert(Position), [
            position(1, closed_after=timedelta(hours=3)),  # its stop was moved from 95 to 99
            position(2, closed_after=timedelta(hours=1), filled_qty=None),  # no event: stop_loss
            position(3, closed_after=timedelta(hours=2)),  # two events: the first one's stop
            position(4, status="open"),
            position(5, closed_after=timedelta(days=3)),  # after --until
            position(6, closed_after=timedelta(hours=4)),  # a stop written as a number
        ])
        connection.execute(insert(Event), [
            created(1, {"stop": "95", "qty": "10"}), created(3, {"stop": "96.5"}),
            created(3, {"stop": "90"}), created(4, {"stop": "97"}), created(5, {"stop": "98"}),
            created(6, {"stop": 94}),
            {**created(1, {"stop": "1"}), "kind": "position_synced"},
        ])

    report = trading_report(db, since=date(2026, 11, 2), until=date(2026, 11, 3),
                            now=OPENED + timedelta(days=5))

    trades = [row.trade for row in report.trades]
    assert [(t.position_id, t.initial_stop, t.qty) for t in trades] == [
        (2, Decimal(99), Decimal(12)), (3, Decimal("96.5"), Decimal(10)),
        (1, Decimal(95), Decimal(10)), (6, Decimal(94), Decimal(10))]
    assert [row.r_multiple for row in report.trades] == [
        Decimal("3.33"), Decimal("1.14"), Decimal("0.80"), Decimal("0.67")]


def test_no_closed_trades(db: Database) -> None:
    report = trading_report(db, since=None, until=None, now=OPENED)
    assert report.trades == () and report.days == ()


def test_the_report_names_the_models_columns_with_their_types() -> None:
    for light in (report_rows.positions, report_rows.events, report_rows.cycles):
        model = Base.metadata.tables[light.name]
        for column in light.columns:
            assert type(column.type) is type(model.columns[column.name].type), column


def test_the_report_path_imports_no_orm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orm.db'}"
    Database(url).upgrade()
    code = ("import sys; from datetime import UTC, datetime\n"
            "from tradectl.db.session import Database\n"
            "from tradectl.services.report.report import trading_report\n"
            f"trading_report(Database({url!r}), since=None, until=None, now=datetime.now(UTC))\n"
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.orm')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
