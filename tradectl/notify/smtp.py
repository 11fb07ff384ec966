"""E-mail alerts over SMTP: one connection for a batch, every step bounded by SMTP_TIMEOUT.

TLS is verified: STARTTLS (SMTP_STARTTLS, the default) or implicit TLS (SMTP_SSL, port 465)
checks the relay's certificate and host name against the system's CA store, or against
SMTP_CA_FILE when set. A relay that fails the check is a delivery failure like a refused one
(the outbox tries again), and it never sees the password. A login without TLS is refused unless
SMTP_ALLOW_PLAINTEXT=true. No error text carries the password.
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING

from tradectl.notify import Notice

if TYPE_CHECKING:
    from tradectl.config import Settings

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
    ssl: bool = False  # implicit TLS (SMTP_SSL)
    ca_file: str | None = None
    allow_plaintext: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.recipients)

    @property
    def tls(self) -> str | None:
        """"implicit TLS", "STARTTLS", or None when the connection is in clear."""
        return "implicit TLS" if self.ssl else "STARTTLS" if self.starttls else None

    @property
    def plaintext_login_refused(self) -> bool:
        return bool(self.username and self.password and self.tls is None
                    and not self.allow_plaintext)

    def describe(self) -> tuple[str, bool]:
        """How mail goes, as `check-alpaca` shows it, and whether that is safe (verified TLS,
        or no login to expose)."""
        trust = f"SMTP_CA_FILE {self.ca_file}" if self.ca_file else "the system CA store"
        if self.tls:
            return f"{self.tls}, certificate verified against {trust}", True
        if self.plaintext_login_refused:
            return ("no TLS: the login is refused and no mail is sent (set SMTP_STARTTLS=true "
                    "or SMTP_SSL=true; SMTP_ALLOW_PLAINTEXT=true to allow it)"), False
        if self.username and self.password:
            return "no TLS: the password and each alert go in clear (SMTP_ALLOW_PLAINTEXT)", False
        return "no TLS, no login: each alert goes in clear", True


def smtp_settings(config: Settings) -> SmtpSettings:
    return SmtpSettings(
        host=config.smtp_host, port=config.smtp_port, username=config.smtp_username,
        password=config.smtp_password, starttls=config.smtp_starttls,
        timeout=config.smtp_timeout, sender=config.alert_email_from,
        recipients=config.alert_email_to, ssl=config.smtp_ssl, ca_file=config.smtp_ca_file,
        allow_plaintext=config.smtp_allow_plaintext)


class PlaintextLoginRefused(Exception):
    pass


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
        except PlaintextLoginRefused as err:
            for notice in notices:
                results[notice.key] = str(err)
        except (smtplib.SMTPException, OSError, ValueError) as err:  # refused, timeout, bad value
            error = self._scrub(_explain(err))
            for notice in notices:
                results.setdefault(notice.key, error)
        return results

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        assert s.host
        if s.plaintext_login_refused:  # refused before any byte is sent
            raise PlaintextLoginRefused(
                "login refused without TLS: set SMTP_STARTTLS=true or SMTP_SSL=true (or "
                "SMTP_ALLOW_PLAINTEXT=true to send the password in clear)")
        context = ssl.create_default_context(cafile=s.ca_file) if s.tls else None
        client: smtplib.SMTP
        if s.ssl:
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.starttls and not s.ssl:
                client.starttls(context=context)
            if s.username and s.password:
                client.login(s.username, s.password)
        except BaseException:
            client.close()
            raise
        return client

    def _scrub(self, text: str) -> str:
        """A relay may echo what it was sent: the password, plain or in AUTH's base64."""
        s = self._settings
        if not s.password:
            return text
        forms = {s.password, _b64(s.password), _b64(f"{s.username}"), _b64(
            f"\0{s.username}\0{s.password}")}
        pattern = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True) if f)
        return re.sub(pattern, "…", text, flags=re.IGNORECASE)

    def _message(self, notice: Notice) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = self._settings.sender or f"tradectl@{socket.getfqdn()}"
        message["To"] = self.recipients
        message["Message-ID"] = make_msgid(idstring=f"tradectl-alert-{notice.key}")
        message.set_content(notice.body)
        return message


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _explain(err: BaseException) -> str:
    if isinstance(err, ssl.SSLCertVerificationError):
        return (f"TLS failed: the relay's certificate is not trusted ({err.verify_message}); "
                "set SMTP_CA_FILE to the CA that signed it")
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason or type(err).__name__})"
    if isinstance(err, FileNotFoundError) and err.filename is None:
        return "SMTP_CA_FILE cannot be read"
    return f"{type(err).__name__}: {err}".strip()
