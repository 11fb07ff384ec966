"""SQLAlchemy 2.x models: the only place the tables are defined."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The column types and the revision live apart from the ORM (a Core read, `report`, needs them
# without the ORM's import); the tables are defined here.
from tradectl.db.columns import HEAD_REVISION as HEAD_REVISION
from tradectl.db.columns import Money as Money
from tradectl.db.columns import UTCDateTime as UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Cycle(Base):
    """A trading cycle: `active` until the emergency stop latches it `stopped`."""

    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stop_reason: Mapped[str | None] = mapped_column(Text)
    # A forced resume past the loss limit: the day P&L then, from which the limit counts again
    # for the rest of that trading day.
    loss_baseline: Mapped[Decimal | None] = mapped_column(Money())
    baseline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# Position life: pending (entry order working) -> open -> closing -> closed; or cancelled,
# rejected (Alpaca said no), failed (never reached Alpaca).
LIVE_POSITION_STATUSES = ("pending", "open", "closing")


class Position(Base):
    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(16), index=True)
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal] = mapped_column(Money())
    entry_price: Mapped[Decimal | None] = mapped_column(Money())
    stop_loss: Mapped[Decimal] = mapped_column(Money())
    take_profit: Mapped[Decimal] = mapped_column(Money())
    time_in_force: Mapped[str] = mapped_column(String(8), default="day")
    status: Mapped[str] = mapped_column(String(16), index=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    alpaca_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    alpaca_status: Mapped[str | None] = mapped_column(String(32))
    alpaca_error: Mapped[str | None] = mapped_column(Text)
    filled_qty: Mapped[Decimal | None] = mapped_column(Money())
    filled_avg_price: Mapped[Decimal | None] = mapped_column(Money())
    exit_price: Mapped[Decimal | None] = mapped_column(Money())
    realized_pl: Mapped[Decimal | None] = mapped_column(Money())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    close_reason: Mapped[str | None] = mapped_column(String(32))
    # The market order that closes the position outside its bracket (the emergency stop,
    # `close`, a gap through the stop), and when tradectl sent its own (to settle a lost answer).
    exit_order_id: Mapped[str | None] = mapped_column(String(64))
    exit_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Protection (services/protection.py): the stop and take-profit working at Alpaca for the
    # held shares, as last seen (bracket legs, a restore's OCO, or their replacements).
    stop_order_id: Mapped[str | None] = mapped_column(String(64))
    target_order_id: Mapped[str | None] = mapped_column(String(64))
    # The restore of the current gap: its client_order_id written before it is sent, the OCO's
    # id once Alpaca answered or its orders showed it, when it was sent.
    restore_client_order_id: Mapped[str | None] = mapped_column(String(64))
    restore_order_id: Mapped[str | None] = mapped_column(String(64))
    restore_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Held shares with no working stop that tradectl could not restore: since when (one alert
    # per gap) and why.
    unprotected_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    protection_error: Mapped[str | None] = mapped_column(Text)
    # Shares exited at Alpaca outside tradectl (a sale by hand, found from Alpaca's orders and
    # positions) and the realized P&L of those fills (None: a fill price was not found).
    outside_qty: Mapped[Decimal | None] = mapped_column(Money())
    outside_pl: Mapped[Decimal | None] = mapped_column(Money())


class Event(Base):
    """Append-only audit log of every decision tradectl takes."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Alert(Base):
    """Outbox of alerts, one row per alert and channel: written in the same breath as the
    decision, sent after, retried until sent (a failed send never fails the stop), each channel
    on its own. A sender claims rows until `claimed_until` and sends them with no transaction
    open; a claim that outlives its lease (the sender died) is taken again, so an alert may go
    twice but is never lost."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    kind: Mapped[str] = mapped_column(String(32))
    # the channel's name ("e-mail", "webhook"); `recipients` says who, never a secret
    channel: Mapped[str] = mapped_column(String(16), default="e-mail", server_default="e-mail",
                                         index=True)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what a webhook carries
    recipients: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # or sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DayPeak(Base):
    """The day's highest equity (Alpaca's `equity`), per New York trading day, for
    MAX_DRAWDOWN_FROM_PEAK: written only when it rises, so a restarted `watch` keeps it.
    `source`: `account` (a tick's reading) or `history` (Alpaca's portfolio history)."""

    __tablename__ = "day_peaks"

    trading_day: Mapped[date] = mapped_column(Date, primary_key=True)
    peak_equity: Mapped[Decimal] = mapped_column(Money())
    peak_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16))
