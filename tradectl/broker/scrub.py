"""Broker text without the keys: an answer that echoes a key (a proxy's error page, a message
quoting the request) is never shown, logged, alerted or stored with it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from tradectl.broker import SymbolOutcome
from tradectl.errors import BrokerError

SCRUB_RUN = 8  # this many characters of a key in a row count as the key
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every run of SCRUB_RUN or more characters of a secret, in any case, replaced
    by `***`: a key echoed whole, cut short by the 300-character cap on messages, or upper-cased
    by a proxy is hidden all the same."""
    lowered = text.translate(_ASCII_LOWER)  # the same length: positions stay aligned
    hidden = bytearray(len(text))
    for secret in secrets:
        key = secret.translate(_ASCII_LOWER)
        run = min(SCRUB_RUN, len(key))
        pieces = {key[i:i + run] for i in range(len(key) - run + 1)} if run >= 4 else set()
        for i in range(len(text) - run + 1):
            if lowered[i:i + run] in pieces:
                hidden[i:i + run] = b"\x01" * run
    if not any(hidden):
        return text
    shown: list[str] = []
    for i, ch in enumerate(text):
        if not hidden[i]:
            shown.append(ch)
        elif i == 0 or not hidden[i - 1]:
            shown.append("***")
    return "".join(shown)


def scrubbed_error(err: BrokerError, secrets: tuple[str, ...]) -> BrokerError:
    """The same error, its message and hint scrubbed in place."""
    err.message = scrub(err.message, secrets)
    err.args = (err.message, *err.args[1:])
    if err.hint is not None:
        err.hint = scrub(err.hint, secrets)
    return err


def scrubbed_outcomes(outcomes: list[SymbolOutcome], secrets: tuple[str, ...]
                      ) -> list[SymbolOutcome]:
    return [replace(o, error=scrub(o.error, secrets)) if o.error else o for o in outcomes]
