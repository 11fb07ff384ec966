"""The named locks behind "one driver" and the trading gate: held by one process at a time, still
ours only while the server or the file system says so, taken back after a loss when free, and
let go of without ever raising. On a SQLite file and on a PostgreSQL server of the test's own."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from tests.support.disk import read_only_dir
from tests.support.network import SilentServer, TcpProxy
from tests.support.pg_cluster import PrivateCluster, StopMode
from tradectl.db import advisory_lock
from tradectl.db.advisory_lock import AdvisoryLock
from tradectl.db.session import Database
from tradectl.errors import DatabaseError

NAME = "watch-driver"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Backend:
    url: str
    lose_lock: Callable[[], None]  # frees the lock behind its holder's back


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        lock_file = tmp_path / f"tradectl.db.{NAME}.lock"
        return Backend(f"sqlite:///{tmp_path / 'tradectl.db'}", lock_file.unlink)  # deleted
    cluster: PrivateCluster = request.getfixturevalue("private_pg")
    return Backend(cluster.create_database(), cluster.restart)  # a session lock dies with it


@pytest.fixture
def db(backend: Backend) -> Iterator[Database]:
    database = Database(backend.url)
    yield database
    database.dispose()


class OtherProcess:
    """tests/support/lock_holder.py in a subprocess: takes the lock, answers verify/reacquire."""

    def __init__(self, url: str, wait: float = 10) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.lock_holder", url, NAME, str(wait)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.state = self.process.stdout.readline().strip()

    def ask(self, command: str) -> bool:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip() == "True"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def leave(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(10)


@pytest.fixture
def others() -> Iterator[list[OtherProcess]]:
    started: list[OtherProcess] = []
    yield started
    for other in started:
        if other.process.poll() is None:
            other.kill()


def test_a_held_lock_verifies_and_a_second_holder_is_refused(db: Database) -> None:
    with db.lock(NAME, wait=0) as lock:
        assert lock and lock.held and lock.verify()
        pool = db.engine.pool
        assert isinstance(pool, QueuePool) and pool.checkedout() == 0  # not the pool's connection
        second = Database(db.url)
        with second.lock(NAME, wait=0.2) as refused:
            assert not refused and not refused.verify()
        second.dispose()
        assert lock.verify()
    assert not lock.held and not lock.verify()


def test_a_lost_lock_fails_verification_and_is_taken_back_when_free(
    backend: Backend, db: Database, others: list[OtherProcess]
) -> None:
    with db.lock(NAME, wait=0) as lock:
        backend.lose_lock()
        assert not lock.verify() and not lock
        assert lock.reacquire()
        assert lock.verify()
        others.append(OtherProcess(db.url, wait=0))
        assert others[-1].state == "refused"
        assert db.schema_revision() is None  # the pool recovered from the restart too


def test_a_lock_taken_by_another_process_in_the_gap_is_not_taken_back(
    backend: Backend, db: Database, others: list[OtherProcess]
) -> None:
    with db.lock(NAME, wait=0) as lock:
        backend.lose_lock()
        other = OtherProcess(db.url, wait=10)
        others.append(other)
        assert other.state == "held"
        assert not lock.verify() and other.ask("verify")  # never both
        assert not lock.reacquire() and not lock.held
        assert other.ask("verify") and not lock.verify()
        assert other.leave() == 0
        assert lock.reacquire() and lock.verify()  # free again: the caller may take it


def test_a_killed_holder_frees_the_lock(db: Database, others: list[OtherProcess]) -> None:
    other = OtherProcess(db.url)
    others.append(other)
    assert other.state == "held"
    with db.lock(NAME, wait=0) as lock:
        assert not lock
    other.kill()
    with db.lock(NAME, wait=10) as lock:
        assert lock.verify()


def test_an_in_memory_database_has_a_process_lock() -> None:
    db = Database("sqlite://")
    with db.lock(NAME, wait=0) as lock:
        assert lock.verify() and lock.reacquire()
        with db.lock(NAME, wait=0.1) as second:
            assert not second and not second.reacquire()
    with db.lock(NAME, wait=0) as again:
        assert again


def test_a_lock_file_replaced_under_its_holder_is_no_longer_ours(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'tradectl.db'}")
    with db.lock(NAME, wait=0) as lock:
        lock_file = tmp_path / f"tradectl.db.{NAME}.lock"
        lock_file.rename(tmp_path / "moved")
        lock_file.write_text("")
        assert not lock.verify()
        assert lock.reacquire() and lock.verify()


def test_a_lock_file_that_cannot_be_created_is_a_database_error() -> None:
    with read_only_dir() as directory:
        db = Database(f"sqlite:///{directory / 'tradectl.db'}")
        read_only = pytest.raises(DatabaseError, match="cannot open the lock file .*Read-only")
        with read_only, db.lock(NAME, wait=0):
            pass


# -- PostgreSQL: the server goes away under the lock -------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_leaving_the_block_after_the_server_stopped_neither_raises_nor_hides_the_error(
    private_pg: PrivateCluster, mode: StopMode, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(private_pg.create_database())
    caplog.set_level(logging.DEBUG, logger="tradectl.db")  # locks and advisory_lock
    with db.lock(NAME, wait=0) as lock:
        private_pg.stop(mode)
    assert not lock.held  # and the block ended without an exception

    private_pg.start()
    with pytest.raises(DatabaseError, match="database postgresql"), db.lock(NAME, wait=0):
        private_pg.stop(mode)
        db.schema_revision()  # the real error: the database is gone

    private_pg.start()
    with pytest.raises(ZeroDivisionError), db.lock(NAME, wait=0):
        private_pg.stop(mode)
        _ = 1 / 0
    assert all(record.levelno <= logging.DEBUG for record in caplog.records)
    db.dispose()


def holders(cluster: PrivateCluster, url: str) -> list[int]:
    """The server sessions holding an advisory lock in the database at `url`."""
    return [row[0] for row in cluster.sql(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted",
        database=url.rsplit("/", 1)[1])]


def test_reacquiring_a_lock_still_held_keeps_the_same_session_without_a_gap(
    private_pg: PrivateCluster,
) -> None:
    url = private_pg.create_database()
    db = Database(url)
    with db.lock(NAME, wait=0) as lock:
        (session,) = holders(private_pg, url)
        assert lock.reacquire()
        assert holders(private_pg, url) == [session]
    assert holders(private_pg, url) == []
    db.dispose()


def test_a_session_lock_gone_from_a_live_connection_fails_verification(
    private_pg: PrivateCluster,
) -> None:
    """What a pooler in transaction mode (pgbouncer) does to a session lock: the connection
    answers, but the server session holding the lock is another one, or none."""
    url = private_pg.create_database()
    db = Database(url)
    with db.lock(NAME, wait=0) as lock:
        assert isinstance(lock, AdvisoryLock)
        lock._query("SELECT pg_advisory_unlock_all()")
        assert not lock.verify()
        assert lock.reacquire() and lock.verify() and len(holders(private_pg, url)) == 1
    db.dispose()


def test_reacquire_says_database_error_while_the_server_is_down(
    private_pg: PrivateCluster,
) -> None:
    db = Database(private_pg.create_database())
    with db.lock(NAME, wait=0) as lock:
        with private_pg.down():
            assert not lock.verify()
            started = time.monotonic()
            with pytest.raises(DatabaseError, match="127.0.0.1"):
                lock.reacquire()  # neither "ours" nor "another's": unknown
            assert time.monotonic() - started < 5
        assert lock.reacquire() and lock.verify()
    db.dispose()


def test_a_lock_whose_link_broke_is_taken_back_from_our_orphaned_session(
    private_pg: PrivateCluster,
) -> None:
    url = private_pg.create_database()
    with TcpProxy(private_pg.port) as proxy:
        db = Database(proxy.url(url))
        with db.lock(NAME, wait=0) as lock:
            assert proxy.cut() == 1  # the server still holds it for the session we lost
            other = Database(url)
            with other.lock(NAME, wait=0) as refused:
                assert not refused
            assert not lock.verify()
            assert lock.reacquire() and lock.verify()
            with other.lock(NAME, wait=0) as refused:
                assert not refused
            other.dispose()
        db.dispose()


def test_a_server_that_never_answers_fails_the_lock_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(advisory_lock, "LOCK_CONNECT_TIMEOUT", 2)  # libpq's minimum
    with SilentServer() as server:
        db = Database(f"postgresql://trader:s3cret@127.0.0.1:{server.port}/tradectl")
        started = time.monotonic()
        with pytest.raises(DatabaseError) as raised, db.lock(NAME, wait=0):
            pass
        assert time.monotonic() - started < 6
        assert server.accepted >= 1
        assert f"127.0.0.1:{server.port}/tradectl" in str(raised.value)
        assert "s3cret" not in str(raised.value)
