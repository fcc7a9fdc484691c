"""Where a restarted call continues when the plan changed between decide and resume."""

from __future__ import annotations

import pytest

from coverage_engine.callflow.resume import format_tried, parse_tried, resume_index, step_keys
from coverage_engine.plan import Plan, Step, StepKind

FRONT = Step(StepKind.STAFF, "frontdesk-maple", "PJSIP/frontdesk-maple", 20)
QUEUE = Step(StepKind.OPERATORS, "answering", "answering", 90)
PATEL = Step(StepKind.ONCALL, "patel", "PJSIP/patel", 25, True, doctor_id="patel")
NGUYEN = Step(StepKind.ONCALL, "nguyen", "PJSIP/nguyen", 25, True, doctor_id="nguyen")
KIM = Step(StepKind.ONCALL, "kim", "PJSIP/kim", 25, True, doctor_id="kim")


def plan(*steps: Step) -> Plan:
    return Plan("maple-grove", "Maple Grove Pediatrics", "MGP", "closed", "night", steps)


def test_step_keys_name_people_and_number_repeats() -> None:
    """Keys say who a step reaches; a person met again later in the plan gets #2, #3."""
    assert step_keys(plan(QUEUE, PATEL, QUEUE, NGUYEN, QUEUE)) == (
        "operators/answering",
        "oncall/patel",
        "operators/answering#2",
        "oncall/nguyen",
        "operators/answering#3",
    )


def test_tried_keys_round_trip_through_the_channel_variable() -> None:
    """What the call writes to COVERAGE_TRIED reads back the same; empty means none."""
    keys = ("operators/answering", "oncall/patel")
    assert parse_tried(format_tried(keys)) == keys
    assert parse_tried("") == ()


# (why, the new plan, the keys tried before the restart, the step finished?,
#  the index to continue with in the new plan)
CASES = [
    (
        "same plan, back from the first queue: the primary doctor next",
        plan(QUEUE, PATEL, NGUYEN, QUEUE),
        ("operators/answering",),
        True,
        1,
    ),
    (
        "same plan, interrupted while the primary rang: ring the primary again",
        plan(QUEUE, PATEL, NGUYEN, QUEUE),
        ("operators/answering", "oncall/patel"),
        False,
        1,
    ),
    (
        "same plan, back from the final queue: every step done, the dialplan's safety net",
        plan(QUEUE, PATEL, NGUYEN, QUEUE),
        ("operators/answering", "oncall/patel", "oncall/nguyen", "operators/answering#2"),
        True,
        4,
    ),
    (
        "a reload dropped the early queue: the doctor is found one step up",
        plan(PATEL, NGUYEN, QUEUE),
        ("operators/answering", "oncall/patel"),
        False,
        0,
    ),
    (
        "a reload added an early queue: the doctor is found one step down",
        plan(QUEUE, PATEL, NGUYEN, QUEUE),
        ("oncall/patel",),
        False,
        1,
    ),
    (
        "the on-call handoff passed: the new primary was never tried, ring them",
        plan(QUEUE, KIM, NGUYEN, QUEUE),
        ("operators/answering", "oncall/patel"),
        False,
        1,
    ),
    (
        "the handoff passed after the backup was tried: the new primary, not the queue",
        plan(KIM, PATEL, QUEUE),
        ("oncall/patel", "oncall/nguyen"),
        True,
        0,
    ),
    (
        "a reload removed the doctor being rung and everyone left was tried: the operators",
        plan(PATEL, QUEUE),
        ("oncall/patel", "oncall/nguyen"),
        False,
        1,
    ),
    (
        "a reload emptied the chain down to the queue: the operators always remain",
        plan(QUEUE),
        ("staff/frontdesk-maple",),
        True,
        0,
    ),
    (
        "no keys at all (stopped before the first step started): the first step",
        plan(QUEUE, PATEL, NGUYEN, QUEUE),
        (),
        False,
        0,
    ),
]


@pytest.mark.parametrize(
    ("new_plan", "tried", "finished", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_resume_index_follows_the_steps_tried_not_the_old_index(
    new_plan: Plan, tried: tuple[str, ...], finished: bool, expected: int
) -> None:
    """The call continues after the step it had reached, wherever that step now sits."""
    assert resume_index(new_plan, tried, finished=finished) == expected
