"""E-mail alerts over SMTP: one connection for a batch, STARTTLS and login when configured, every
step bounded by SMTP_TIMEOUT."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

from tradectl.notify import Notice

# connect, EHLO, STARTTLS, login: the exchanges before the first message
_SETUP_STEPS = 4


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


class SmtpChannel:
    name = "e-mail"

    def __init__(self, settings: SmtpSettings) -> None:
        assert settings.enabled
        self._settings = settings

    @property
    def recipients(self) -> str:
        return ", ".join(self._settings.recipients)

    def send_budget(self, count: int) -> float:
        return self._settings.timeout * (_SETUP_STEPS + count)

    def send(self, notices: Sequence[Notice]) -> dict[int, str | None]:
        results: dict[int, str | None] = {}
        try:
            with self._connect() as client:
                for notice in notices:
                    client.send_message(self._message(notice))
                    results[notice.key] = None
        except (smtplib.SMTPException, OSError, ValueError) as err:  # refused, timeout, bad value
            error = f"{type(err).__name__}: {err}".strip()
            for notice in notices:
                results.setdefault(notice.key, error)
        return results

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        assert s.host
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.starttls:
                client.starttls()
            if s.username and s.password:
                client.login(s.username, s.password)
        except BaseException:
            client.close()
            raise
        return client

    def _message(self, notice: Notice) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = self._settings.sender or f"tradectl@{socket.getfqdn()}"
        message["To"] = self.recipients
        message["Message-ID"] = make_msgid(idstring=f"tradectl-alert-{notice.key}")
        message.set_content(notice.body)
        return message
