"""`tradectl halt` flattens first: when the command line is a plain `halt --reason ...`, the
settings are read, the stop is written ahead to the spool and the close-all is sent before Typer,
the other commands and the database layer are imported. The stop then latches, sweeps and
records (`halt_now`, the one body of the real `halt`) without Typer ever being imported: the
command line was already understood, and Typer's import and the building of every command cost
about 0.1 s that the stop's record would wait for.

Only a command line this module fully understands is started early (`halt`, one `--reason` with
a value, optionally `--json`); anything else (`--dry-run`, `--help`, an unknown option, a
settings error) leaves the work to the normal path, which parses, reports and sends as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradectl.broker import Broker
    from tradectl.cli.context import Context
    from tradectl.config import Settings
    from tradectl.services.halt.first_close import StopStart


@dataclass(frozen=True)
class EarlyStop:
    reason: str
    config: Settings
    broker: Broker
    start: StopStart


_begun: EarlyStop | None = None


def halt_reason(argv: list[str]) -> str | None:
    """The reason of a plain `halt --reason R [--json]` command line; None for anything else."""
    if not argv or argv[0] != "halt":
        return None
    reasons: list[str] = []
    rest = argv[1:]
    while rest:
        word, rest = rest[0], rest[1:]
        if word == "--json":
            continue
        if word.startswith("--reason="):
            reasons.append(word.removeprefix("--reason="))
        elif word == "--reason" and rest and not rest[0].startswith("-"):
            reasons.append(rest[0])
            rest = rest[1:]
        else:
            return None
    if len(reasons) != 1 or not reasons[0].strip():
        return None
    return reasons[0]


def halt_early(argv: list[str]) -> int | None:
    """The whole stop, outside Typer, if `argv` is a plain halt with the broker configured: its
    exit code. None for any other command line (the normal path runs it)."""
    start_early(argv)
    if _begun is None:
        return None
    from tradectl.cli import outcome
    from tradectl.cli.context import Context

    reason, as_json = _begun.reason, "--json" in argv
    return outcome(lambda: halt_now(Context(), reason, as_json), as_json)


def halt_now(ctx: Context, reason: str, as_json: bool) -> int:
    """Latch, sweep, record and report the stop (begun early, or begun here); its exit code."""
    from tradectl.services.halt.first_close import begin_stop

    begun = take(reason)
    if begun is not None:
        ctx.adopt(settings=begun.config, broker=begun.broker)
    adapter, spool = ctx.broker, ctx.spool
    start = begin_stop(adapter, spool, reason, begun.start if begun is not None else None,
                       clock=ctx.clock)
    db = ctx.stop_database(dry_run=False)  # a database fault is reported, the stop goes on
    from tradectl.render.halt import halt_report
    from tradectl.services.halt.emergency_stop import emergency_stop

    report = emergency_stop(db, adapter, ctx.channels, reason, spool=spool,
                            gate_wait=ctx.gate_wait, start=start, clock=ctx.clock)
    halt_report(report, as_json)
    return report.exit_code


def start_early(argv: list[str]) -> None:
    """Begin the stop now if `argv` is a plain halt with the broker configured."""
    global _begun
    reason = halt_reason(argv)
    if reason is None:
        return
    from tradectl.cli.wiring import broker, settings, stop_spool
    from tradectl.errors import TradectlError

    try:
        config = settings()
        adapter = broker(config)
    except TradectlError:  # the normal path reports it
        return
    if adapter is None:
        return
    from tradectl.services.halt.first_close import start_stop

    _begun = EarlyStop(reason, config, adapter, start_stop(adapter, stop_spool(config), reason))


def take(reason: str) -> EarlyStop | None:
    """The stop begun early for this `reason`, once (None if none was)."""
    global _begun
    begun, _begun = _begun, None
    return begun if begun is not None and begun.reason == reason else None
