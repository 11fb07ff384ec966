"""First use: tradectl's own default SQLite database is created private; a DATABASE_URL that
names a directory that does not exist is a mistake, not something to create."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import tradectl_command
from tradectl.config import DEFAULTS


def test_the_default_database_and_its_directory_are_created_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    previous = os.umask(0o022)  # a common umask: files would be world-readable by default
    try:
        result = subprocess.run([*tradectl_command(), "open", "AAPL", "--qty", "1", "--stop",
                                 "145", "--target", "160"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    directory = tmp_path / "config" / "tradectl"
    database = directory / "tradectl.db"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for sidecar in directory.glob("tradectl.db-*"):  # SQLite's WAL files take the file's mode
        assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0, sidecar
