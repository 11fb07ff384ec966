"""Fixtures shared by the end-to-end tests that run `watch` as a process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.watch_process import Watch


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    """The `watch` processes a test starts; killed, if still running, when it ends."""
    started: list[Watch] = []
    yield started
    for watch in started:
        if watch.process.poll() is None:
            watch.process.kill()
        watch.process.wait(10)
