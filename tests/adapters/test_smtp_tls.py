"""SMTP TLS is verified (issue 24): a relay with a self-signed certificate, over STARTTLS and over
implicit TLS, never receives the password and the alert is not delivered; with SMTP_CA_FILE
naming that certificate it is. A wrong host name fails the same way. A login without TLS is
refused before connecting unless SMTP_ALLOW_PLAINTEXT=true. The password is in no error text.
Certificates are made with the openssl command line (`cryptography` is not a dependency)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tradectl.notify import Notice
from tradectl.notify.smtp import SmtpChannel, SmtpSettings

PASSWORD = "Sm7p-Pa55word-never-sent"
NOTICE = Notice(1, "EMERGENCY STOP - trading halted", "body")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def certificate(folder: Path, name: str, san: str) -> tuple[Path, Path]:
    """A self-signed certificate for `san` (e.g. "IP:127.0.0.1") and its key."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class TlsRelay:
    """aiosmtpd with a certificate: STARTTLS (required before AUTH) or implicit TLS. Keeps the
    passwords it was given and the messages it received."""

    def __init__(self, cert: Path, key: Path, *, implicit: bool) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.passwords: list[bytes] = []
        self.messages: list[EmailMessage] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

        def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str,
                         data: Any) -> AuthResult:
            self.passwords.append(data.password)
            return AuthResult(success=True)

        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls: an implicit-TLS relay is
        # encrypted from the first byte, so AUTH is offered there without it.
        tls: dict[str, Any] = {"ssl_context": context, "auth_require_tls": False} if implicit else {
            "tls_context": context, "require_starttls": True, "auth_require_tls": True}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                      authenticator=authenticate, **tls)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def __enter__(self) -> TlsRelay:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("certs")
    return {"right": certificate(folder, "relay", "IP:127.0.0.1"),
            "wrong_host": certificate(folder, "other", "DNS:other.test")}


@pytest.fixture(params=["starttls", "implicit"])
def relay(request: pytest.FixtureRequest, certs: dict[str, tuple[Path, Path]],
          ) -> Iterator[TlsRelay]:
    with TlsRelay(*certs["right"], implicit=request.param == "implicit") as server:
        yield server


def settings(relay: TlsRelay, **changes: Any) -> SmtpSettings:
    implicit = relay._controller.ssl_context is not None
    base = SmtpSettings(host="127.0.0.1", port=relay.port, username="trader",
                        password=PASSWORD, starttls=not implicit, timeout=5,
                        sender="tradectl@example.test", recipients=("trader@example.test",),
                        ssl=implicit)
    return replace(base, **changes)


def test_a_self_signed_relay_gets_neither_the_password_nor_the_alert(relay: TlsRelay) -> None:
    results = SmtpChannel(settings(relay)).send([NOTICE])
    assert results[1] is not None and results[1].startswith("TLS failed: the relay's "
                                                            "certificate is not trusted")
    assert "SMTP_CA_FILE" in results[1] and PASSWORD not in results[1]
    assert relay.passwords == [] and relay.messages == []


def test_with_smtp_ca_file_naming_its_certificate_the_alert_is_delivered(
    relay: TlsRelay, certs: dict[str, tuple[Path, Path]],
) -> None:
    results = SmtpChannel(settings(relay, ca_file=str(certs["right"][0]))).send([NOTICE])
    assert results == {1: None}
    assert relay.passwords == [PASSWORD.encode()]
    assert [m["Subject"] for m in relay.messages] == [NOTICE.subject]


