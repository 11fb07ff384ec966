"""`tradectl watch --json` as a process of its own, its tick documents collected as they come:
for the tests that run several, kill them, or take their database away under them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from tests.conftest import Cli, tradectl_command
from tradectl.config import DEFAULTS


class Watch:
    """`tradectl watch --json` as a process; its tick documents are collected as they come."""

    def __init__(self, cli: Cli, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
        env.update(cli.env, XDG_CONFIG_HOME=str(cli.cwd / "config"))
        self.process = subprocess.Popen(
            [*tradectl_command(), "watch", "--json", *args], env=env, cwd=cli.cwd,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.ticks: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.ticks.append(json.loads(line))

    def wait_for(self, condition: Callable[[dict], bool], seconds: float = 30,
                 since: int | None = None) -> dict:
        """The first tick from now (or from tick number `since`) that meets `condition`."""
        deadline = time.monotonic() + seconds
        seen = len(self.ticks) if since is None else since
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr()
            for tick in self.ticks[seen:]:
                if condition(tick):
                    return tick
            seen = len(self.ticks)
            time.sleep(0.05)
        raise AssertionError(f"no such tick in {seconds}s; last: {self.ticks[-1:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(30)

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()
