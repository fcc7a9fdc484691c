"""The coverage calendar: for each day, the time ranges and who answers.

Pure. A day is cut at every instant where the answer can change (opening
ranges, partial-day holidays, overrides, swaps, the rotation handoff), each
piece is decided once with the routing core, and neighbours with the same
answer are merged. So the calendar can never disagree with `explain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from coverage_engine.config.model import WEEKDAYS, Practice, localize
from coverage_engine.plan import Plan, StepKind
from coverage_engine.routing import decide_for_practice
from coverage_engine.schedule.feed import state_of
from coverage_engine.schedule.holidays import holidays_on
from coverage_engine.wallclock import wall_time_instant


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of a day with one answer."""

    start: datetime
    end: datetime
    plan: Plan

    @property
    def gap(self) -> bool:
        """True when no staffed person is at the end of the chain (see `gap_reason`)."""
        return is_gap(self.plan)


@dataclass(frozen=True, slots=True)
class DayCoverage:
    """One local day of the calendar."""

    day: date
    segments: tuple[Segment, ...]

    @property
    def gaps(self) -> tuple[Segment, ...]:
        """The segments where no person is reachable."""
        return tuple(s for s in self.segments if s.gap)


def is_gap(plan: Plan) -> bool:
    """True when no staffed person is at the end of the plan's chain."""
    return gap_reason(plan) is not None


def gap_reason(plan: Plan) -> str | None:
    """Why nobody staffed is at the end of the chain, or None when somebody is.

    The chain's end is what must never fail: a staffed operator queue, or
    the practice's final fallback (another answering service, assumed to be
    staffed around the clock). A doctor or the front desk can go unanswered.
    """
    if not plan.steps:
        return "the plan has no step"
    if plan.feed_gap is not None:
        return f"{plan.feed_gap} (the YAML rotation answers instead)"
    last = plan.steps[-1]
    if last.kind is StepKind.FALLBACK:
        return None
    if last.kind is not StepKind.OPERATORS:
        return f"the chain ends with {last.kind.value}, who may not answer"
    if not plan.operators_staffed:
        return (
            f"the chain ends at queue {last.target}, which nobody staffs then "
            "(operators.staffed), and no final fallback is named"
        )
    return None


def _cuts(practice: Practice, day: date) -> list[datetime]:
    """Every instant of `day` where the answer might change."""
    zone = practice.zone
    minutes: set[int] = {0}
    for r in practice.hours.for_weekday(day.weekday()):
        minutes.update((r.start, r.end))
    for hit in holidays_on(practice.holidays, day):
        minutes.update(m for m in (hit.opens_at, hit.closes_at) if m is not None)
    if practice.operators.staffed is not None:
        for r in practice.operators.staffed.for_weekday(day.weekday()):
            minutes.update((r.start, r.end))
    roster = practice.oncall
    rotation = roster.rotation if roster is not None else None
    if rotation is not None and WEEKDAYS[day.weekday()] == rotation.handoff.weekday:
        minutes.add(rotation.handoff.time)
    cuts = {wall_time_instant(day, m, zone) for m in minutes}
    # A time in the repeated hour happens twice; office hours follow the wall
    # clock, so its second reading (fold=1) is a cut too.
    cuts.update(
        datetime.combine(day, time(m // 60, m % 60, fold=1), tzinfo=zone).astimezone(UTC)
        for m in minutes
        if m < 24 * 60
    )
    moments = [m for o in practice.overrides for m in (o.start, o.until)]
    if roster is not None:
        moments += [m for s in roster.swaps for m in (s.start, s.until)]
    cuts.update(localize(m, zone).astimezone(UTC) for m in moments)
    state = state_of(roster) if roster is not None and roster.feed is not None else None
    if state is not None:
        day_start = wall_time_instant(day, 0, zone)
        cuts.update(state.boundaries(day_start, wall_time_instant(day, 24 * 60, zone)))
    start, end = wall_time_instant(day, 0, zone), wall_time_instant(day, 24 * 60, zone)
    if start.astimezone(zone).utcoffset() != end.astimezone(zone).utcoffset():
        # A DST day: when the clock jumps, wall-clock rules can change their
        # answer at an instant that is no time written in the file (falling
        # back to 01:00 reopens a range that ended at 01:30). Cut every
        # quarter hour so the calendar still agrees with `explain`.
        cuts.update(start + timedelta(minutes=q) for q in range(0, 25 * 60, 15))
    # All in UTC: Python compares two datetimes of one zone by wall clock,
    # which is wrong in the repeated hour.
    return sorted(c for c in cuts if start <= c < end)


def _signature(plan: Plan) -> tuple[object, ...]:
    return (
        plan.status,
        plan.reason,
        plan.steps,
        plan.oncall,
        plan.announcement,
        plan.notes,
        plan.operators_staffed,
        plan.feed_gap,
    )


def day_coverage(practice: Practice, day: date) -> DayCoverage:
    """Who answers, piece by piece, over one local day."""
    zone = practice.zone
    cuts = _cuts(practice, day)
    day_end = wall_time_instant(day, 24 * 60, zone)
    segments: list[Segment] = []
    for start, end in zip(cuts, [*cuts[1:], day_end], strict=True):
        plan = decide_for_practice(practice, start)
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        if segments and _signature(segments[-1].plan) == _signature(plan):
            segments[-1] = Segment(segments[-1].start, local_end, segments[-1].plan)
        else:
            segments.append(Segment(local_start, local_end, plan))
    return DayCoverage(day, tuple(segments))


def coverage_calendar(practice: Practice, first_day: date, days: int) -> list[DayCoverage]:
    """`days` consecutive local days of coverage from `first_day`."""
    return [day_coverage(practice, first_day + timedelta(days=i)) for i in range(days)]
