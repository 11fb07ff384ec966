"""The column types tradectl stores money and times with, apart from the ORM's models. They read
a stored value as db/plain.py does (`report` reads through the driver alone), and re-export the
schema's head revision, defined there."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String, TypeDecorator
from sqlalchemy.engine import Dialect

from tradectl.db.plain import HEAD_REVISION as HEAD_REVISION
from tradectl.db.plain import stored_money


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
        return None if value is None else stored_money(str(value))


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

