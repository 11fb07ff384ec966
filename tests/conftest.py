"""Shared fixtures: a database per backend (SQLite file, scratch Postgres database), a private
PostgreSQL server to stop and restart (tests/support/pg_cluster.py), the fake Alpaca server, an
SMTP sink, an in-process CLI runner with a clean environment, and a command's Context made of
the in-process fakes (tests/support/context.py)."""

from __future__ import annotations

import io
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from sqlalchemy import func, inspect, select

from tests.fakes.alpaca import FakeAlpaca
from tests.support.context import FakeParts
from tests.support.db import orm_session
from tests.support.pg_cluster import PrivateCluster, unusable_reason
from tests.support.tls import LocalCertificate
from tests.support.webhook import WebhookSink
from tradectl.config import DEFAULTS
from tradectl.db.models import Base
from tradectl.db.session import Database

if TYPE_CHECKING:
    import psycopg
    from aiosmtpd.smtp import SMTP, Envelope, Session

    from tradectl.cli.app import Context

PG_ADMIN_URL = os.environ.get(
    "TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                           autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The maintenance database; a missing Postgres skips locally and fails under CI."""
    try:
        _pg_connect(PG_ADMIN_URL).close()
    except Exception as err:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {err}"
        if IN_CI:
            pytest.fail(message + " (CI=true: Postgres is required)")
        pytest.skip(message)
    return PG_ADMIN_URL


@dataclass
class ScratchDatabases:
    admin_url: str

    def create(self) -> str:
        name = f"tradectl_test_{uuid.uuid4().hex[:12]}"
        with _pg_connect(self.admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with _pg_connect(self.admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def scratch_pg(postgres_admin_url: str) -> ScratchDatabases:
    return ScratchDatabases(postgres_admin_url)


@pytest.fixture(scope="session")
def _shared_pg_url(scratch_pg: ScratchDatabases) -> Iterator[str]:
    """One scratch database per test run (per xdist worker), migrated once, emptied per test."""
    url = scratch_pg.create()
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield url
    scratch_pg.drop(url)


@pytest.fixture(scope="session")
def _private_pg_cluster() -> Iterator[PrivateCluster]:
    reason = unusable_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"no private PostgreSQL cluster: {reason} (CI=true: it is required)")
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    cluster = PrivateCluster.create()
    yield cluster
    cluster.destroy()


@pytest.fixture
def private_pg(_private_pg_cluster: PrivateCluster) -> PrivateCluster:
    """A PostgreSQL server of this test run's own (one per xdist worker), running when the test
    starts: stop, restart or take it down freely. Use `create_database()` for a clean database."""
    _private_pg_cluster.ensure_running()
    return _private_pg_cluster


def _empty_pg(url: str) -> None:
    with _pg_connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tradectl.db'}"
        db = Database(url)
        db.upgrade()
        db.dispose()
        return url
    pg_url: str = request.getfixturevalue("_shared_pg_url")
    _empty_pg(pg_url)
    return pg_url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


ModelT = TypeVar("ModelT", bound=Base)


def rows(url: str, model: type[ModelT]) -> list[ModelT]:
    """Every row of a model's table, oldest first (by id), read in a fresh connection."""
    db = Database(url)
    with orm_session(db) as session:
        found = list(session.scalars(select(model).order_by(*inspect(model).primary_key)))
    db.dispose()
    return found


def count_rows(url: str, model: type[Base]) -> int:
    db = Database(url)
    with orm_session(db) as session:
        found = session.scalar(select(func.count()).select_from(model)) or 0
    db.dispose()
    return found


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tradectl.db'}"


# -- the command line, in-process ---------------------------------------------------------------


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


class Cli:
    """Runs `tradectl` through its real entry point with a controlled environment and cwd."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
        self._monkeypatch = monkeypatch
        self.cwd = cwd
        self.env: dict[str, str] = {}
        for name in DEFAULTS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(cwd / "config"))  # tradectl's own directory
        monkeypatch.chdir(cwd)

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 context: Context | None = None) -> CliResult:
        """`context`: the command's parts handed in (tests/support/context.py) instead of built
        from the settings."""
        from tradectl.cli import main

        merged = {**self.env, **(env or {})}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in merged.items():
                patch.setenv(name, value)
            out, err = io.StringIO(), io.StringIO()
            code = 0
            with redirect_stdout(out), redirect_stderr(err):
                try:
                    main(list(args), context=context)
                except SystemExit as exit_:
                    code = int(exit_.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Cli:
    runner = Cli(monkeypatch, tmp_path)
    runner.env["DATABASE_URL"] = database_url
    return runner


@pytest.fixture
def parts(cli: Cli, db: Database) -> FakeParts:
    """A Context's parts from the in-process fakes, on the database `cli` uses: run a command
    with them as `cli(..., context=parts.context())`."""
    return FakeParts.build(db, cli.cwd / "config" / "tradectl")


def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tradectl_command() -> list[str]:
    """The installed console script next to this interpreter, for subprocess tests."""
    script = Path(sys.executable).with_name("tradectl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tradectl"]


# -- the fake broker ----------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    server = FakeAlpaca().start()
    server.set_price("AAPL", "150.00")
    server.set_price("TSLA", "250.00")
    server.set_price("MSFT", "400.00")
    yield server
    server.stop()


def broker_env(fake: FakeAlpaca) -> dict[str, str]:
    return {
        "ALPACA_API_KEY": fake.api_key,
        "ALPACA_SECRET_KEY": fake.secret_key,
        "ALPACA_BASE_URL": fake.url,
        "ALPACA_DATA_URL": fake.url,
        "ALPACA_TIMEOUT": "2",
    }


@pytest.fixture
def trader(cli: Cli, fake: FakeAlpaca) -> Cli:
    """The CLI wired to the fake broker."""
    cli.env.update(broker_env(fake))
    return cli


# Live mode sends the keys over https only, and to a host besides Alpaca's only when it is
# named in ALPACA_TRUSTED_HOSTS: the live-mode tests reach the fake that way.


@pytest.fixture(scope="session")
def local_certificate(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificate:
    return LocalCertificate.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_fake(local_certificate: LocalCertificate) -> Iterator[FakeAlpaca]:
    """The fake broker over https on 127.0.0.1."""
    server = FakeAlpaca().start(tls=local_certificate.server_context())
    server.set_price("AAPL", "150.00")
    yield server
    server.stop()


def live_env(fake: FakeAlpaca, certificate: LocalCertificate) -> dict[str, str]:
    # SSL_CERT_FILE: read by httpx's default context (tradectl/net); REQUESTS_CA_BUNDLE: by requests
    return {**broker_env(fake), "TRADING_MODE": "live", "ALPACA_TRUSTED_HOSTS": "127.0.0.1",
            "SSL_CERT_FILE": str(certificate.cert), "REQUESTS_CA_BUNDLE": str(certificate.cert)}


@pytest.fixture
def live_trader(cli: Cli, tls_fake: FakeAlpaca, local_certificate: LocalCertificate) -> Cli:
    """The CLI in live mode, wired to the fake broker over https."""
    cli.env.update(live_env(tls_fake, local_certificate))
    return cli


# -- a local SMTP server ------------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd on 127.0.0.1, keeping every message it receives."""

    def __init__(self) -> None:
        import socket

        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        from email import message_from_bytes, policy

        assert isinstance(envelope.content, bytes)  # aiosmtpd's default: decode_data=False
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def env(self) -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_STARTTLS": "false",
                "ALERT_EMAIL_FROM": "tradectl@example.test",
                "ALERT_EMAIL_TO": "trader@example.test", "SMTP_TIMEOUT": "3"}


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


# -- a local webhook receiver -------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    yield sink
    sink.stop()
