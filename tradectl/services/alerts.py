"""E-mail alerts through an outbox: queue in the database, then send over SMTP; what fails to
send stays queued and is retried by the next watch tick, halt or resume."""

from __future__ import annotations

import smtplib
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradectl.db.models import Alert, utcnow
from tradectl.db.session import Database
from tradectl.services.journal import record_event


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int
    username: str | None
    password: str | None = field(repr=False)
    starttls: bool
    timeout: float
    sender: str | None
    recipients: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.recipients)


@dataclass(frozen=True)
class Delivery:
    sent: int
    pending: int
    last_error: str | None


def queue_alert(
    session: Session, smtp: SmtpSettings, kind: str, subject: str, body: str,
    cycle_id: int | None = None,
) -> Alert | None:
    """Write the alert to the outbox (None when alerts are not configured: logged instead)."""
    if not smtp.enabled:
        record_event(session, "alert_skipped",
                     f"alert not sent, SMTP_HOST / ALERT_EMAIL_TO not set: {subject}",
                     cycle_id=cycle_id)
        return None
    alert = Alert(kind=kind, subject=subject, body=body, cycle_id=cycle_id,
                  recipients=", ".join(smtp.recipients), status="pending", attempts=0)
    session.add(alert)
    return alert


def deliver_pending(db: Database, smtp: SmtpSettings) -> Delivery:
    """Send every queued alert, oldest first, over one SMTP connection. Never raises for SMTP
    or network faults: they are recorded on the alert and it stays pending."""
    if not smtp.enabled:
        return Delivery(0, 0, None)
    with db.transaction() as session:
        pending = list(session.scalars(
            select(Alert).where(Alert.status == "pending").order_by(Alert.id)))
        if not pending:
            return Delivery(0, 0, None)
        sent, error = 0, None
        for alert in pending:  # each delivery run is one attempt for everything queued
            alert.attempts += 1
        try:
            with _connect(smtp) as client:
                for alert in pending:
                    client.send_message(_message(alert, smtp))
                    alert.status, alert.sent_at, alert.last_error = "sent", utcnow(), None
                    sent += 1
        except (smtplib.SMTPException, OSError, ValueError) as err:  # refused, timeout, bad value
            error = f"{type(err).__name__}: {err}".strip()
            for alert in pending:
                if alert.status == "pending":
                    alert.last_error = error
            record_event(session, "alert_failed",
                         f"{len(pending) - sent} alert(s) still queued: {error}")
        return Delivery(sent, len(pending) - sent, error)


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    assert smtp.host
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        if smtp.starttls:
            client.starttls()
        if smtp.username and smtp.password:
            client.login(smtp.username, smtp.password)
    except BaseException:
        client.close()
        raise
    return client


def _message(alert: Alert, smtp: SmtpSettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = smtp.sender or f"tradectl@{socket.getfqdn()}"
    message["To"] = alert.recipients
    message["Message-ID"] = make_msgid(idstring=f"tradectl-alert-{alert.id}")
    message.set_content(alert.body)
    return message