def test_a_trusted_certificate_for_another_host_name_is_refused(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    with TlsRelay(*certs["wrong_host"], implicit=False) as relay:
        trusted = settings(relay, ca_file=str(certs["wrong_host"][0]))
        results = SmtpChannel(trusted).send([NOTICE])
        assert results[1] is not None and "TLS failed" in results[1]
        assert relay.passwords == [] and relay.messages == []


def test_a_login_without_tls_is_refused_before_connecting_unless_allowed(
    relay: TlsRelay,
) -> None:
    clear = settings(relay, starttls=False, ssl=False)
    results = SmtpChannel(clear).send([NOTICE])
    assert results[1] is not None and results[1].startswith("login refused without TLS")
    assert clear.describe()[1] is False
    assert "SMTP_ALLOW_PLAINTEXT" in SmtpChannel(clear).send([NOTICE])[1]  # type: ignore[operator]
    # allowed: it is tried (and this relay, which wants TLS first, refuses the login)
    allowed = SmtpChannel(replace(clear, allow_plaintext=True)).send([NOTICE])
    assert allowed[1] is not None and not allowed[1].startswith("login refused without TLS")
    assert PASSWORD not in allowed[1] and relay.passwords == []


@pytest.mark.postgres
def test_alert_test_reports_the_untrusted_relay_with_exit_4(
    cli: Cli, certs: dict[str, tuple[Path, Path]],
) -> None:
    with TlsRelay(*certs["right"], implicit=False) as relay:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(relay.port),
               "SMTP_USERNAME": "trader", "SMTP_PASSWORD": PASSWORD, "SMTP_TIMEOUT": "5",
               "ALERT_EMAIL_FROM": "tradectl@example.test", "ALERT_EMAIL_TO": "t@example.test"}
        refused = cli("alert", "test", env=env)
        check = cli("check-alpaca", "--json", env=env)
        trusted = cli("alert", "test", env={**env, "SMTP_CA_FILE": str(certs["right"][0])})
    assert refused.code == 4 and "certificate is not trusted" in refused.stdout + refused.stderr
    assert PASSWORD not in refused.stdout + refused.stderr + check.stdout + check.stderr
    assert "STARTTLS, certificate verified against the system CA store" in check.stdout
    assert trusted.code == 0 and relay.passwords == [PASSWORD.encode()]


def test_a_relay_echoing_the_credentials_has_them_scrubbed() -> None:
    import base64

    channel = SmtpChannel(SmtpSettings(host="relay.test", port=587, username="trader",
                                       password=PASSWORD, starttls=True, timeout=5,
                                       sender=None, recipients=("t@example.test",)))
    plain = base64.b64encode(f"\0trader\0{PASSWORD}".encode()).decode()
    echoed = f"535 5.7.8 bad credentials {plain} ({PASSWORD.upper()})"
    scrubbed = channel._scrub(echoed)
    assert plain not in scrubbed and PASSWORD.lower() not in scrubbed.lower()
    assert scrubbed.startswith("535 5.7.8 bad credentials")


@pytest.mark.parametrize(("environ", "state", "shown"), [
    ({"ALERT_WEBHOOK_URL": "http://10.0.0.5/services/T000/tok-secret"}, "warn",
     "webhook http://10.0.0.5/… (http: its token and each alert go in clear)"),
    ({"ALERT_WEBHOOK_URL": "http://127.0.0.1:8080/services/T000/tok-secret"}, "pass",
     "webhook http://127.0.0.1:8080/…"),
    ({"SMTP_HOST": "smtp.test", "ALERT_EMAIL_TO": "t@example.test", "SMTP_USERNAME": "u",
      "SMTP_PASSWORD": PASSWORD, "SMTP_STARTTLS": "false"}, "warn",
     "no TLS: the login is refused and no mail is sent"),
    ({"SMTP_HOST": "smtp.test", "SMTP_PORT": "465", "ALERT_EMAIL_TO": "t@example.test",
      "SMTP_SSL": "true", "SMTP_CA_FILE": "/etc/relay-ca.pem"}, "pass",
     "(implicit TLS, certificate verified against SMTP_CA_FILE /etc/relay-ca.pem)"),
])
def test_check_alpaca_shows_how_alerts_travel(environ: dict[str, str], state: str, shown: str,
                                              tmp_path: Path) -> None:
    from tradectl.config import load_settings
    from tradectl.services.check.check_alpaca import _alerts_check

    check = _alerts_check(load_settings(environ, app_dir=tmp_path))
    assert check.state == state and shown in check.detail, check
    assert "tok-secret" not in str(check) and PASSWORD not in str(check)
