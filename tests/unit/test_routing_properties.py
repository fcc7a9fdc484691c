"""Properties of the routing core over 2026-2028: a person always answers."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from coverage_engine.coverage import day_coverage
from coverage_engine.plan import StepKind
from coverage_engine.routing import decide, decide_for_practice
from tests.unit.reference import answer, reference_config

INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive; zone below)
    max_value=datetime(2028, 12, 31, 23, 59, 59),  # noqa: DTZ001
    timezones=st.just(UTC),
)
DIDS = st.sampled_from(
    [did for p in reference_config().practices.values() for did in p.dids] + ["+19995550000"]
)


@settings(max_examples=300, deadline=None)
@given(instant=INSTANTS, did=DIDS)
def test_every_plan_is_non_empty_and_ends_with_a_person(instant: datetime, did: str) -> None:
    """For any instant and any number, the plan has steps and its last one is the operators."""
    plan = decide(reference_config(), instant, did)
    assert plan.steps
    assert plan.steps[-1].kind is StepKind.OPERATORS
    assert all(step.ring_seconds > 0 for step in plan.steps)
    # Doctors are only ever rung with the press-1 guard against voicemail.
    assert all(step.confirm for step in plan.steps if step.kind is StepKind.ONCALL)
    if plan.known_did:
        assert plan.oncall is not None
        assert plan.oncall.primary != plan.oncall.backup


@settings(max_examples=40, deadline=None)
@given(instant=INSTANTS, practice_id=st.sampled_from(["maple-grove", "lakeside"]))
def test_calendar_agrees_with_decide(instant: datetime, practice_id: str) -> None:
    """The calendar segment holding an instant has exactly the plan decide() gives for it."""
    practice = reference_config().practices[practice_id]
    local = instant.astimezone(practice.zone)
    segments = day_coverage(practice, local.date()).segments
    holding = [s for s in segments if s.start <= instant < s.end]
    assert len(holding) == 1
    assert answer(holding[0].plan) == answer(decide_for_practice(practice, instant))
