"""What the benchmark scripts share: timing `tradectl` as a subprocess in a clean environment,
the floors (a bare-`requests` process sending a command's requests; the database layer's
import), the fake broker, round trips read off its request log, and plain tables.

Not a test helper: the scripts print figures, they do not assert them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/x.py` puts benchmarks/ first, not the repo
    sys.path.insert(0, str(REPO))

from tests.fakes.alpaca import FakeAlpaca  # noqa: E402
from tests.fakes.alpaca.server import Exchange  # noqa: E402
from tradectl.config import DEFAULTS  # noqa: E402

PYTHON = sys.executable
LATENCY = 0.05  # seconds the fake adds to every request
# The floor of a command without Alpaca keys (startup.py): the database layer it needs, then one
# line out (the moment the imports are done, before the teardown).
IMPORT_FLOOR_CODE = "import sqlalchemy.orm"
IMPORT_FLOOR_PRINT = IMPORT_FLOOR_CODE + "; print('imported', flush=True)"
# The floor of a command that talks to Alpaca: a bare Python process that imports requests and
# sends the requests the command sent, in the same round trips (side by side where the command's
# overlapped), prints one line once the last answer is read, and exits. Its input: the URL, the
# headers and the rounds, as JSON in argv[1].
REQUESTS_FLOOR = """\
import json, sys
from concurrent.futures import ThreadPoolExecutor
import requests
spec = json.loads(sys.argv[1])
session = requests.Session()
session.headers.update(spec["headers"])
def send(r):
    answer = session.request(r["method"], spec["url"] + r["path"], params=r["query"] or None,
                             json=r["json"], timeout=30)
    answer.content
    return answer.status_code
statuses = []
with ThreadPoolExecutor(max_workers=8) as pool:
    for round_ in spec["rounds"]:
        statuses += list(pool.map(send, round_)) if len(round_) > 1 else [send(round_[0])]
