"""All terminal output. This module: consoles, one-line errors and warnings and number formats;
`json.py` writes every --json document; one sibling module per command renders its results."""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING

from tradectl.domain.money import (  # noqa: F401  (the formats, for every renderer)
    cents,
    dollars,
    money,
    price_text,
    quantity,
    quantity_text,
)

if TYPE_CHECKING:
    from rich.console import Console


PIPED_WIDTH = 160


@cache
def stdout() -> Console:
    from rich.console import Console

    # Piped, a table keeps its columns whole rather than folding them into 80 characters.
    return Console(highlight=False, soft_wrap=True,
                   width=None if sys.stdout.isatty() else PIPED_WIDTH)


@cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def one_line(text: str) -> str:
    """Text from outside (a reason, a broker's message) as one printable line: line breaks
    become spaces and other control characters (ESC, CR...) visible escapes, so nothing it holds
    can move the cursor, colour the terminal or split a line."""
    flat = " ".join(text.splitlines())  # any line break: \n, \r, \v, U+2028...
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in flat)


def literal(text: str) -> str:
    """Outside text for a rich markup string: one line (see one_line), and its brackets shown
    as themselves (a reason `[red]x[/red]` prints as typed)."""
    from rich.markup import escape

    return escape(one_line(text))


def error(message: str, hint: str | None = None) -> None:
    """One line on stderr."""
    line = f"error: {message}" + (f" ({hint})" if hint else "")
    sys.stderr.write(one_line(line) + "\n")
    sys.stderr.flush()


def warning(message: str) -> None:
    sys.stderr.write(f"warning: {one_line(message)}\n")
    sys.stderr.flush()


# How a position's status is coloured wherever it is shown.
STATUS_STYLE = {
    "open": "green", "pending": "yellow", "closing": "yellow", "closed": "dim",
    "cancelled": "dim", "rejected": "red", "failed": "red",
}
