"""A PostgreSQL server of the test's own: initdb into a temporary directory, started on a free
port, stopped, restarted and taken down for an outage by the test. Never the shared server.

    cluster = PrivateCluster.create()       # initdb + start; ~1-2 s
    url = cluster.create_database()         # a fresh, empty database on it
    cluster.restart()                       # every session ends; locks are freed
    cluster.outage(10)                      # down for 10 s (immediate stop), then up again
    with cluster.down(): ...                # down inside the block, up again after it
    cluster.destroy()                       # stop and delete; also run at interpreter exit
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

StopMode = Literal["smart", "fast", "immediate"]

# Speed over durability: the data dies with the test.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",  # the OS keeps what was written when the server crashes; a test needs no more
    "synchronous_commit": "on",  # a commit the client saw must survive an immediate stop
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "60",
    "max_wal_size": "64MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


def find_pg_bin() -> Path | None:
    """The directory holding initdb: $PG_BIN, then PATH, then the newest /usr/lib/postgresql/*."""
    candidates = [os.environ.get("PG_BIN", "")]
    on_path = shutil.which("initdb")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    return None


def unusable_reason() -> str | None:
    """Why a private cluster cannot run here, or None."""
    if find_pg_bin() is None:
        return "initdb not found (set PG_BIN, or install the PostgreSQL server binaries)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user for initdb to run as"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    """One PostgreSQL server in a temporary directory, owned by `postgres` when we are root."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_pg_bin()
        if found is None:
            raise RuntimeError(unusable_reason() or "initdb not found")
        self.bin_dir = found
        self.base = Path(tempfile.mkdtemp(prefix="tradectl-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self._user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self._finalizer = weakref.finalize(self, _destroy, self.bin_dir, self.data, self.base,
                                           self._user)

    @classmethod
    def create(cls, bin_dir: Path | None = None) -> PrivateCluster:
        """initdb and start; the directory is deleted again if either fails."""
        cluster = cls(bin_dir)
        try:
            cluster.initdb()
            for attempt in range(3):
                try:
                    cluster.start()
                    break
                except RuntimeError:
                    if attempt == 2 or "could not bind" not in cluster._log_tail():
                        raise
                    cluster._move_to(free_port())  # the free port was taken meanwhile
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The `postgres` maintenance database, as superuser `postgres` (trust auth)."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit; its rows (empty for a command)."""
        import psycopg

        with psycopg.connect(self.database_url(database), autocommit=True,
                             connect_timeout=5) as connection:
            cursor = connection.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []

    def drop_connections(self) -> int:
        """End every client session (the server stays up); how many were ended."""
        rows = self.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        return int(rows[0][0])

    # -- life cycle ------------------------------------------------------------------------

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
        lines = [f"{key} = {value}" for key, value in SETTINGS.items()]
        lines += [f"port = {self.port}", f"unix_socket_directories = '{self.base}'"]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(lines) + "\n")

    def _move_to(self, port: int) -> None:
        self.port = port
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {port}\n")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists() and self._ctl("status", check=False) == 0

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self._ctl("start", "-w", "-t", "60", "-l", str(self.log))

    def stop(self, mode: StopMode = "fast") -> None:
        """fast: sessions are ended, a clean shutdown. immediate: like a crash (the next start
        recovers from the WAL)."""
        self._ctl("stop", "-w", "-t", "60", "-m", mode)

    def restart(self, mode: StopMode = "fast") -> None:
        self.stop(mode)
        self.start()

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    @contextmanager
    def down(self, mode: StopMode = "immediate") -> Iterator[None]:
        """Stopped for the block, started again after it (also when the block raises)."""
        self.stop(mode)
        try:
            yield
        finally:
            self.start()

    def outage(self, seconds: float, mode: StopMode = "immediate") -> None:
        """Down for `seconds`, then up again; blocks (run it in a thread to act meanwhile)."""
        with self.down(mode):
            time.sleep(seconds)

    def destroy(self) -> None:
        """Stop (immediate) and delete the directory. Safe to call twice."""
        self._finalizer()

    def __enter__(self) -> PrivateCluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.destroy()

    # -- running the server's tools ----------------------------------------------------------

    def _ctl(self, action: str, *args: str, check: bool = True) -> int:
        return self._run("pg_ctl", action, "-D", str(self.data), *args, check=check)

    def _run(self, tool: str, *args: str, check: bool = True) -> int:
        done = subprocess.run([str(self.bin_dir / tool), *args], cwd=self.base,
                              capture_output=True, text=True, timeout=120, **self._user)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{self._log_tail()}")
        return done.returncode

    def _log_tail(self) -> str:
        try:
            return "server log:\n" + "".join(self.log.read_text().splitlines(True)[-20:])
        except OSError:
            return ""


def _destroy(bin_dir: Path, data: Path, base: Path, user: dict[str, Any]) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate",
                        "-w", "-t", "30"], cwd="/", capture_output=True, timeout=60,
                       check=False, **user)
    shutil.rmtree(base, ignore_errors=True)