print(json.dumps(statuses), flush=True)
"""
# pydantic: Typer 0.29 coerces every parameter through it (~0.1 s); tradectl pins Typer below.
HEAVY = ("sqlalchemy", "alembic", "alpaca_trade_api", "pandas", "pydantic")


def tradectl_argv() -> list[str]:
    """The console script beside this interpreter (what a user runs), else `python -m`."""
    script = Path(PYTHON).with_name("tradectl")
    return [str(script)] if script.exists() else [PYTHON, "-m", "tradectl"]


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without any tradectl setting, plus `settings`. Without
    PYTHONDONTWRITEBYTECODE too: set, no module of tradectl's (an editable install) is ever
    cached as bytecode, and every run compiles them all again, which no installed tradectl
    does (0.14 s of CPU for the modules status and halt import, at load 3.8)."""
    env = {k: v for k, v in os.environ.items()
           if k not in DEFAULTS and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(settings)
    return env


@dataclass
class Run:
    seconds: float  # process start to exit
    code: int
    stdout: str
    stderr: str
    started: float  # time.monotonic() at process start: the fake's request log uses that clock
    first_line: float | None  # process start to the first line on stdout (None: no output)

    def check(self, what: str, codes: Sequence[int] = (0,)) -> Run:
        if self.code not in codes:
            raise SystemExit(f"{what} exited {self.code}:\n{self.stdout}\n{self.stderr}")
        return self

    @property
    def to_output(self) -> float:
        return self.first_line if self.first_line is not None else self.seconds


def run(argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> Run:
    """Wall time from process start to exit, and to its first line of output: tradectl prints
    its --json document once the work is done and recorded, before the interpreter's teardown."""
    started = time.monotonic()
    with subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        watchdog = threading.Timer(timeout, process.kill)  # a hung command is killed, not awaited
        watchdog.start()
        errors: list[str] = []
        assert process.stdout is not None and process.stderr is not None
        stderr = process.stderr
        reader = threading.Thread(target=lambda: errors.append(stderr.read()))
        reader.start()
        try:
            first = process.stdout.readline()
            first_line = time.monotonic() - started if first else None
            rest = process.stdout.read()
            code = process.wait()
            seconds = time.monotonic() - started
            reader.join()
        finally:
            watchdog.cancel()
    return Run(seconds, code, first + rest, "".join(errors), started, first_line)


@dataclass(frozen=True)
class Timing:
    median: float
    min: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        return cls(statistics.median(samples), min(samples), len(samples))


def import_floor_argv() -> list[str]:
    return [PYTHON, "-c", IMPORT_FLOOR_PRINT]


@dataclass(frozen=True)
class Floor:
    """A floor's runs: to its one line out (imports done; or the last answer read) and to exit."""

    output: Timing
    exit: Timing

    @classmethod
    def of(cls, runs: Sequence[Run]) -> Floor:
        return cls(Timing.of([r.to_output for r in runs]), Timing.of([r.seconds for r in runs]))


def rounds(log: Sequence[Exchange], latency: float) -> list[list[Exchange]]:
    """A request log in round trips, as round_trips() counts them: requests starting within
    `latency` of a round's first overlapped it and go side by side."""
    grouped: list[list[Exchange]] = []
    for exchange in sorted(log, key=lambda e: e.monotonic):
        if grouped and exchange.monotonic < grouped[-1][0].monotonic + latency:
            grouped[-1].append(exchange)
        else:
            grouped.append([exchange])
    return grouped


def requests_floor_argv(log: Sequence[Exchange], fake: FakeAlpaca,
                        latency: float = LATENCY) -> list[str]:
    """The bare-requests process sending what `log` holds. An order gets a new client_order_id
    (the fake refuses a repeated one)."""
    def request(e: Exchange) -> dict[str, Any]:
        body = e.json
        if isinstance(body, dict) and "client_order_id" in body:
            body = {**body, "client_order_id": f"floor-{uuid.uuid4().hex}"}
        return {"method": e.method, "path": e.path, "query": e.query, "json": body}

    spec = {"url": fake.url, "headers": {"APCA-API-KEY-ID": fake.api_key,
                                         "APCA-API-SECRET-KEY": fake.secret_key},
            "rounds": [[request(e) for e in group] for group in rounds(log, latency)]}
    return [PYTHON, "-c", REQUESTS_FLOOR, json.dumps(spec)]


def requests_floor_once(log: Sequence[Exchange], fake: FakeAlpaca, cwd: Path,
                        latency: float = LATENCY) -> tuple[Run, list[Exchange]]:
    """One run of the bare-requests floor against `fake` (set up as the command found it), and
    its request log."""
    fake.clear_log()
    result = run(requests_floor_argv(log, fake, latency), environment(), cwd)
    result.check("bare-requests floor")
    sent = sorted((endpoint(e.method, e.path), e.status) for e in fake.requests)
    if sent != sorted((endpoint(e.method, e.path), e.status) for e in log):
        raise SystemExit(f"the floor's requests and answers {sent} are not the command's")
    return result, fake.requests


def imported_packages(argv_after_python: Sequence[str], env: dict[str, str],
                      cwd: Path) -> tuple[set[str], Run]:
    """Top-level packages a command imports, read from `python -X importtime` on stderr."""
    result = run([PYTHON, "-X", "importtime", *argv_after_python], env, cwd)
    found = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "package":
                found.add(name.split(".")[0])
    return found, result


class Workspace:
    """A temporary directory: the commands' working directory (so no `.env` is read) and the
    home of SQLite databases copied from one template migrated by `tradectl db upgrade`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tradectl-bench-"))
        self._count = 0
        self._template: Path | None = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def database_url(self, *, migrated: bool = True) -> str:
        self._count += 1
        path = self.dir / f"tradectl-{self._count}.db"
        if migrated:
            shutil.copyfile(self._migrated_template(), path)
        return f"sqlite:///{path}"

    def _migrated_template(self) -> Path:
        if self._template is None:
            self._template = self.dir / "template.db"
            url = f"sqlite:///{self._template}"
            run([*tradectl_argv(), "db", "upgrade"], environment(DATABASE_URL=url),
                self.dir).check("tradectl db upgrade")
            for suffix in ("-wal", "-shm"):  # the last connection closed: the WAL is merged
                self._template.with_name(self._template.name + suffix).unlink(missing_ok=True)
        return self._template


# -- the fake broker ----------------------------------------------------------------------------


@contextmanager
def fake_broker(latency: float = LATENCY) -> Iterator[FakeAlpaca]:
    fake = FakeAlpaca(latency=latency).start()
    try:
        yield fake
    finally:
        fake.stop()


def broker_settings(fake: FakeAlpaca) -> dict[str, str]:
    return {"ALPACA_API_KEY": fake.api_key, "ALPACA_SECRET_KEY": fake.secret_key,
            "ALPACA_BASE_URL": fake.url, "ALPACA_DATA_URL": fake.url, "ALPACA_TIMEOUT": "10"}


def round_trips(starts: Sequence[float], latency: float) -> int:
    """Sequential round trips in a request log that holds start times only. Every request takes
    at least `latency`, so one that starts within `latency` of the first request of the current
    round trip overlapped it and cannot have waited for its answer. Concurrent reads count once.
    (With equal durations this greedy count is the longest chain of non-overlapping requests.)"""
    count, current = 0, float("-inf")
    for start in sorted(starts):
        if start >= current + latency:
            count, current = count + 1, start
    return count


@dataclass(frozen=True)
class Phases:
    """Where a command's time went, seen from the fake: before its first request, between the
    first request and the last answer the fake sent (its own work included), and from there to
    the command's first line of output (tradectl's work on the answers)."""

    before: float
    broker: float
    after: float

    @classmethod
    def of(cls, result: Run, log: Sequence[Exchange]) -> Phases:
        if not log:
            return cls(result.seconds, 0.0, 0.0)
        first, last_answer = min(e.monotonic for e in log), max(e.answered for e in log)
        end = result.started + result.to_output
        return cls(first - result.started, last_answer - first, end - last_answer)


def peak_concurrency(starts: Sequence[float], latency: float) -> int:
    """The most requests in flight at once, each taken to last `latency`."""
    edges = sorted([(s, 1) for s in starts] + [(s + latency, -1) for s in starts])
    peak = live = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    return peak


def most_in_window(starts: Sequence[float], window: float) -> int:
    """The most requests started within any `window` seconds (Alpaca counts per minute)."""
    ordered, most, first = sorted(starts), 0, 0
    for last, start in enumerate(ordered):
        while start - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


_SYMBOL_IN_PATH = (
    (re.compile(r"^/v2/positions/[^/]+$"), "/v2/positions/{symbol}"),
    (re.compile(r"^/v2/orders/[^/:]+$"), "/v2/orders/{id}"),
    (re.compile(r"^/v2/stocks/[^/]+/trades/latest$"), "/v2/stocks/{symbol}/trades/latest"),
)


def endpoint(method: str, path: str) -> str:
    for pattern, generic in _SYMBOL_IN_PATH:
        if pattern.match(path):
            return f"{method} {generic}"
    return f"{method} {path}"


def by_endpoint(exchanges: Sequence[Any]) -> str:
    counts = Counter(endpoint(e.method, e.path) for e in exchanges)
    return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))


# -- output -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def seconds(value: float) -> str:
    return f"{value:.3f}"


def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print(line(["-" * w for w in widths]))
    for row in cells[1:]:
        print(line(row))
    sys.stdout.flush()


def print_verdicts(verdicts: Sequence[tuple[str, bool, str]]) -> None:
    print()
    for target, ok, detail in verdicts:
        print(f"{verdict(ok)}  {target}" + (f"  ({detail})" if detail else ""))
    sys.stdout.flush()


def machine() -> str:
    import platform

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, load {load}")
