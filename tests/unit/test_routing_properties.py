"""Properties of the routing core over 2026-2028: a person always answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage_engine.config import ConfigError, load_text
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


STEP = st.sampled_from(["staff", "operators", "oncall_primary", "oncall_backup"])


def chain_yaml(chain: list[str], confirm: list[bool]) -> str:
    """A chain as YAML flow mappings."""
    return ", ".join(
        f"{{to: {to}}}" if to in ("operators", "staff") else f"{{to: {to}, confirm: {c}}}"
        for to, c in zip(chain, confirm, strict=True)
    )


@settings(max_examples=60, deadline=None)
@given(
    open_chain=st.lists(STEP, min_size=1, max_size=5),
    closed_chain=st.lists(STEP, min_size=1, max_size=5),
    confirms=st.lists(st.booleans(), min_size=5, max_size=5),
    doctors=st.integers(min_value=1, max_value=3),
    instant=INSTANTS,
)
def test_any_loadable_chain_ends_with_a_person(
    open_chain: list[str],
    closed_chain: list[str],
    confirms: list[bool],
    doctors: int,
    instant: datetime,
) -> None:
    """A chain not ending at operators is refused; any other loads and ends at a person."""
    ids = ["a", "b", "c"][:doctors]
    text = f"""\
engine: {{default_route: {{queue: answering}}}}
practices:
  p:
    name: P
    short_name: P
    dids: [+15550001111]
    timezone: America/Denver
    hours: {{monday: [{{start: 08:00, end: 17:00}}], tuesday: [{{start: 08:00, end: 12:00}}]}}
    staff: {{endpoint: desk}}
    operators: {{queue: answering}}
    oncall:
      doctors: {{{", ".join(f"{d}: {{name: Dr. {d}, endpoint: {d}}}" for d in ids)}}}
      rotation: {{doctors: [{", ".join(ids)}], handoff: {{weekday: monday, time: 08:00}},
                 anchor: 2026-11-02}}
    when_open: {{chain: [{chain_yaml(open_chain, confirms[: len(open_chain)])}]}}
    when_closed: {{chain: [{chain_yaml(closed_chain, confirms[: len(closed_chain)])}]}}
"""
    if open_chain[-1] != "operators" or closed_chain[-1] != "operators":
        with pytest.raises(ConfigError, match="last step must be operators"):
            load_text(text, "random.yaml")
        return
    config = load_text(text, "random.yaml")  # any chain ending at operators is fine
    plan = decide(config, instant, "+15550001111")
    assert plan.steps
    assert plan.steps[-1].kind is StepKind.OPERATORS
