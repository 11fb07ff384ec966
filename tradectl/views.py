"""The typed values services hand to `render`: what a screen or a --json object shows.

Frozen and plain (no ORM, no I/O). A Decimal field says what kind of number it is through its
annotation (`Price`, `Money`, `Quantity`), so the one JSON writer (render/json.py) formats each
the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from tradectl.domain.money import Money, Price, Quantity


@dataclass(frozen=True)
class PositionView:
    """A tracked position as the database holds it; `last_price` / `unrealized_pl` are the
    broker's mark when the view was made with one."""

    id: int
    cycle_id: int
    symbol: str
    side: str
    qty: Quantity
    entry_price: Price | None
    stop_loss: Price
    take_profit: Price
    time_in_force: str
    status: str
    client_order_id: str
    alpaca_order_id: str | None
    alpaca_status: str | None
    alpaca_error: str | None
    filled_qty: Quantity | None
    filled_avg_price: Price | None
    exit_price: Price | None
    realized_pl: Money | None
    created_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    last_price: Price | None = None
    unrealized_pl: Money | None = None
    # What protects the held shares at Alpaca (services/protection.py). `protection` is
    # protected | unprotected | closing, or None: no shares held, or not known (no orders read);
    # `protected` is its yes/no. The working prices and ids are Alpaca's, not what was asked.
    protection: str | None = None
    protected: bool | None = None
    working_stop: Price | None = None
    working_target: Price | None = None
    stop_order_id: str | None = None
    target_order_id: str | None = None
    unprotected_since: datetime | None = None
    protection_error: str | None = None
    restore_client_order_id: str | None = None  # the restore of the current gap (an OCO)
    restore_order_id: str | None = None
    restore_sent_at: datetime | None = None
    exit_order_id: str | None = None  # a close at market outside the exits (halt, close, gap)
    exit_sent_at: datetime | None = None
    outside_qty: Quantity | None = None  # shares exited at Alpaca outside tradectl
    outside_pl: Money | None = None  # their realized P&L, from Alpaca's fills

    @property
    def is_live(self) -> bool:
        return self.status in ("pending", "open", "closing")

    @property
    def unprotected(self) -> bool:
        return self.protection == "unprotected"

    @property
    def local_only(self) -> bool:
        """Recorded without a broker: no order was ever sent for it."""
        return self.alpaca_status == "alpaca_disabled"

    @property
    def note(self) -> str | None:
        """What a screen must say beside the row: a failure Alpaca reported, or that no broker
        was ever involved."""
        if self.local_only:
            return "local only: never sent to a broker"
        if not self.is_live:
            return None
        if self.unprotected:
            why = self.protection_error or "no stop order working at Alpaca"
            return f"UNPROTECTED: {why}" + (f"; {self.alpaca_error}" if self.alpaca_error else "")
        return self.alpaca_error


_VIEW_FIELDS = frozenset(PositionView.__dataclass_fields__)


def overlaid(view: PositionView, fields: dict[str, Any]) -> PositionView:
    """`dataclasses.replace(view, **fields)` without running __init__ over all its fields again:
    `watch` adds the protection to every position every tick, and replace cost a fifth of a
    1,000-position tick. Only PositionView's own fields are accepted."""
    unknown = fields.keys() - _VIEW_FIELDS
    if unknown:
        raise TypeError(f"not PositionView fields: {sorted(unknown)}")
    copy = object.__new__(PositionView)
    copy.__dict__.update(view.__dict__)
    copy.__dict__.update(fields)
    return copy


class HeldPosition(Protocol):
    """What a view of a broker's position reads (broker.BrokerPosition has it): views import no
    adapter."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def avg_entry_price(self) -> Decimal | None: ...
    @property
    def current_price(self) -> Decimal | None: ...
    @property
    def unrealized_pl(self) -> Decimal | None: ...


@dataclass(frozen=True)
class ExternalPositionView:
    """Shares the broker holds beyond what tradectl tracks (opened or bought elsewhere): a whole
    position in a symbol tradectl has no live row in, or the part of one beyond its rows
    (`tracked_qty`: the shares of the symbol tradectl's rows account for). `avg_entry_price` and
    `unrealized_pl` are of this part."""

    symbol: str
    side: str  # long | short
    qty: Quantity
    avg_entry_price: Price | None
    last_price: Price | None
    unrealized_pl: Money | None
    tracked_qty: Quantity = Decimal(0)

    @classmethod
    def of(cls, held: HeldPosition) -> ExternalPositionView:
        return cls(held.symbol, held.side, held.qty, held.avg_entry_price, held.current_price,
                   held.unrealized_pl)


@dataclass(frozen=True)
class CycleView:
    id: int
    status: str  # active | stopped
    started_at: datetime
    stopped_at: datetime | None
    stop_reason: str | None
    loss_baseline: Money | None = None  # set by a forced resume past the loss limit
    baseline_at: datetime | None = None


@dataclass(frozen=True)
class EventView:
    id: int
    created_at: datetime
    kind: str
    symbol: str | None
    message: str
    cycle_id: int | None
    position_id: int | None
    details: dict[str, Any] | None


@dataclass(frozen=True)
class AlertView:
    """An alert still waiting in the outbox, for one channel."""

    id: int
    created_at: datetime
    subject: str
    status: str
    attempts: int
    last_error: str | None
    channel: str = "e-mail"
