"""The installed package: a real wheel, installed outside the source tree, migrates and trades."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tradectl.config import DEFAULTS
from tradectl.db.models import HEAD_REVISION

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tradectl from a freshly built wheel, installed into its own directory (deps from here)."""
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(REPO)], check=True)
    (wheel,) = wheels.glob("tradectl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tradectl/_alembic/env.py" in names
    assert "tradectl/_alembic/versions/0001_initial.py" in names
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    return target


def run(installed: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    clean.update(PYTHONPATH=str(installed), HOME=str(cwd),
                 XDG_CONFIG_HOME=str(cwd / ".config"), **env)
    return subprocess.run([sys.executable, "-m", "tradectl", *args], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=120)


def test_the_wheel_migrates_from_its_own_files(installed: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wheel.db'}"
    probe = subprocess.run(
        [sys.executable, "-c", "import tradectl.db.session as s; print(s.migrations_dir())"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True, text=True, check=True)
    assert probe.stdout.strip().startswith(str(installed))
    upgraded = run(installed, tmp_path, "db", "upgrade", DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"empty -> {HEAD_REVISION}" in upgraded.stdout


def test_the_wheel_creates_its_default_database_on_first_use(installed: Path,
                                                             tmp_path: Path) -> None:
    result = run(installed, tmp_path, "open", "AAPL", "--qty", "1", "--stop", "145",
                 "--target", "160", "--json")
    assert result.returncode == 0, result.stderr
    assert '"alpaca_status": "alpaca_disabled"' in result.stdout
    assert list(tmp_path.rglob("tradectl.db")), "the default SQLite file is in the app dir"
