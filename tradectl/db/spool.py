"""The emergency stop's local record: written ahead of the first broker call, kept until the
database holds the stop.

`halt` writes a small fsynced file here before it touches the broker (`write_ahead`) and holds a
lock on it while it runs. When the stop is recorded in the database the file is removed. Two
things can leave it behind:

- the process was killed (state `started`): the lock is free, and the next command that runs
  (`watch`, `status`, `halt`, `close`, `open`) completes the stop from Alpaca's orders;
- the database could not be written (state `unrecorded`): the next command that reaches the
  database records it.

The files are private: the directory is 0700 and named by a keyed hash of the database URL (the
key is a random file of the app dir, so the name reveals nothing about the URL), each file is
0600, opened without following symlinks, and read only if this user owns it and it carries the
key's MAC (a file tradectl did not write is refused, and left in place).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

KEY_FILE = "spool.key"
STARTED, UNRECORDED = "started", "unrecorded"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class OfflineStop:
    """An emergency stop not (yet) in the database: its write-ahead record."""

    stopped_at: datetime
    reason: str
    close_orders: dict[str, str]  # symbol -> the close order Alpaca accepted
    database_error: str | None  # why it could not be recorded (None: not tried yet)
    state: str = UNRECORDED  # STARTED: written ahead of the broker; the process may have died
    stop_id: str = field(default_factory=lambda: secrets.token_hex(8))
    alert_sent: bool = False  # sent directly (the database could not queue it)

    def document(self) -> dict[str, Any]:
        return {"version": 2, "stop_id": self.stop_id, "state": self.state,
                "stopped_at": self.stopped_at.isoformat(), "reason": self.reason,
                "close_orders": self.close_orders, "database_error": self.database_error,
                "alert_sent": self.alert_sent}

    @classmethod
    def of(cls, raw: dict[str, Any]) -> OfflineStop:
        error = raw.get("database_error")
        return cls(datetime.fromisoformat(raw["stopped_at"]), str(raw["reason"]),
                   {str(k): str(v) for k, v in raw["close_orders"].items()},
                   None if error is None else str(error), str(raw.get("state", UNRECORDED)),
                   str(raw.get("stop_id") or secrets.token_hex(8)),
                   bool(raw.get("alert_sent", True)))


class Claim:
    """A spooled stop this process holds the lock of (its writer is gone, or is this process)."""

    def __init__(self, path: Path, stop: OfflineStop, fd: int | None) -> None:
        self.path, self.stop, self._fd = path, stop, fd

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # frees the flock


class StopSpool:
    """A directory of spooled stops, one per database."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self._url = database_url
        self._directory: Path | None = None

    # -- where ------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """root/spool/<keyed hash of the URL>; creates the key on first use."""
        if self._directory is None:
            digest = hmac.new(self._key(), self._url.encode(), hashlib.sha256).hexdigest()
            self._directory = self.root / "spool" / digest[:24]
        return self._directory

    def _legacy_directory(self) -> Path:
        """Where versions before the keyed name spooled (an unsalted hash of the URL)."""
        return self.root / "spool" / hashlib.sha256(self._url.encode()).hexdigest()[:16]

    def _key(self) -> bytes:
        _private_dir(self.root)
        path = self.root / KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        except FileExistsError:
            return _read_private(path)
        key = secrets.token_bytes(32)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key

    def _mac(self, body: bytes) -> str:
        return hmac.new(self._key(), body, hashlib.sha256).hexdigest()

    # -- writing ----------------------------------------------------------------------------

    def write_ahead(self, stop: OfflineStop) -> tuple[Claim | None, str | None]:
        """Write the stop (state STARTED) durably and hold its lock while this process runs.
        Returns the claim, or why it could not be written (the stop itself never fails)."""
        try:
            directory = self.directory
            _private_dir(directory.parent)
            _private_dir(directory)
            path = directory / f"stop-{stop.stopped_at:%Y%m%dT%H%M%S%f}-{stop.stop_id}.json"
            fd = _lock(path.with_suffix(".lock"), wait=False)
            if fd is None:  # cannot happen for a fresh id; never write over a live stop
                return None, "its lock is held by another process"
            claim = Claim(path, stop, fd)
            self._write(path, stop)
        except OSError as err:
            return None, f"{type(err).__name__}: {err}"
        return claim, None

    def update(self, claim: Claim, stop: OfflineStop) -> str | None:
        """Replace the claimed record; None, or why not."""
        try:
            self._write(claim.path, stop)
        except OSError as err:
            return f"{type(err).__name__}: {err}"
        claim.stop = stop
        return None

    def save(self, stop: OfflineStop) -> str | None:
        """A stop without a write-ahead record of its own: write it (unlocked); None or why."""
        try:
            directory = self.directory
            _private_dir(directory.parent)
            _private_dir(directory)
            path = directory / f"stop-{stop.stopped_at:%Y%m%dT%H%M%S%f}-{stop.stop_id}.json"
            self._write(path, stop)
        except OSError as err:
            return f"{type(err).__name__}: {err}"
        return None

    def _write(self, path: Path, stop: OfflineStop) -> None:
        body = json.dumps(stop.document(), sort_keys=True).encode()
        data = json.dumps({"stop": stop.document(), "mac": self._mac(body)}).encode()
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)  # a reader never sees half a file
        _fsync_dir(path.parent)

    # -- reading ----------------------------------------------------------------------------

    def has_pending(self) -> bool:
        """Cheap: whether any stop file is spooled at all (a listing or two; nothing created)."""
        try:
            folders = [e.path for e in os.scandir(self.root / "spool")
                       if e.is_dir(follow_symlinks=False)]
        except OSError:
            return False
        for folder in folders:
            try:
                if any(n.startswith("stop-") and n.endswith(".json") for n in os.listdir(folder)):
                    return True
            except OSError:
                continue
        return False

    def pending_count(self) -> int:
        """How many stop files are here (claimable or not)."""
        return len(self._paths()) if self.has_pending() else 0

    def claim_pending(self) -> Iterator[Claim]:
        """Spooled stops whose writer is gone, oldest first, each claimed (locked) for the
        caller, who must release it. A stop another process holds (a `halt` still running, or
        another command completing it) is skipped; a file that cannot be trusted is skipped and
        kept."""
        for path, legacy in self._paths():
            try:
                fd = _lock(path.with_suffix(".lock"), wait=False)
            except OSError:  # a symlink, or not ours: refused
                continue
            if fd is None:
                continue
            stop = self._read(path, legacy)
            if stop is None:
                os.close(fd)
                continue
            yield Claim(path, stop, fd)

    def _paths(self) -> list[tuple[Path, bool]]:
        found: list[tuple[Path, bool]] = []
        for directory, legacy in ((self.directory, False), (self._legacy_directory(), True)):
            try:
                if not _trusted_dir(directory):
                    continue
                found += [(p, legacy) for p in directory.glob("stop-*.json")]
            except OSError:
                continue
        return sorted(found, key=lambda item: item[0].name)

    def _read(self, path: Path, legacy: bool) -> OfflineStop | None:
        try:
            raw = json.loads(_read_private(path))
            if legacy:  # written before the MAC: its ownership and mode are the check
                return OfflineStop.of(raw)
            document = raw["stop"]
            body = json.dumps(document, sort_keys=True).encode()
            if not hmac.compare_digest(str(raw["mac"]), self._mac(body)):
                return None
            return OfflineStop.of(document)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @staticmethod
    def done(claim: Claim) -> None:
        """The stop is in the database: remove its file, then its lock."""
        claim.path.unlink(missing_ok=True)
        claim.lock_path.unlink(missing_ok=True)
        claim.release()


def _private_dir(path: Path) -> None:
    """Create `path` 0700 (parents too), or check an existing one is ours and no symlink."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not _trusted_dir(path):
            raise PermissionError(f"{path} is not a directory of this user's (or is a "
                                  "symlink): refused") from None


def _trusted_dir(path: Path) -> bool:
    info = os.lstat(path)
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def _read_private(path: Path) -> bytes:
    """A regular file of this user's, not group/world writable, read without following a
    symlink; PermissionError otherwise."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & 0o022):
            raise PermissionError(f"{path} is not a private file of this user's: refused")
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _lock(path: Path, *, wait: bool) -> int | None:
    """An flock on `path` (created 0600), or None when another process holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unrecorded(stop: OfflineStop, closes: dict[str, str], error: str) -> OfflineStop:
    return replace(stop, state=UNRECORDED, close_orders=closes, database_error=error)
