"""Alerts through an outbox: queued in the same transaction as the decision they report, sent
after with no transaction open, retried by the next watch tick, halt or resume until sent.

A sender claims the pending rows (one short transaction), sends them (no transaction), then
records each result (another short one). A crash between sending and recording may send a mail
twice once the claim's lease runs out; a mail is never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from tradectl.db.journal import Journal
from tradectl.db.models import utcnow
from tradectl.db.session import Database
from tradectl.notify import Channel, Notice

# Added to a channel's own worst case when claiming: a claim must outlive the send it covers.
LEASE_MARGIN = timedelta(seconds=30)
NOT_CONFIGURED = "not configured (set SMTP_HOST and ALERT_EMAIL_TO)"


@dataclass(frozen=True)
class Delivery:
    sent: int
    pending: int
    last_error: str | None


def queue_alert(journal: Journal, channel: Channel | None, kind: str, subject: str, body: str,
                cycle_id: int | None = None) -> bool:
    """Write the alert to the outbox; without a channel it is logged as skipped. True if queued."""
    if channel is None:
        journal.record("alert_skipped",
                       f"alert not sent, SMTP_HOST / ALERT_EMAIL_TO not set: {subject}",
                       cycle_id=cycle_id)
        return False
    journal.queue_alert(kind, subject, body, channel.recipients, cycle_id)
    return True


def deliver_pending(db: Database, channel: Channel | None) -> Delivery:
    """Send every queued alert nobody else is sending, oldest first. Never raises for channel
    faults: they are recorded on the alert, which stays pending."""
    if channel is None:
        return Delivery(0, 0, None)
    with db.transaction() as journal:
        count = len(journal.pending_alerts())
        if not count:
            return Delivery(0, 0, None)
        lease = timedelta(seconds=channel.send_budget(count)) + LEASE_MARGIN
        claimed = [Notice(a.id, a.subject, a.body) for a in journal.claim_alerts(utcnow(), lease)]
        journal.commit()
    if not claimed:
        return Delivery(0, count, None)  # another process is sending them
    results = channel.send(claimed)
    return record_delivery(db, claimed, results)


def record_delivery(db: Database, notices: Sequence[Notice],
                    results: dict[int, str | None]) -> Delivery:
    sent = [n.key for n in notices if results.get(n.key) is None]
    failed = [n.key for n in notices if results.get(n.key) is not None]
    error = next((results[key] for key in failed), None)
    with db.transaction() as journal:
        journal.alerts_sent(sent, utcnow())
        if error is not None:
            journal.alerts_not_sent(failed, error)
            journal.record("alert_failed", f"{len(failed)} alert(s) still queued: {error}")
        journal.commit()
    return Delivery(len(sent), len(failed), error)


def delivery_summary(delivery: Delivery) -> str:
    """How a just-queued alert fared, for a command's report."""
    if delivery.last_error is None:
        return "sent"
    return f"queued, not sent ({delivery.last_error}); retried by watch, halt or resume"
