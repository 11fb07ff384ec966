"""`log --kind` knows every kind of event the code records (EVENT_KINDS is kept in step)."""

from __future__ import annotations

import ast
from pathlib import Path

from tradectl.db.journal import EVENT_KINDS

TRADECTL = Path(__file__).parents[2] / "tradectl"
# The calls that record an event, and where their kind argument is (rearm's `_Change` carries
# the kind it records later).
RECORDERS = {"record": 0, "event_row": 0, "log": 1, "queue_event": 0, "_Change": 1}


def recorded_kinds() -> set[str]:
    kinds: set[str] = set()
    for path in TRADECTL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            index = RECORDERS.get(name)
            if index is None or len(node.args) <= index:
                continue
            kind = node.args[index]
            if isinstance(kind, ast.Constant) and isinstance(kind.value, str) \
                    and kind.value.replace("_", "").isalpha() and kind.value.islower():
                kinds.add(kind.value)
    return kinds


def test_every_kind_the_code_records_is_known_to_log() -> None:
    missing = recorded_kinds() - EVENT_KINDS
    assert not missing, f"add to EVENT_KINDS (tradectl/db/journal.py): {sorted(missing)}"


def test_the_scan_finds_the_kinds_it_should() -> None:
    assert {"emergency_stop", "position_created", "entry_cancelled", "exit_moved", "protected"} \
        <= recorded_kinds()
