"""Is the practice open at an instant, and why (or why not)?

Precedence, strongest first: an override; an all-day holiday; a partial-day
holiday (which trims the day's ranges); the weekly hours. Office hours are
local wall-clock times, so the instant is converted to the practice's zone and
compared by minute of the day: across a DST change 08:00 stays 08:00, the
missing hour simply never occurs and the repeated hour gets the same answer
both times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from coverage_engine.config.model import Override, Practice, format_clock, localize
from coverage_engine.plan import Status
from coverage_engine.schedule.holidays import HolidayHit, holidays_on

Range = tuple[int, int]  # [start, end) in minutes since local midnight


@dataclass(frozen=True, slots=True)
class PracticeStatus:
    """Open or closed, with the reason an admin would give."""

    status: Status
    reason: str


def require_aware(instant: datetime) -> datetime:
    """The instant in UTC; naive datetimes are refused (a wall-clock time is ambiguous).

    Comparing in UTC matters: Python compares two datetimes that share a
    tzinfo by wall clock, which gets the repeated DST hour wrong.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant.isoformat()} has no time zone")
    return instant.astimezone(UTC)


def active_override(practice: Practice, instant: datetime) -> Override | None:
    """The first override (in file order) covering the instant."""
    zone = practice.zone
    for override in practice.overrides:
        if localize(override.start, zone) <= instant < localize(override.until, zone):
            return override
    return None


def day_ranges(practice: Practice, day_weekday: int, hits: tuple[HolidayHit, ...]) -> list[Range]:
    """The day's opening ranges after partial-day holidays trim them."""
    ranges = [(r.start, r.end) for r in practice.hours.for_weekday(day_weekday)]
    for hit in hits:
        low = hit.opens_at if hit.opens_at is not None else 0
        high = hit.closes_at if hit.closes_at is not None else 24 * 60
        ranges = [(max(s, low), min(e, high)) for s, e in ranges if min(e, high) > max(s, low)]
    return ranges


def practice_status(practice: Practice, instant: datetime) -> PracticeStatus:
    """Open or closed at `instant` (timezone-aware), and why."""
    instant = require_aware(instant)
    override = active_override(practice, instant)
    if override is not None:
        return PracticeStatus(override.status, f"override: {override.reason}")
    local = instant.astimezone(practice.zone)
    hits = holidays_on(practice.holidays, local.date())
    full = [h.name for h in hits if h.all_day]
    if full:
        return PracticeStatus("closed", "holiday: " + "; ".join(full))
    minute = local.hour * 60 + local.minute
    partial = [h for h in hits if not h.all_day]
    regular = day_ranges(practice, local.weekday(), ())
    ranges = day_ranges(practice, local.weekday(), tuple(partial))
    if any(start <= minute < end for start, end in ranges):
        if partial:
            return PracticeStatus("open", f"office hours ({_partial_note(partial)})")
        return PracticeStatus("open", "office hours")
    # Within the span the practice would normally be open (lunch included),
    # the partial-day holiday is the reason; after the normal close it is not.
    if partial and regular and regular[0][0] <= minute < regular[-1][1]:
        return PracticeStatus("closed", "holiday: " + "; ".join(_closed_note(h) for h in partial))
    if any(end <= minute for _, end in ranges) and any(minute < start for start, _ in ranges):
        return PracticeStatus("closed", "lunch")
    return PracticeStatus("closed", "outside hours")


def _closed_note(hit: HolidayHit) -> str:
    if hit.closes_at is not None and hit.opens_at is not None:
        hours = f"open only {format_clock(hit.opens_at)}-{format_clock(hit.closes_at)}"
        return f"{hit.name} ({hours})"
    if hit.closes_at is not None:
        return f"{hit.name} (closed from {format_clock(hit.closes_at)})"
    return f"{hit.name} (closed until {format_clock(hit.opens_at or 0)})"


def _partial_note(hits: list[HolidayHit]) -> str:
    parts = []
    for hit in hits:
        if hit.closes_at is not None and hit.opens_at is not None:
            parts.append(
                f"{hit.name}, open {format_clock(hit.opens_at)}-{format_clock(hit.closes_at)}"
            )
        elif hit.closes_at is not None:
            parts.append(f"{hit.name}, closes at {format_clock(hit.closes_at)}")
        elif hit.opens_at is not None:
            parts.append(f"{hit.name}, opens at {format_clock(hit.opens_at)}")
    return "; ".join(parts)
