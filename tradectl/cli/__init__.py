"""The command line: each command parses, calls its use case with the parts of its Context
(cli/app.py), renders. Heavy modules (SQLAlchemy, rich, the broker adapter) are imported inside
commands, and the Context builds each part on first use, so that `tradectl --help` stays
instant.

Nothing is imported here at module level: a plain `tradectl halt` sends its close-all before, and
runs without, Typer and the command modules (cli/early_halt.py), and `tradectl.cli.wiring` can be
imported without them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable

    from tradectl.cli.context import Context


def main(argv: list[str] | None = None, *, context: Context | None = None) -> NoReturn:
    """Run the CLI. The one place that turns an outcome into an exit code: usage errors and
    tradectl's own errors become one line on stderr (with the hint) and their ExitCode; with
    --json, also one JSON object on stdout. `context`: the parts the command works with, when
    the caller (a test) built them; otherwise the root command builds them from the settings."""
    import typer
    from typer._click.exceptions import NoArgsIsHelpError

    # Each module registers its commands on the app.
    from tradectl.cli import alert, check, db, halt, log, open, position, report, status, watch  # noqa: F401
    from tradectl.cli.app import app
    from tradectl.cli.wiring import close_opened
    from tradectl.errors import ExitCode, TradectlError

    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    code: int = ExitCode.OK
    interrupted = _InterruptSeen()
    try:
        with interrupted:
            result = app(args=argv, standalone_mode=False, obj=context)
        code = result if isinstance(result, int) else ExitCode.OK
        if interrupted.seen and code == ExitCode.INTERRUPTED:  # Typer's answer to Ctrl-C
            code = _failed("interrupted", ExitCode.INTERRUPTED, None, {}, as_json)
    except NoArgsIsHelpError:  # bare `tradectl`: the help was the answer
        code = ExitCode.OK
    except typer.TyperException as err:  # usage errors: missing option, unknown command, ...
        ctx = getattr(err, "ctx", None)
        command = ctx.command_path if ctx is not None else "tradectl"
        code = _failed(err.format_message(), err.exit_code, f"see `{command} --help`", {},
                       as_json)
    except typer.Abort:
        code = _failed("aborted", ExitCode.ABORTED, None, {}, as_json)
    except TradectlError as err:
        code = _failed(err.message, err.exit_code, err.hint, err.facts(), as_json)
    except KeyboardInterrupt:
        code = _failed("interrupted", ExitCode.INTERRUPTED, None, {}, as_json)
    finally:
        close_opened()
    sys.exit(int(code))


class _InterruptSeen:
    """Notes a Ctrl-C (Typer turns it into a bare exit 130) so that it can be reported like any
    other outcome; the interrupt itself is raised as usual."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: object = None

    def __enter__(self) -> _InterruptSeen:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _interrupt(self, _signal: int, _frame: object) -> None:
        self.seen = True
        raise KeyboardInterrupt


def outcome(run: Callable[[], int], as_json: bool) -> int:
    """`run`'s exit code, outside Typer (the early `halt`): tradectl's errors and Ctrl-C become
    their line and code as in `main`, and what the command opened is closed."""
    from tradectl.cli.wiring import close_opened
    from tradectl.errors import ExitCode, TradectlError

    try:
        return run()
    except TradectlError as err:
        return _failed(err.message, err.exit_code, err.hint, err.facts(), as_json)
    except KeyboardInterrupt:
        return _failed("interrupted", ExitCode.INTERRUPTED, None, {}, as_json)
    finally:
        close_opened()


def _failed(message: str, code: int, hint: str | None, facts: dict[str, object],
            as_json: bool) -> int:
    """One line on stderr; with --json the same as one object on stdout."""
    from tradectl import render

    render.error(message, hint)
    if as_json:
        from tradectl.render.json import print_json

        print_json({"error": render.one_line(message), "exit_code": int(code), "hint": hint,
                    **facts})
    return code


def entry() -> NoReturn:
    """The `tradectl` executable. A command lives for about a second: garbage collection while
    the imports build their objects costs ~0.1 s and frees nothing worth it, so it is off (`watch`,
    which runs for hours, turns it back on) and skipped at exit."""
    import gc

    gc.disable()
    try:
        from tradectl.cli.early_halt import halt_early

        code = halt_early(sys.argv[1:])
        if code is not None:
            sys.exit(int(code))
        main()
    finally:
        gc.freeze()
