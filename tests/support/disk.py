"""Disk faults that hold even for root (who ignores file permissions): a small tmpfs that can be
filled to the last byte, a read-only mount, and a path whose parent is a regular file.

    with full_disk("8M") as disk:       # skips (with the reason) where tmpfs cannot be mounted
        url = f"sqlite:///{disk.path / 'tradectl.db'}"
        ...                             # set up while there is room
        disk.fill()                     # now every write fails with ENOSPC
        disk.free()                     # room again
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


class Disk:
    """A mounted tmpfs; `fill()` takes every free byte, `free()` gives them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / ".filler"

    def fill(self) -> None:
        with self._filler.open("ab", buffering=0) as filler:
            for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
                try:
                    while True:
                        filler.write(b"\0" * chunk)
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def remount(self, mode: str) -> None:
        """`ro` or `rw`: a read-only disk refuses every write, root's included."""
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True,
                       capture_output=True)

    @property
    def available(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize


@contextmanager
def _tmpfs(options: str) -> Iterator[Path]:
    """A tmpfs mounted on a new directory; skips the test if mount fails; always unmounted."""
    mountpoint = Path(tempfile.mkdtemp(prefix="tradectl-tmpfs-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                    "this fault needs root or CAP_SYS_ADMIN")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True,
                          check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)
        shutil.rmtree(mountpoint, ignore_errors=True)


@contextmanager
def full_disk(size: str = "8M") -> Iterator[Disk]:
    """A small tmpfs of `size` (mount's syntax: 8M, 512k) to fill with `Disk.fill()`."""
    with _tmpfs(f"size={size},mode=0777") as path:
        disk = Disk(path)
        try:
            yield disk
        finally:
            disk.remount("rw")
            disk.free()


@contextmanager
def read_only_dir() -> Iterator[Path]:
    """An existing directory no one can write into, root included (a read-only tmpfs); for
    a non-root user a mode-0500 directory does."""
    if os.geteuid() != 0:
        path = Path(tempfile.mkdtemp(prefix="tradectl-ro-"))
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)
            shutil.rmtree(path, ignore_errors=True)
        return
    with _tmpfs("ro,size=64k") as path:
        yield path


def path_under_file(tmp_path: Path) -> Path:
    """A directory path that can never be created, even by root: its parent is a regular file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory is expected\n")
    return blocker / "data"
