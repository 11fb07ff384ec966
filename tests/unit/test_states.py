"""A position's lifecycle: every legal move in the one table, an illegal one refused, and the
stored strings unchanged (they are the database's values and the --json contract)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tradectl.db.models import LIVE_POSITION_STATUSES
from tradectl.domain.states import (
    LIVE_STATES,
    TRANSITIONS,
    AlpacaStatusMark,
    CycleState,
    PositionEvent,
    PositionState,
    ProtectionState,
    advance,
    move,
)
from tradectl.errors import ExitCode, IllegalTransition

S, E = PositionState, PositionEvent  # short names for the table below
LEGAL = [
    (S.PENDING, E.ENTRY_FILLED, S.OPEN),
    (S.PENDING, E.RECORDED_LOCALLY, S.OPEN),
    (S.PENDING, E.ENTRY_CANCELLED, S.CANCELLED),
    (S.PENDING, E.ENTRY_REJECTED, S.REJECTED),
    (S.PENDING, E.NEVER_PLACED, S.FAILED),
    (S.PENDING, E.CLOSED_LOCALLY, S.CLOSED),
    (S.OPEN, E.CLOSE_SENT, S.CLOSING),
    (S.OPEN, E.EXITED, S.CLOSED),
    (S.OPEN, E.CLOSED_LOCALLY, S.CLOSED),
    (S.CLOSING, E.CLOSE_FAILED, S.OPEN),
    (S.CLOSING, E.EXITED, S.CLOSED),
    (S.CLOSING, E.CLOSED_LOCALLY, S.CLOSED),
]


@dataclass
class Row:
    status: str


@pytest.mark.parametrize(("state", "event", "to"), LEGAL)
def test_each_legal_move_lands_where_the_lifecycle_says(state: PositionState, event: PositionEvent,
                                                         to: PositionState) -> None:
    row = Row(state.value)
    assert move(row, event) == to
    assert row.status == to.value and type(row.status) is str  # the column's plain string


def test_the_table_holds_exactly_the_legal_moves() -> None:
    assert {(s, e): t for s, e, t in LEGAL} == dict(TRANSITIONS)


@pytest.mark.parametrize("state", list(S))
def test_every_move_not_in_the_table_is_refused_and_the_row_left_as_it_was(
        state: PositionState) -> None:
    for event in E:
        if (state, event) in TRANSITIONS:
            continue
        row = Row(state.value)
        with pytest.raises(IllegalTransition) as refused:
            move(row, event)
        assert row.status == state.value
        assert refused.value.facts() == {"state": state.value, "event": event.value}


def test_a_closed_position_never_opens_again() -> None:
    with pytest.raises(IllegalTransition, match="'closed' cannot take 'close_failed'") as err:
        advance("closed", E.CLOSE_FAILED)
    assert err.value.exit_code == ExitCode.ABORTED


def test_a_state_the_lifecycle_does_not_know_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        advance("unknown", E.ENTRY_FILLED)


def test_the_stored_strings_are_unchanged() -> None:
    assert [s.value for s in S] == ["pending", "open", "closing", "closed", "cancelled",
                                    "rejected", "failed"]
    assert [s.value for s in ProtectionState] == ["protected", "unprotected", "closing"]
    assert [s.value for s in CycleState] == ["active", "stopped"]
    assert [s.value for s in AlpacaStatusMark] == ["unknown", "error", "alpaca_disabled",
                                                   "closed_by_emergency_stop"]
    assert S.OPEN == "open" and f"{S.CLOSING}" == "closing"


def test_the_journal_reads_the_live_states_of_the_lifecycle() -> None:
    assert set(LIVE_POSITION_STATUSES) == LIVE_STATES


def test_services_change_a_position_state_only_through_the_lifecycle() -> None:
    """No service writes a status by hand: a position moves by `move(row, event)`; only a
    cycle's status is set directly (latched by the emergency stop)."""
    by_hand = []
    for path in Path("tradectl/services").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(t, ast.Attribute) and t.attr == "status" \
                            and ast.unparse(t.value) != "cycle":
                        by_hand.append(f"{path}:{node.lineno}")
    assert by_hand == []
