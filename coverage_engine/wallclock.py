"""Turning a practice's wall-clock time on a date into an instant, DST included.

Twice a year a wall-clock time is not one instant: on spring-forward night
02:30 never happens, on fall-back night 01:30 happens twice. Something
scheduled for such a time (a rotation handoff, an opening) takes effect at
the first instant the clock reads that time or later: the first 01:30, and the
jump itself (03:00 new time) for 02:30.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_PRECISION = timedelta(milliseconds=1)


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (in UTC) at which the clock in `zone` reads `wall` (naive) or later."""
    wall = wall.replace(tzinfo=None, fold=0)
    # fold=0 is the earlier of two readings in the repeated hour.
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    # A time in the missing hour: the two readings straddle the jump; the
    # clock reads earlier than `wall` at `low` and later at `high`.
    low, high = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    while high - low > _PRECISION:
        middle = low + (high - low) / 2
        if _wall(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    # Offsets change on whole seconds; drop the search's leftover fraction.
    return high.replace(microsecond=0)


def wall_time_instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """`first_instant` of `day` at `minutes` after midnight (1440 is the next midnight)."""
    if minutes >= 24 * 60:
        day, minutes = day + timedelta(days=1), minutes - 24 * 60
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    return first_instant(wall, zone)


def wall_time_note(wall: datetime, zone: ZoneInfo) -> str | None:
    """What an admin should know about reading `wall` (naive) in `zone`, or None.

    In the missing hour the time never happens: it is read as the jump. In
    the repeated hour it happens twice: it is read as the first time, and an
    explicit offset picks the second.
    """
    wall = wall.replace(tzinfo=None, fold=0)
    first = first_instant(wall, zone)
    local = first.astimezone(zone)
    shown = wall.strftime("%Y-%m-%d %H:%M")
    if _wall(first, zone) != wall:
        return (
            f"{shown} does not exist in {zone.key} (the clocks jump forward that night); "
            f"read as {local:%H:%M %Z}, the first moment after it"
        )
    second = wall.replace(tzinfo=zone, fold=1)
    if second.utcoffset() != wall.replace(tzinfo=zone).utcoffset():
        return (
            f"{shown} happens twice in {zone.key} (the clocks go back that night); "
            f"read as the first, {local:%H:%M %Z} (UTC{_offset(local)}); for the second "
            f"write {wall:%Y-%m-%dT%H:%M}{_offset(second)}"
        )
    return None


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z")  # -0500
    return f"{text[:3]}:{text[3:]}"
