"""The stop spool is private (issue 24): its folder name says nothing about the database URL,
the app dir and the spool are 0700 and its files 0600, and it refuses symlinks and files it did
not write. A stop written ahead is held by its writer and claimable once the writer is gone."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from tradectl.db.spool import STARTED, OfflineStop, StopSpool

URL = "postgresql+psycopg://trader:s3cret@db.example.test/tradectl"


def stop(**extra: object) -> OfflineStop:
    return OfflineStop(datetime.now(UTC), "test", {"AAPL": "order-1"}, None, **extra)  # type: ignore[arg-type]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_folder_name_is_keyed_not_a_hash_of_the_url(tmp_path: Path) -> None:
    spool = StopSpool(tmp_path / "app", URL)
    assert spool.save(stop()) is None
    name = spool.directory.name
    assert name != hashlib.sha256(URL.encode()).hexdigest()[:16]
    assert name not in hashlib.sha256(URL.encode()).hexdigest()
    other_machine = StopSpool(tmp_path / "elsewhere", URL)  # another key: another name
    assert other_machine.directory.name != name
    assert StopSpool(tmp_path / "app", URL).directory == spool.directory  # stable here


def test_the_app_dir_spool_and_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        spool = StopSpool(tmp_path / "app", URL)
        claim, why = spool.write_ahead(stop(state=STARTED))
    finally:
        os.umask(old)
    assert why is None and claim is not None
    assert mode(tmp_path / "app") == 0o700
    assert mode(tmp_path / "app" / "spool") == 0o700
    assert mode(spool.directory) == 0o700
    assert mode(tmp_path / "app" / "spool.key") == 0o600
    assert mode(claim.path) == 0o600 and mode(claim.lock_path) == 0o600
    claim.release()


def test_a_stop_written_ahead_is_claimed_only_once_its_writer_lets_go(tmp_path: Path) -> None:
    spool = StopSpool(tmp_path, URL)
    claim, _ = spool.write_ahead(stop(state=STARTED))
    assert claim is not None
    assert list(spool.claim_pending()) == []  # its writer (a running halt) holds it
    claim.release()  # the writer died: the kernel frees the lock
    (found,) = list(spool.claim_pending())
    assert found.stop.state == STARTED and found.stop.close_orders == {"AAPL": "order-1"}
    spool.done(found)
    assert not spool.has_pending() and list(spool.claim_pending()) == []


def test_a_planted_file_and_a_symlink_are_refused_and_left(tmp_path: Path) -> None:
    spool = StopSpool(tmp_path, URL)
    assert spool.save(stop()) is None
    (real,) = spool.directory.glob("stop-*.json")
    document = json.loads(real.read_text())
    document["stop"]["close_orders"] = {"AAPL": "planted"}  # edited: its MAC no longer fits
    planted = spool.directory / "stop-20000101T000000000000-planted.json"
    fd = os.open(planted, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps(document).encode())
    os.close(fd)
    target = tmp_path / "elsewhere.json"
    target.write_text(real.read_text())
    os.chmod(target, 0o600)
    (spool.directory / "stop-20000101T000000000001-link.json").symlink_to(target)
    claims = list(spool.claim_pending())
    assert [c.stop.close_orders for c in claims] == [{"AAPL": "order-1"}]
    for claim in claims:
        claim.release()
    assert planted.exists()


def test_a_file_others_can_write_is_refused(tmp_path: Path) -> None:
    spool = StopSpool(tmp_path, URL)
    assert spool.save(stop()) is None
    (path,) = spool.directory.glob("stop-*.json")
    os.chmod(path, 0o666)
    assert list(spool.claim_pending()) == []


def test_a_symlinked_spool_directory_is_refused(tmp_path: Path) -> None:
    spool = StopSpool(tmp_path / "app", URL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "app").mkdir(mode=0o700)
    (tmp_path / "app" / "spool").symlink_to(elsewhere)
    assert spool.save(stop()) is not None  # refused: why is returned, nothing written there
    assert list(elsewhere.iterdir()) == []
