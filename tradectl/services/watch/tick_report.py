"""What one `watch` tick found and did (`TickReport`), and the broker's state it read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradectl.broker import Account, BrokerPosition, Clock, Order
from tradectl.domain.day_rules import RuleVerdict
from tradectl.domain.loss_limit import loss_since_baseline
from tradectl.errors import ExitCode
from tradectl.services.halt.emergency_stop import HaltReport
from tradectl.views import EventView, ExternalPositionView, PositionView


@dataclass(frozen=True)
class TickReport:
    at: datetime
    cycle_id: int | None
    cycle_status: str  # active | stopped | none | unknown (the database could not be read)
    stop_reason: str | None
    account: Account | None = None
    positions: tuple[PositionView, ...] = ()
    external: tuple[ExternalPositionView, ...] = ()
    changes: tuple[str, ...] = ()
    events: tuple[EventView, ...] = ()
    warning: str | None = None
    error: str | None = None
    rate_limited: bool = False
    database_failed: bool = False
    drives_stops: bool = True
    standing_by: bool = False  # another `watch` drives: this one takes over when it is gone
    driver: str | None = None  # who drives, when standing by and known ("pid 4242 on host-a")
    loss_baseline: Decimal | None = None  # the forced resume's day P&L, while it applies
    stop: HaltReport | None = None
    alerts_sent: int = 0
    unprotected: tuple[str, ...] = ()  # "AAPL #3": held shares with no working stop at Alpaca
    protection_error: str | None = None  # a restore or a gap's close Alpaca refused this tick
    rules: tuple[RuleVerdict, ...] = ()  # the day rules set, as judged this tick

    @property
    def role(self) -> str:
        """`driver`, `standby` (another drives; this one takes over), or `read_only`."""
        return "driver" if self.drives_stops else "standby" if self.standing_by else "read_only"

    @property
    def day_pnl(self) -> Decimal | None:
        return self.account.day_pnl if self.account is not None else None

    @property
    def loss_pnl(self) -> Decimal | None:
        """What the loss limit judges: the day's P&L, since the forced resume if there was one."""
        pnl = self.day_pnl
        return None if pnl is None else loss_since_baseline(pnl, self.loss_baseline)

    @property
    def exit_code(self) -> ExitCode:
        """For `watch --once`: what went wrong in this tick, if anything."""
        if self.stop is not None and self.stop.exit_code:
            return self.stop.exit_code
        if self.database_failed:
            return ExitCode.DATABASE
        return ExitCode.BROKER if self.error or self.protection_error else ExitCode.OK


@dataclass(frozen=True)
class BrokerState:
    account: Account
    positions: list[BrokerPosition]
    orders: list[Order]
    market_clock: Clock | None = None  # Alpaca's clock, read only for the rules judged on it
