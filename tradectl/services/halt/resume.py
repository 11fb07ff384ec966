"""Resume trading after an emergency stop: a new active cycle, with who, why and when."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, replace

from tradectl.broker import Broker
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.domain.limits import Limit, limit_dollars
from tradectl.domain.loss_limit import loss_limit_reached
from tradectl.domain.money import Money, dollars
from tradectl.errors import InputError, RefusedError
from tradectl.notify import Channels
from tradectl.services.alerts import deliver_pending
from tradectl.services.gate import trading_gate


@dataclass(frozen=True)
class ResumeReport:
    cycle_id: int
    resumed: bool  # False: trading was already active, nothing changed
    previous_cycle_id: int | None
    day_pnl: Money | None
    forced: bool
    loss_baseline: Money | None = None
    alerts_sent: int = 0


def resume_trading(
    db: Database, broker: Broker | None, channel: Channels | None, reason: str, *,
    daily_loss_limit: Limit, force: bool = False, clock: Clock = SYSTEM_CLOCK,
) -> ResumeReport:
    """`daily_loss_limit`: dollars, or a percentage of the day's starting equity."""
    reason = reason.strip()
    if not reason:
        raise InputError("--reason must not be empty: say why trading may resume")
    account = broker.account() if broker is not None else None
    day_pnl = account.day_pnl if account is not None else None
    limit = limit_dollars(daily_loss_limit, account.last_equity if account else None)
    over_limit = day_pnl is not None and limit is not None and loss_limit_reached(day_pnl, limit)
    with trading_gate(db), db.transaction() as journal:
        previous = journal.latest_cycle()
        if previous is None or previous.status == "active":
            cycle = previous or journal.start_cycle()
            journal.commit()
            return ResumeReport(cycle.id, False, None, day_pnl, force)
        if over_limit and not force:
            journal.record("refused", f"resume refused: day P&L {dollars(day_pnl)} is past "
                           "DAILY_LOSS_LIMIT", cycle_id=previous.id,
                           details={"rule": "daily_loss_limit", "day_pnl": day_pnl,
                                    "limit": limit})
            journal.commit()
            raise RefusedError(
                f"today's P&L {dollars(day_pnl)} is still past DAILY_LOSS_LIMIT "
                f"{dollars(limit)}", rule="daily_loss_limit",
                hint="wait for the next trading day, or pass --force")
        cycle = journal.start_cycle()
        if over_limit and force:  # the limit counts again from here, for the rest of the day
            cycle.loss_baseline, cycle.baseline_at = day_pnl, clock.now()
        who = _who()
        journal.record(
            "cycle_resumed",
            f"trading resumed by {who}: {reason}" + (" (forced)" if force else ""),
            cycle_id=cycle.id,
            details={"by": who, "reason": reason, "forced": force,
                     "previous_cycle": previous.id, "day_pnl": day_pnl,
                     "loss_baseline": cycle.loss_baseline})
        journal.commit()
        report = ResumeReport(cycle.id, True, previous.id, day_pnl, force, cycle.loss_baseline)
    return replace(report, alerts_sent=deliver_pending(db, channel, clock=clock).sent)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"
