"""Where two configurations' coverage calendars differ, day by day. Pure.

Both calendars are built by the same code as `calendar` (so a difference is
one `explain` would show); each day is cut wherever either calendar changes,
and neighbouring pieces with the same pair of answers are joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from coverage_engine.config import CoverageConfig, Practice
from coverage_engine.coverage import DayCoverage, Segment, coverage_calendar, gap_reason
from coverage_engine.plan import Plan


@dataclass(frozen=True, slots=True)
class Side:
    """One calendar's answer over a stretch."""

    status: str
    reason: str
    people: tuple[str, ...]
    oncall: str
    gap: str | None

    @classmethod
    def of(cls, plan: Plan) -> Side:
        people = tuple(
            f"{s.target} {s.ring_seconds}s{' press-1' if s.confirm else ''}" for s in plan.steps
        )
        oncall = ""
        if plan.oncall is not None:
            oncall = f"{plan.oncall.primary} (backup {plan.oncall.backup or 'none'})"
        return cls(plan.status, plan.reason, people, oncall, gap_reason(plan))

    def differs(self, other: Side) -> bool:
        return (self.status, self.people, self.oncall, self.gap is None) != (
            other.status,
            other.people,
            other.oncall,
            other.gap is None,
        )


@dataclass(frozen=True, slots=True)
class Difference:
    """A stretch of one local day where the two calendars answer differently."""

    day: date
    start: datetime
    end: datetime
    old: Side
    new: Side


@dataclass(frozen=True, slots=True)
class PracticeDiff:
    """The differences for one practice; `only_in` names a practice one file lacks."""

    practice: str
    name: str
    timezone: str
    differences: tuple[Difference, ...] = ()
    only_in: str | None = None  # "old" or "new"


def diff_configs(
    old: CoverageConfig, new: CoverageConfig, first_day: date, days: int
) -> list[PracticeDiff]:
    """Every practice of either file, with where its calendar changes."""
    result: list[PracticeDiff] = []
    for key in [*old.practices, *(k for k in new.practices if k not in old.practices)]:
        before, after = old.practice(key), new.practice(key)
        if before is None or after is None:
            shown = after if before is None else before
            assert shown is not None  # one of them has it: the key came from a file
            side = "new" if before is None else "old"
            result.append(PracticeDiff(key, shown.name, shown.timezone, only_in=side))
            continue
        found = tuple(_practice_differences(before, after, first_day, days))
        result.append(PracticeDiff(key, after.name, after.timezone, found))
    return result


def _practice_differences(
    before: Practice, after: Practice, first_day: date, days: int
) -> list[Difference]:
    olds = coverage_calendar(before, first_day, days)
    news = coverage_calendar(after, first_day, days)
    found: list[Difference] = []
    for old_day, new_day in zip(olds, news, strict=True):
        for start, end, old, new in _pieces(old_day, new_day):
            if not old.differs(new):
                continue
            last = found[-1] if found else None
            if (
                last is not None
                and last.day == old_day.day
                and last.end.astimezone(UTC) == start.astimezone(UTC)
                and (last.old, last.new) == (old, new)
            ):
                found[-1] = Difference(last.day, last.start, end, old, new)
            else:
                found.append(Difference(old_day.day, start, end, old, new))
    return found


def _pieces(old: DayCoverage, new: DayCoverage) -> list[tuple[datetime, datetime, Side, Side]]:
    """The day cut at both calendars' boundaries, with each side's answer per piece.

    Compared in UTC: two datetimes of one zone compare by wall clock, which
    is wrong in the repeated hour.
    """
    zone = old.segments[0].start.tzinfo
    starts = {s.start.astimezone(UTC) for s in (*old.segments, *new.segments)}
    cuts = sorted(starts)
    end = old.segments[-1].end.astimezone(UTC)
    pieces = []
    for start, stop in zip(cuts, [*cuts[1:], end], strict=True):
        pieces.append(
            (
                start.astimezone(zone),
                stop.astimezone(zone),
                Side.of(_at(old, start).plan),
                Side.of(_at(new, start).plan),
            )
        )
    return pieces


def _at(day: DayCoverage, moment: datetime) -> Segment:
    for segment in day.segments:
        if segment.start.astimezone(UTC) <= moment < segment.end.astimezone(UTC):
            return segment
    return day.segments[-1]


def span_text(difference: Difference) -> str:
    """`HH:MM-HH:MM` on the difference's own day (midnight at its end is 24:00)."""
    end = "24:00" if difference.end.date() > difference.day else difference.end.strftime("%H:%M")
    return f"{difference.start:%H:%M}-{end}"


def last_day(first_day: date, days: int) -> date:
    return first_day + timedelta(days=days - 1)
