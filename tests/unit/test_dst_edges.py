"""Things scheduled inside the missing or the repeated DST hour, and the calendar there."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage_engine.config import CoverageConfig, load_text
from coverage_engine.config.model import localize
from coverage_engine.coverage import day_coverage
from coverage_engine.routing import decide, decide_for_practice
from coverage_engine.wallclock import wall_time_instant
from tests.unit.reference import answer

PRACTICE = """\
  {id}:
    name: {id}
    short_name: X
    dids: [{did}]
    timezone: America/Chicago
    hours:
      sunday: [{{start: {opens}, end: {closes}}}]
    operators: {{queue: answering}}
    oncall:
      doctors: {{a: {{name: Dr. A, endpoint: a}}, b: {{name: Dr. B, endpoint: b}}}}
      rotation: {{doctors: [a, b], handoff: {{weekday: sunday, time: {handoff}}},
                 anchor: {anchor}}}
    when_closed: {{policy: oncall_first}}
"""
SPRING_DID, FALL_DID = "+15550000001", "+15550000002"


@cache
def config() -> CoverageConfig:
    """Two practices: one scheduled inside the missing hour, one inside the repeated hour."""
    text = "engine: {default_route: {queue: answering}}\npractices:\n"
    text += PRACTICE.format(
        id="spring", did=SPRING_DID, opens="02:30", closes="04:00", handoff="02:30",
        anchor="2026-03-01",
    )  # fmt: skip
    text += PRACTICE.format(
        id="fall", did=FALL_DID, opens="01:00", closes="01:30", handoff="01:30",
        anchor="2026-10-25",
    )  # fmt: skip
    return load_text(text, "dst.yaml")


def utc(text: str) -> datetime:
    """An instant written in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("did", "instant", "status", "primary"),
    [
        # 2026-03-08: 02:00 CST jumps to 03:00 CDT at 08:00 UTC. 02:30 never
        # happens, so opening and handoff both take effect at the jump.
        (SPRING_DID, utc("2026-03-08 07:59:59"), "closed", "a"),
        (SPRING_DID, utc("2026-03-08 08:00"), "open", "b"),
        (SPRING_DID, utc("2026-03-08 08:59"), "open", "b"),  # 03:59 CDT
        (SPRING_DID, utc("2026-03-08 09:00"), "closed", "b"),  # 04:00 CDT
        # 2026-11-01: 02:00 CDT falls back to 01:00 CST at 07:00 UTC, so
        # 01:00-01:30 happens twice; the handoff happens at the first 01:30.
        (FALL_DID, utc("2026-11-01 05:59"), "closed", "a"),  # 00:59 CDT
        (FALL_DID, utc("2026-11-01 06:00"), "open", "a"),  # 01:00 CDT
        (FALL_DID, utc("2026-11-01 06:30"), "closed", "b"),  # 01:30 CDT
        (FALL_DID, utc("2026-11-01 07:00"), "open", "b"),  # 01:00 CST: the wall clock again
        (FALL_DID, utc("2026-11-01 07:29"), "open", "b"),  # no handing back to a
        (FALL_DID, utc("2026-11-01 07:30"), "closed", "b"),  # 01:30 CST
    ],
)
def test_schedule_inside_the_dst_hours(
    did: str, instant: datetime, status: str, primary: str
) -> None:
    """Hours follow the wall clock; the handoff happens once, at its first instant."""
    plan = decide(config(), instant, did)
    assert plan.status == status
    assert plan.oncall is not None
    assert plan.oncall.primary == primary


def test_wall_time_instant_maps_missing_and_repeated_times() -> None:
    """02:30 on spring night is the 03:00 jump; 01:30 on fall night is its first reading."""
    zone = config().practices["spring"].zone
    assert wall_time_instant(date(2026, 3, 8), 150, zone) == utc("2026-03-08 08:00")
    assert wall_time_instant(date(2026, 11, 1), 90, zone) == utc("2026-11-01 06:30")
    assert wall_time_instant(date(2026, 11, 1), 24 * 60, zone) == utc("2026-11-02 06:00")


def test_override_written_inside_the_missing_hour_starts_at_the_jump() -> None:
    """An override "from 2026-03-08 02:30" (no offset) starts when the clock jumps to 03:00."""
    zone = config().practices["spring"].zone
    assert localize(datetime(2026, 3, 8, 2, 30), zone) == utc("2026-03-08 08:00")  # noqa: DTZ001


DST_DAYS = [date(2026, 3, 8), date(2026, 11, 1), date(2027, 3, 14), date(2027, 11, 7)]


@settings(max_examples=60, deadline=None)
@given(
    day=st.sampled_from(DST_DAYS),
    seconds=st.integers(min_value=0, max_value=25 * 3600 - 1),
    practice_id=st.sampled_from(["spring", "fall"]),
)
def test_calendar_agrees_with_decide_on_dst_days(day: date, seconds: int, practice_id: str) -> None:
    """On DST days too, the calendar's range holding an instant has decide()'s plan."""
    practice = config().practices[practice_id]
    start = wall_time_instant(day, 0, practice.zone)
    instant = start + timedelta(seconds=seconds)
    end = wall_time_instant(day, 24 * 60, practice.zone)
    if instant >= end:  # a 23-hour day
        instant = end - timedelta(seconds=1)
    holding = [s for s in day_coverage(practice, day).segments if s.start <= instant < s.end]
    assert len(holding) == 1
    assert answer(holding[0].plan) == answer(decide_for_practice(practice, instant))
