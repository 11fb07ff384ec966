"""All terminal output. This module: consoles, one-line errors and warnings and number formats;
`json.py` writes every --json document; one sibling module per command renders its results."""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING

from tradectl.formats import (  # noqa: F401  (the formats, for every renderer)
    cents,
    dollars,
    money,
    price_text,
    quantity,
    quantity_text,
)

if TYPE_CHECKING:
    from rich.console import Console


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str, hint: str | None = None) -> None:
    """One line on stderr."""
    line = f"error: {message}" + (f" ({hint})" if hint else "")
    sys.stderr.write(" ".join(line.splitlines()) + "\n")  # any line break: \r, \v, U+2028...
    sys.stderr.flush()


def warning(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


# How a position's status is coloured wherever it is shown.
STATUS_STYLE = {
    "open": "green", "pending": "yellow", "closing": "yellow", "closed": "dim",
    "cancelled": "dim", "rejected": "red", "failed": "red",
}
