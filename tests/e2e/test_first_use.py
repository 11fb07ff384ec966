"""First use: tradectl's files are private: its own default SQLite database and one at any
path (0600, its -wal and -shm alike), its directory (0700, with PostgreSQL too); looser ones
are warned about. A DATABASE_URL naming a directory that does not exist is a mistake."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, tradectl_command
from tradectl.config import DEFAULTS


def open_under_common_umask(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`tradectl open` under umask 022, where files would be world-readable by default."""
    previous = os.umask(0o022)
    try:
        return subprocess.run([*tradectl_command(), "open", "AAPL", "--qty", "1", "--stop",
                               "145", "--target", "160"], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=60)
    finally:
        os.umask(previous)


def test_the_default_database_and_its_directory_are_created_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    result = open_under_common_umask(env, tmp_path)
    assert result.returncode == 0, result.stderr
    directory = tmp_path / "config" / "tradectl"
    database = directory / "tradectl.db"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for sidecar in directory.glob("tradectl.db-*"):  # SQLite's WAL files take the file's mode
        assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0, sidecar


def test_a_database_at_a_path_of_the_users_choice_is_created_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    chosen = tmp_path / "records"
    chosen.mkdir(mode=0o755)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"),
               DATABASE_URL=f"sqlite:///{chosen / 'trades.db'}")
    result = open_under_common_umask(env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "group or others" not in result.stderr  # made private: nothing to warn about
    files = sorted(chosen.glob("trades.db*"))
    assert chosen / "trades.db" in files
    for path in files:  # the database, and its -wal and -shm when SQLite leaves them
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask_022")
def test_the_app_dir_is_private_with_postgres_too(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, database_url: str) -> None:
    cli = Cli(monkeypatch, tmp_path)
    cli.env["DATABASE_URL"] = database_url
    result = cli("halt", "--reason", "first stop", "--json")
    assert result.code == 0, result.output
    app_dir = tmp_path / "config" / "tradectl"
    assert stat.S_IMODE(app_dir.stat().st_mode) == 0o700
    assert "group or others" not in result.stderr


def test_looser_permissions_are_warned_about_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    cli = Cli(monkeypatch, tmp_path)
    database = tmp_path / "trades.db"
    cli.env["DATABASE_URL"] = f"sqlite:///{database}"
    assert cli("status").code == 0
    app_dir = tmp_path / "config" / "tradectl"
    app_dir.mkdir(parents=True, exist_ok=True)
    database.chmod(0o644)
    app_dir.chmod(0o755)
    for command in (("status", "--json"), ("halt", "--reason", "x")):
        result = cli(*command)
        assert result.code == 0, result.output  # a warning, not an error
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("warning: group or others can read ")
        assert f"{database} (mode 0644)" in lines[0] and f"{app_dir} (mode 0755)" in lines[0]
    database.chmod(0o600)
    app_dir.chmod(0o700)
    assert cli("status").stderr == ""
