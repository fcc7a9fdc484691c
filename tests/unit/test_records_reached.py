"""Closing a cut-off journey: the outcome it had reached, from its events alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coverage_engine.journey import EventKind, Outcome, Stamped, parse_event
from coverage_engine.records import outcome_reached

T0 = datetime(2026, 3, 1, 2, 14, tzinfo=UTC)


def _events(*specs: tuple[EventKind, dict[str, Any]]) -> list[Stamped]:
    return [Stamped(T0 + timedelta(seconds=i), parse_event(k, d)) for i, (k, d) in enumerate(specs)]


R = EventKind.RECEIVED
CASES: list[tuple[str, list[Stamped], Outcome, str | None]] = [
    ("nothing but received", _events((R, {})), Outcome.ENGINE_ERROR, None),
    (
        "waiting in the operator queue",
        _events((R, {}), (EventKind.QUEUE_ENTERED, {"queue": "operators"})),
        Outcome.FAILED_OVER_TO_DIALPLAN,
        None,
    ),
    (
        "queue timed out, on-call dialing",
        _events(
            (R, {}),
            (EventKind.QUEUE_ENTERED, {}),
            (EventKind.QUEUE_TIMEOUT, {}),
            (EventKind.ONCALL_DIALING, {"doctor": "patel", "role": "primary"}),
        ),
        Outcome.ENGINE_ERROR,
        None,
    ),
    (
        "operator answered in the queue",
        _events((R, {}), (EventKind.OPERATOR_ANSWERED, {"member": "PJSIP/op1"})),
        Outcome.ANSWERED_BY_OPERATOR,
        "PJSIP/op1",
    ),
    (
        "bridged with the on-call doctor, then more events",
        _events(
            (R, {}),
            (EventKind.BRIDGED, {"kind": "oncall", "target": "patel"}),
            (EventKind.CALLEE_HUNG_UP, {}),
        ),
        Outcome.ANSWERED_BY_ONCALL,
        "patel",
    ),
    (
        "bridged with the front desk",
        _events((R, {}), (EventKind.BRIDGED, {"kind": "staff", "target": "frontdesk"})),
        Outcome.ANSWERED_BY_STAFF,
        "frontdesk",
    ),
]


@pytest.mark.parametrize(
    ("events", "outcome", "answered_by"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_outcome_reached(events: list[Stamped], outcome: Outcome, answered_by: str | None) -> None:
    """Each event history closes with the outcome and the person it had reached."""
    reached = outcome_reached(events)
    assert (reached.outcome, reached.answered_by) == (outcome, answered_by)
    assert (reached.answered_at is not None) == outcome.answered


def test_outcome_vocabulary_is_the_issue_list() -> None:
    """The stored outcome strings include every one the issue names (a public format)."""
    required = {
        "answered_by_staff", "answered_by_operator", "answered_by_oncall", "abandoned_in_queue",
        "abandoned_while_ringing", "abandoned_during_announcement", "failed_over_to_dialplan",
        "unknown_did_routed", "engine_error",
    }  # fmt: skip
    assert required <= {o.value for o in Outcome}


def test_event_vocabulary_is_the_issue_list() -> None:
    """The stored event kinds include every one the issue names, plus engine_restarted."""
    required = {
        "received", "decided", "announcement_played", "staff_ringing", "queue_entered",
        "queue_timeout", "operator_answered", "oncall_dialing", "oncall_declined",
        "oncall_no_answer", "oncall_busy", "oncall_not_confirmed", "oncall_confirmed", "bridged",
        "caller_hung_up", "callee_hung_up", "ended", "engine_restarted",
    }  # fmt: skip
    assert required <= {k.value for k in EventKind}
