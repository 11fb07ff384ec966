"""Start-up: how long `tradectl` takes from process start to exit, and what it imports.

`--help` and `--version` against a bare Typer application with the same commands and options
(generated into a temporary file); `open`, `halt` and `status` (no Alpaca keys, a migrated SQLite
database) against the import floor `python -c "import sqlalchemy.orm"` (the database layer
they need; the SDK left this floor with issue 17, when no command imported it any more);
then `open`, `halt`, `status`, `check-alpaca` and `watch --once` with Alpaca keys against the fake
(no added latency), with what each imports and what importing the adapter costs.
Every figure is measured in this run, the commands interleaved so that background load falls
on all of them alike.

    python benchmarks/startup.py [--runs 15] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import measure
from measure import (
    HEAVY,
    PYTHON,
    Timing,
    Workspace,
    broker_settings,
    environment,
    fake_broker,
    print_table,
    tradectl_argv,
)

HELP_TARGET = 1.3  # --help / --version: median within 1.3x of the bare Typer app

BARE_APP = '''\
"""A bare Typer app with tradectl's commands and options and no bodies: the start-up floor."""

from typing import Annotated

import typer

app = typer.Typer(name="tradectl", help="Open Alpaca bracket positions, watch, halt.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema: apply or inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")]
Reason = Annotated[str, typer.Option("--reason", help="Why: recorded and e-mailed.")]


def _version(value: bool) -> None:
    if value:
        typer.echo("tradectl 0.0.0")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Show version.")] = False) -> None:
    """Open Alpaca bracket positions, watch the day's risk, pull the emergency stop."""


@app.command("open")
def open_(symbol: Annotated[str, typer.Argument(help="Ticker, e.g. AAPL.")],
          qty: Annotated[str, typer.Option("--qty", help="Whole shares.")],
          stop: Annotated[str, typer.Option("--stop", help="Stop-loss price.")],
          target: Annotated[str, typer.Option("--target", help="Take-profit price.")],
          entry: Annotated[str | None, typer.Option("--entry", help="Limit entry.")] = None,
          side: Annotated[str, typer.Option("--side", help="buy or sell.")] = "buy",
          gtc: Annotated[bool, typer.Option("--gtc", help="Good till cancelled.")] = False,
          yes: Annotated[bool, typer.Option("--yes", help="Skip the confirmation.")] = False,
          as_json: Json = False) -> None:
    """Open a bracket position. Example: tradectl open AAPL --qty 1 --stop 145 --target 160"""


@app.command("halt")
def halt(reason: Reason, as_json: Json = False) -> None:
    """EMERGENCY STOP: cancel every order, close every position, alert."""


@app.command("resume")
def resume(reason: Reason,
           force: Annotated[bool, typer.Option("--force", help="Resume past the limit.")] = False,
           as_json: Json = False) -> None:
    """Start a new trading cycle after an emergency stop."""


@app.command("watch")
def watch(interval: Annotated[float | None, typer.Option("--interval", help="Seconds.")] = None,
          once: Annotated[bool, typer.Option("--once", help="One tick and exit.")] = False,
          read_only: Annotated[bool, typer.Option("--read-only", help="Only show.")] = False,
          as_json: Json = False) -> None:
    """Watch the day's P&L; pull the emergency stop at the daily loss limit."""


@app.command("status")
def status(as_json: Json = False) -> None:
    """Show where trading stands."""


@app.command("log")
def log(limit: Annotated[int, typer.Option("--limit", min=1, help="Most events.")] = 50,
        symbol: Annotated[str | None, typer.Option("--symbol", help="One symbol.")] = None,
        kind: Annotated[str | None, typer.Option("--kind", help="One kind.")] = None,
        as_json: Json = False) -> None:
    """Show the audit log, newest first."""


@app.command("check-alpaca")
def check_alpaca(symbol: Annotated[str, typer.Option("--symbol", help="Symbol.")] = "AAPL",
                 as_json: Json = False) -> None:
    """Check the settings, the Alpaca account, the clock, market data and the database."""


