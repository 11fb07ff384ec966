"""The command line: each command parses, calls its services, renders. Heavy modules (SQLAlchemy,
rich, the broker adapter) are imported inside commands so that `tradectl --help` stays instant."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

# Each module registers its commands on the app.
from tradectl.cli import alert, check, db, halt, log, open, report, status, watch  # noqa: F401
from tradectl.cli.app import app


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI. The one place that turns an outcome into an exit code: usage errors and
    tradectl's own errors become one line on stderr (with the hint) and their ExitCode."""
    from tradectl.cli.wiring import close_opened
    from tradectl.errors import ExitCode, TradectlError

    code: int = ExitCode.OK
    try:
        result = app(args=argv, standalone_mode=False)
        code = result if isinstance(result, int) else ExitCode.OK
    except typer.TyperException as err:  # usage errors: missing option, unknown command, ...
        ctx = getattr(err, "ctx", None)
        command = ctx.command_path if ctx is not None else "tradectl"
        _one_line(f"{err.format_message()} (see `{command} --help`)")
        code = err.exit_code
    except typer.Abort:
        _one_line("aborted")
        code = ExitCode.ABORTED
    except TradectlError as err:
        _one_line(err.message, err.hint)
        code = err.exit_code
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    finally:
        close_opened()
    sys.exit(int(code))


def entry() -> NoReturn:
    """The `tradectl` executable. A command lives for about a second: garbage collection while
    the imports build their objects costs ~0.1 s and frees nothing worth it, so it is off (`watch`,
    which runs for hours, turns it back on) and skipped at exit."""
    import gc

    gc.disable()
    try:
        main()
    finally:
        gc.freeze()


def _one_line(message: str, hint: str | None = None) -> None:
    from tradectl import render

    render.error(message, hint)
