"""Times as an admin types them for a change: `now`, `17:30`, `+4h`, `2027-01-26 06:00`."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from coverage_engine.config.model import check_day_in_range, localize
from coverage_engine.config.text import show
from coverage_engine.wallclock import wall_time_note

_RELATIVE = re.compile(r"\+(\d{1,5})\s*(m|min|h|d)")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days"}


def parse_when(text: str, zone: ZoneInfo, reference: datetime) -> tuple[datetime, str | None]:
    """An instant, and a note when a wall-clock time was in the DST gap or repeated hour.

    `now` is `reference`; `+90m`, `+4h`, `+2d` count from it; `HH:MM` is the
    next time the practice's clock reads it, at or after `reference`; a date
    and time without an offset is the practice's local time. Raises
    ValueError with a message for the admin.
    """
    raw = text.strip()
    if raw.lower() == "now":
        return reference, None
    relative = _RELATIVE.fullmatch(raw.lower())
    if relative:
        amount, unit = int(relative[1]), _UNITS[relative[2]]
        return reference + timedelta(**{unit: amount}), None
    clock = _CLOCK.fullmatch(raw)
    if clock:
        hours, minutes = int(clock[1]), int(clock[2])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{show(text)} is not a time of day (00:00 to 23:59)")
        day = reference.astimezone(zone).date()
        for offset in (0, 1, 2):
            # A wall-clock reading (naive on purpose): `localize` places it in the zone.
            wall = datetime.combine(day + timedelta(days=offset), time(hours, minutes))
            moment = localize(wall, zone)
            if moment >= reference:
                return moment, wall_time_note(wall, zone)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{show(text)} is not a time: write now, HH:MM, +90m, +4h, +2d, or a date and "
            "time like 2027-01-26 06:00"
        ) from None
    check_day_in_range(moment.date(), text)
    if moment.tzinfo is not None:
        return moment, None
    return localize(moment, zone), wall_time_note(moment, zone)
