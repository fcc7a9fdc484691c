"""The live board's fold: each journey event moves the call to the phase an operator would name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from coverage_engine.config import load_config
from coverage_engine.journey import Stamped, parse_event
from coverage_engine.web.board import LiveCall, Paging, fold, initials, start
from coverage_engine.web.practices import ConfigDirectory
from tests.unit.console_support import NIGHT, ROOT

DIRECTORY = ConfigDirectory(load_config(ROOT / "config" / "coverage.yaml"))
DECIDED = ("decided", {"practice": "maple-grove", "status": "closed", "reason": "after hours"})


def call_after(*events: tuple[str, dict[str, Any]]) -> LiveCall:
    call = start(
        "c1",
        caller_number="+15557654321",
        caller_name="JONES MARY",
        did="+13125550100",
        started_at=NIGHT,
    )
    return fold(
        call,
        [
            Stamped(NIGHT + timedelta(seconds=i), parse_event(k, d))
            for i, (k, d) in enumerate(events, start=1)
        ],
    )


@pytest.mark.parametrize(
    ("events", "label"),
    [
        ([], "arriving"),
        ([DECIDED], "announcement"),
        ([DECIDED, ("announcement_played", {})], "starting"),
        ([DECIDED, ("queue_entered", {"queue": "answering"})], "in queue"),
        ([DECIDED, ("oncall_dialing", {"doctor": "nguyen"})], "ringing Dr. Minh Nguyen"),
        (
            [
                DECIDED,
                ("oncall_dialing", {"doctor": "nguyen"}),
                ("oncall_answered", {"doctor": "nguyen"}),
            ],
            "confirming Dr. Minh Nguyen (press 1)",
        ),
        (
            [
                DECIDED,
                ("oncall_dialing", {"doctor": "nguyen"}),
                ("oncall_no_answer", {"doctor": "nguyen"}),
            ],
            "escalating",
        ),
        (
            [
                DECIDED,
                ("oncall_dialing", {"doctor": "okafor"}),
                ("oncall_confirmed", {"doctor": "okafor"}),
                ("bridged", {"kind": "oncall", "target": "okafor"}),
            ],
            "with Dr. Adaeze Okafor",
        ),
        (
            [
                DECIDED,
                ("queue_entered", {"queue": "answering"}),
                ("operator_answered", {"member": "PJSIP/operator2"}),
                ("bridged", {"kind": "operators", "target": "PJSIP/operator2"}),
            ],
            "with operator2",
        ),
        ([DECIDED, ("staff_ringing", {"target": "frontdesk-maple"})], "ringing front desk"),
        ([DECIDED, ("some_future_event", {"x": 1})], "announcement"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_event_moves_the_call_to_the_phase_people_name(
    events: list[tuple[str, dict[str, Any]]], label: str
) -> None:
    """The label after these events reads as the board shows it."""
    assert call_after(*events).label(DIRECTORY) == label


def test_the_waiting_time_stops_when_a_person_answers() -> None:
    """Waiting counts from arrival to the operator's answer, not on through the conversation."""
    call = call_after(
        DECIDED, ("queue_entered", {}), ("operator_answered", {"member": "PJSIP/operator1"})
    )
    row = call.to_json(DIRECTORY, now=NIGHT + timedelta(minutes=10), mask=lambda n: n[-4:])
    assert row["waiting_seconds"] == 3.0
    assert row["operator_phone"] == "operator1"


def test_an_ended_call_leaves_the_board() -> None:
    """`ended` marks the call for removal."""
    assert call_after(DECIDED, ("ended", {"outcome": "answered_by_operator"})).ended


@pytest.mark.parametrize(
    ("name", "shown"),
    [("JONES MARY", "J. M."), ("", ""), ("O'Brien, Pat Q Z", "O. P. Q."), ("123", "")],
)
def test_masked_names_keep_initials_only(name: str, shown: str) -> None:
    """Operators' boards show initials, never the whole name."""
    assert initials(name) == shown


PAGED_TO_OPERATORS = [
    ("page_requested", {"urgency": "urgent", "by": "olivia", "why": "taken urgent"}),
    ("page_sent", {"attempt": 1, "channel": "voice", "target": "primary", "doctor": "nguyen"}),
    ("page_escalated", {"attempt": 2, "target": "backup", "reason": "no acknowledgement"}),
    ("page_sent", {"attempt": 2, "channel": "voice", "target": "backup", "doctor": "okafor"}),
    ("page_escalated", {"attempt": 3, "target": "operators", "reason": "no acknowledgement"}),
]


def paging_after(*events: tuple[str, dict[str, Any]]) -> Paging:
    paging = Paging("c1", "maple-grove")
    for i, (kind, details) in enumerate(events, start=1):
        paging = paging.apply(Stamped(NIGHT + timedelta(minutes=i), parse_event(kind, details)))
    return paging


def test_a_page_nobody_acknowledges_becomes_an_alert_naming_who_was_paged() -> None:
    """Primary, then backup, then the operators: the board's banner names both doctors."""
    paging = paging_after(*PAGED_TO_OPERATORS)
    assert paging.alerting
    banner = paging.to_json(DIRECTORY, now=NIGHT + timedelta(minutes=17))
    assert banner["doctors"] == ["Dr. Minh Nguyen", "Dr. Adaeze Okafor"]
    assert (banner["urgency"], banner["minutes"]) == ("urgent", 12)


@pytest.mark.parametrize(
    "ending",
    [
        ("page_acknowledged", {"attempt": 3, "doctor": "okafor", "channel": "voice"}),
        ("message_acknowledged", {"by": "sam", "via": "console"}),
        ("page_cancelled", {"by": "olivia", "reason": "corrected to routine"}),
    ],
    ids=["doctor pressed 1", "practice acknowledged", "cancelled"],
)
def test_an_acknowledgement_or_cancellation_ends_the_alert(
    ending: tuple[str, dict[str, Any]],
) -> None:
    """Whoever acknowledges, the banner goes."""
    paging = paging_after(*PAGED_TO_OPERATORS, ending)
    assert not paging.alerting
    assert paging.done


def test_paging_that_has_not_reached_the_operators_is_no_alert() -> None:
    """While the doctors are still being paged, the operators need not act."""
    assert not paging_after(*PAGED_TO_OPERATORS[:3]).alerting
