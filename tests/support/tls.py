"""A certificate for 127.0.0.1 made by `openssl` for this test run: a local server over https
that tradectl's clients trust through SSL_CERT_FILE (the certificate is its own CA)."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalCertificate:
    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> LocalCertificate:
        cert, key = directory / "localhost.pem", directory / "localhost.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30)
        return cls(cert, key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context
