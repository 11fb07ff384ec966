"""The column types tradectl stores money and times with, and the schema's revision: apart from
the ORM's models, so that a read through SQLAlchemy Core (`report`'s, db/report_rows.py) runs
without importing the ORM (a quarter of such a command's start)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import DateTime, Numeric, String, TypeDecorator
from sqlalchemy.engine import Dialect

# Head of the migration chain. Start-up compares it with the stored revision without importing
# Alembic; tests/db/test_db.py checks it against alembic/versions.
HEAD_REVISION = "0009"


class Money(TypeDecorator[Decimal]):
    """Exact decimals: NUMERIC(20, 6) where the database has it. SQLite's NUMERIC is a binary
    float, so there the value is kept as its decimal text and read back exactly."""

    impl = Numeric(20, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(20, 6, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"money must be a finite Decimal, got {value!r}")
        return format(value, "f") if dialect.name == "sqlite" else value

    # SQLAlchemy passes the dialect; a stored amount reads back the same from every backend.
    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:  # noqa: ARG002
        return None if value is None else _stored_money(str(value))


@lru_cache(maxsize=1 << 14)  # a book repeats its prices: `watch` reads every row every tick
def _stored_money(text: str) -> Decimal:
    # Keyed by text, not by Decimal: -0 == 0, and the sign must come back as it went in.
    # Drop the trailing zeros NUMERIC(20, 6) pads with, so 145 reads back as 145.
    exact = Decimal(text)
    return exact.quantize(Decimal(1)) if exact == exact.to_integral() else exact.normalize()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whether the database keeps a zone (Postgres) or not."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise TypeError("naive datetime: tradectl stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    # SQLAlchemy passes the dialect; a zone-less value is UTC whichever backend dropped the zone.
    def process_result_value(
        self, value: datetime | None, dialect: Dialect  # noqa: ARG002
    ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