@db_app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply pending migrations."""


@db_app.command("current")
def current() -> None:
    """Show the schema revision of the database."""


if __name__ == "__main__":
    app()
'''

OPEN_ARGS = ["open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--json"]
HALT_ARGS = ["halt", "--reason", "x"]
STATUS_ARGS = ["status"]
CHECK_ARGS = ["check-alpaca"]
WATCH_ONCE_ARGS = ["watch", "--once"]  # one tick: the stream is never opened
# What a command that talks to Alpaca must not import (the SDK and what it pulls in).
NOT_WITH_KEYS = {"alpaca_trade_api", "pandas", "numpy", "aiohttp", "websockets"}
ADAPTER_MODULE = "tradectl.broker.alpaca"


class Case:
    """One command line, timed `runs` times; `prepare` gives the environment of each run."""

    def __init__(self, name: str, argv: list[str], floor: str,
                 prepare: Callable[[], dict[str, str]], codes: tuple[int, ...] = (0,)) -> None:
        self.name, self.argv, self.floor = name, argv, floor
        self.prepare, self.codes = prepare, codes
        self.samples: list[float] = []

    def once(self, cwd: Path) -> None:
        result = measure.run(self.argv, self.prepare(), cwd).check(self.name, self.codes)
        self.samples.append(result.seconds)

    @property
    def timing(self) -> Timing:
        return Timing.of(self.samples)


def has_command(name: str, ws: Workspace) -> bool:
    result = measure.run([*tradectl_argv(), name, "--help"], environment(), ws.dir)
    return result.code == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--quick", action="store_true", help="5 runs per command")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    began = time.perf_counter()
    print(f"tradectl start-up, {runs} runs per command, wall seconds from process start to exit; "
          f"{measure.machine()}")

    with Workspace() as ws:
        bare = ws.dir / "bare_typer_app.py"
        bare.write_text(BARE_APP)
        plain = environment()

        def fresh_db() -> dict[str, str]:  # a migrated database per run: `open` refuses repeats
            return environment(DATABASE_URL=ws.database_url())

        cases = [
            Case("bare Typer --help", [PYTHON, str(bare), "--help"], "", lambda: plain),
            Case("bare Typer --version", [PYTHON, str(bare), "--version"], "", lambda: plain),
            Case("bare Typer " + " ".join(OPEN_ARGS) + " (parse only)",
                 [PYTHON, str(bare), *OPEN_ARGS], "", lambda: plain),
            Case("import floor", measure.import_floor_argv(), "", lambda: plain),
            Case("tradectl --help", [*tradectl_argv(), "--help"], "bare Typer --help",
                 lambda: plain),
            Case("tradectl --version", [*tradectl_argv(), "--version"], "bare Typer --version",
                 lambda: plain),
            Case("tradectl " + " ".join(OPEN_ARGS), [*tradectl_argv(), *OPEN_ARGS],
                 "import floor", fresh_db),
            Case("tradectl " + " ".join(HALT_ARGS), [*tradectl_argv(), *HALT_ARGS],
                 "import floor", fresh_db),
        ]
        status_exists = has_command("status", ws)
        if status_exists:
            cases.append(Case("tradectl status", [*tradectl_argv(), *STATUS_ARGS],
                              "import floor", fresh_db))

        ws.database_url()  # migrate the template before the clock starts
        for case in cases:  # one untimed warm-up each: bytecode caches, page cache
            case.once(ws.dir)
            case.samples.clear()
        for _ in range(runs):
            for case in cases:
                case.once(ws.dir)

        floors = {c.name: c.timing for c in cases}
        rows = []
        for case in cases:
            t = case.timing
            floor = floors.get(case.floor)
            rows.append([case.name, measure.seconds(t.median), measure.seconds(t.min),
                         case.floor or "-",
                         measure.ratio(t.median, floor.median) if floor else "-"])
        print_table("Start-up wall time (no Alpaca keys; SQLite database already migrated)",
                    ["command", "median s", "min s", "floor", "median vs floor"], rows)
        if not status_exists:
            print("note: `tradectl status` does not exist in this tree: skipped")

        verdicts: list[tuple[str, bool, str]] = []
        for flag in ("--help", "--version"):
            t, floor = floors[f"tradectl {flag}"], floors[f"bare Typer {flag}"]
            verdicts.append((f"tradectl {flag} median within {HELP_TARGET}x of a bare Typer app",
                             t.median <= HELP_TARGET * floor.median,
                             f"{t.median / floor.median:.2f}x"))

        verdicts.extend(import_checks(ws, status_exists))
        verdicts.extend(with_keys(ws, runs))
        measure.print_verdicts(verdicts)
    print(f"\n(finished in {time.perf_counter() - began:.0f} s)")


SHOWN = {*HEAVY, "numpy", "rich", "requests", "httpx"}  # the packages each row names


def import_checks(ws: Workspace, status_exists: bool) -> list[tuple[str, bool, str]]:
    """Which heavy packages each command imports, from `python -X importtime -m tradectl ...`."""
    module = ["-m", "tradectl"]
    checks: list[tuple[str, list[str], dict[str, str], set[str]]] = [
        # (command, arguments, environment, packages it must not import)
        ("--help", ["--help"], environment(), set(HEAVY)),
        ("--version", ["--version"], environment(), set(HEAVY)),
    ]
    no_broker = {"alembic", "alpaca_trade_api", "pandas", "pydantic"}
    for args in (OPEN_ARGS, HALT_ARGS, *([STATUS_ARGS] if status_exists else [])):
        checks.append((" ".join(args), args, environment(DATABASE_URL=ws.database_url()),
                       no_broker))
    rows, verdicts = [], []
    for name, args, env, forbidden in checks:
        found, result = measure.imported_packages([*module, *args], env, ws.dir)
        result.check(f"tradectl {name} under -X importtime")
        bad = sorted(found & forbidden)
        heavy = sorted(found & SHOWN)
        rows.append([f"tradectl {name}", ", ".join(heavy) or "-", ", ".join(bad) or "-"])
        verdicts.append((f"tradectl {name} imports none of {', '.join(sorted(forbidden))}",
                         not bad, f"imported: {', '.join(bad)}" if bad else ""))

    # The control: against an empty database the migration is pending and Alembic must load,
    # which also shows that the parsing above would have seen it.
    found, result = measure.imported_packages(
        [*module, *OPEN_ARGS], environment(DATABASE_URL=ws.database_url(migrated=False)), ws.dir)
    result.check("tradectl open on an empty database under -X importtime")
    rows.append(["tradectl open ... (migration pending)",
                 ", ".join(sorted(found & SHOWN)) or "-", "-"])
    verdicts.append(("Alembic is imported when a migration is pending (control)",
                     "alembic" in found, ""))
    print_table("Heavy packages imported (python -X importtime -m tradectl ...; no Alpaca keys)",
                ["command", "heavy packages imported", "should not be"], rows)
    return verdicts


def with_keys(ws: Workspace, runs: int) -> list[tuple[str, bool, str]]:
    """open, halt, status and check-alpaca with keys, against the fake broker at no latency:
    wall time (interleaved), the packages imported, and the adapter module's cumulative import
    time and the SDK's from `-X importtime` (medians over the runs; the adapter may import the
    SDK lazily, so the two are apart)."""
    with fake_broker(latency=0.0) as fake:
        fake.set_price("AAPL", "150")

        def keyed() -> dict[str, str]:
            fake.reset()  # an empty account each run: one holding AAPL would refuse the open
            fake.set_price("AAPL", "150")
            return environment(DATABASE_URL=ws.database_url(), **broker_settings(fake))

        commands = [OPEN_ARGS, HALT_ARGS, STATUS_ARGS, CHECK_ARGS, WATCH_ONCE_ARGS]
        cases = [Case("tradectl " + " ".join(args), [*tradectl_argv(), *args], "", keyed)
                 for args in commands]
        for case in cases:  # warm-up
            case.once(ws.dir)
            case.samples.clear()
        adapter_ms: dict[str, list[float]] = {case.name: [] for case in cases}
        sdk_ms: dict[str, list[float]] = {case.name: [] for case in cases}
        found: dict[str, set[str]] = {case.name: set() for case in cases}
        for _ in range(runs):
            for case, args in zip(cases, commands, strict=True):
                case.once(ws.dir)
                packages, result = measure.imported_packages(["-m", "tradectl", *args], keyed(),
                                                             ws.dir)
                result.check(f"{case.name} under -X importtime")
                found[case.name] |= packages
                adapter_ms[case.name].append(_cumulative_ms(result.stderr, ADAPTER_MODULE))
                sdk_ms[case.name].append(_cumulative_ms(result.stderr, "alpaca_trade_api"))
    rows, verdicts = [], []
    for case in cases:
        bad = sorted(found[case.name] & NOT_WITH_KEYS)
        rows.append([case.name, measure.seconds(case.timing.median),
                     measure.seconds(case.timing.min),
                     f"{Timing.of(adapter_ms[case.name]).median:.0f}",
                     f"{Timing.of(sdk_ms[case.name]).median:.0f}", ", ".join(bad) or "-"])
        verdicts.append((f"{case.name} (with keys) imports none of "
                         f"{', '.join(sorted(NOT_WITH_KEYS))}",
                         not bad, f"imported: {', '.join(bad)}" if bad else ""))
    print_table("With Alpaca keys (the fake broker, no added latency; SQLite database migrated)",
                ["command", "median s", "min s", f"import {ADAPTER_MODULE} ms",
                 "import alpaca_trade_api ms", "SDK packages imported"], rows)
    return verdicts


def _cumulative_ms(importtime: str, module: str) -> float:
    """A module's cumulative import time, from `-X importtime` output (0 if not imported)."""
    for line in importtime.splitlines():
        if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == module:
            return int(line.split("|")[1]) / 1000
    return 0.0


if __name__ == "__main__":
    main()
