"""On-call shifts from an iCalendar feed (Amion, QGenda, Google Calendar, Outlook exports).

Pure: the feed's text in, concrete shifts out. Recurrences (RRULE, RDATE,
EXDATE), time zones (the feed's own VTIMEZONE, IANA or Windows names),
all-day events and floating times are expanded by the `icalendar` and
`recurring-ical-events` libraries over a window around the time the feed
was fetched; an event becomes a shift of the doctor it names:

* by e-mail: an ATTENDEE or ORGANIZER address equal to a doctor's `email`;
* else by name: every word of the doctor's name (titles such as "Dr." left
  out), or of one of their `aliases`, appears in the SUMMARY; else their
  surname alone, when no other doctor's surname appears too.

An event that names no doctor of the practice, or several, is a problem
`check` reports; it covers nobody. Cancelled events are left out.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

# How far around the fetch the feed is expanded: back far enough for
# `replay` of the last months' calls, ahead as far as anyone publishes call.
WINDOW_BEFORE = timedelta(days=120)
WINDOW_AFTER = timedelta(days=400)
# A longer "shift" is a data-entry mistake in the scheduling system, not call.
MAX_SHIFT = timedelta(days=14)
_TITLES = frozenset({"dr", "doctor", "md", "do", "mbbs", "phd", "np", "pa"})


class FeedError(Exception):
    """The text is not an iCalendar feed (the last good copy is kept)."""


@dataclass(frozen=True, slots=True)
class Shift:
    """A doctor on call from `start` to `end` (UTC), and the event that said so."""

    start: datetime
    end: datetime
    doctor: str
    summary: str


@dataclass(frozen=True, slots=True)
class Roster:
    """How the feed may name each doctor: names and aliases (as words), e-mail addresses."""

    names: Mapping[str, tuple[tuple[str, ...], ...]]  # doctor id -> word sets
    emails: Mapping[str, str]  # lowercase address -> doctor id
    surnames: Mapping[str, str]  # surname word -> doctor id (unique surnames only)


def words(text: str) -> tuple[str, ...]:
    """Lowercase words without punctuation or titles ("Dr. Patel, Priya" -> patel, priya)."""
    return tuple(w for w in re.findall(r"[^\W\d_]+", text.lower()) if w not in _TITLES)


def roster_of(doctors: Mapping[str, tuple[str, Iterable[str], str | None]]) -> Roster:
    """The matching rules for `{id: (name, aliases, email)}`."""
    names: dict[str, tuple[tuple[str, ...], ...]] = {}
    emails: dict[str, str] = {}
    surname_count: dict[str, list[str]] = {}
    for ident, (name, aliases, email) in doctors.items():
        sets = [words(name), *(words(a) for a in aliases)]
        names[ident] = tuple(s for s in sets if s)
        if email:
            emails[email.lower()] = ident
        if sets[0]:
            surname_count.setdefault(sets[0][-1], []).append(ident)
    surnames = {word: ids[0] for word, ids in surname_count.items() if len(ids) == 1}
    return Roster(names, emails, surnames)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A feed's shifts over the window, and what could not be used."""

    shifts: tuple[Shift, ...]
    problems: tuple[str, ...] = ()


def parse_feed(text: str, roster: Roster, zone: ZoneInfo, fetched_at: datetime) -> Parsed:
    """The shifts of an iCalendar text; raises FeedError when it is not one."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise FeedError(f"not an iCalendar feed ({_first_line(exc)})") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise FeedError("not an iCalendar feed (no VCALENDAR)")
    start = (fetched_at - WINDOW_BEFORE).astimezone(zone)
    end = (fetched_at + WINDOW_AFTER).astimezone(zone)
    try:
        events = list(recurring_ical_events.of(calendar).between(start, end))
    except Exception as exc:  # the library's errors for a broken rule are not one type
        raise FeedError(f"its events cannot be expanded ({_first_line(exc)})") from None
    shifts: list[Shift] = []
    problems: list[str] = []
    for event in events:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        summary = " ".join(str(event.get("SUMMARY", "")).split())[:120]
        try:
            begins, ends = _span(event, zone)
        except (ValueError, KeyError, TypeError):
            problems.append(f'event "{summary}" has no usable start and end; it is left out')
            continue
        when = f"{begins.astimezone(zone):%Y-%m-%d %H:%M}"
        if ends <= begins or ends - begins > MAX_SHIFT:
            problems.append(f'event "{summary}" ({when}) lasts {ends - begins}; it is left out')
            continue
        doctor, problem = _doctor_of(event, summary, roster)
        if doctor is None:
            problems.append(f'event "{summary}" ({when}) {problem}; it covers nobody')
            continue
        shifts.append(Shift(begins, ends, doctor, summary))
    shifts.sort(key=lambda s: (s.start, s.end, s.doctor))
    return Parsed(tuple(shifts), tuple(problems))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


def _instant(value: Any, zone: ZoneInfo) -> datetime:
    """A DTSTART/DTEND value as an instant: a date is local midnight, floating is local."""
    if isinstance(value, datetime):
        moment: datetime = value
        if moment.tzinfo is None or moment.utcoffset() is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    raise TypeError("not a date or a date-time")


def _span(event: Any, zone: ZoneInfo) -> tuple[datetime, datetime]:
    begins = _instant(event.decoded("DTSTART"), zone)
    if "DTEND" in event:
        return begins, _instant(event.decoded("DTEND"), zone)
    if "DURATION" in event:
        duration: timedelta = event.decoded("DURATION")
        return begins, begins + duration
    start = event.decoded("DTSTART")
    if isinstance(start, date) and not isinstance(start, datetime):
        return begins, _instant(start + timedelta(days=1), zone)  # an all-day event
    raise ValueError("no end")


def _addresses(event: Any) -> list[str]:
    found: list[str] = []
    for key in ("ATTENDEE", "ORGANIZER"):
        values = event.get(key)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            text = str(value).strip()
            if text.lower().startswith("mailto:"):
                found.append(text[7:].lower())
    return found


def _doctor_of(event: Any, summary: str, roster: Roster) -> tuple[str | None, str]:
    by_mail = {roster.emails[a] for a in _addresses(event) if a in roster.emails}
    if len(by_mail) == 1:
        return by_mail.pop(), ""
    said = set(words(summary))
    by_name = {
        ident for ident, sets in roster.names.items() if any(set(s) <= said for s in sets)
    }
    if not by_name:
        by_name = {ident for surname, ident in roster.surnames.items() if surname in said}
    if len(by_name) == 1:
        return by_name.pop(), ""
    if len(by_mail) > 1 or len(by_name) > 1:
        return None, f"names several doctors ({', '.join(sorted(by_mail | by_name))})"
    return None, "names no doctor of this practice"


# ------------------------------------------------------------------ lookup


@dataclass(frozen=True, slots=True)
class FeedState:
    """What routing knows of a practice's feed: its shifts, and whether they may be used.

    `usable` is False for a feed never fetched, or whose last good copy is
    older than the practice allows (stale): the YAML rotation answers then.
    """

    shifts: tuple[Shift, ...] = ()
    fetched_at: datetime | None = None
    usable: bool = False
    why_not: str = "the on-call feed was never fetched"
    problems: tuple[str, ...] = ()
    last_error: str | None = None
    _starts: tuple[datetime, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(s.start for s in self.shifts))

    def shift_at(self, instant: datetime) -> Shift | None:
        """The shift covering `instant`; where shifts overlap, the one that began last."""
        if not self.usable:
            return None
        moment = instant.astimezone(UTC)
        index = bisect.bisect_right(self._starts, moment)
        for candidate in reversed(self.shifts[max(0, index - 64) : index]):
            if candidate.start <= moment < candidate.end:
                return candidate
            if moment - candidate.start > MAX_SHIFT:
                break
        return None

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """Shift starts and ends within [start, end): where the answer may change."""
        if not self.usable:
            return []
        low, high = start.astimezone(UTC), end.astimezone(UTC)
        return [
            moment
            for shift in self.shifts
            if shift.start < high and shift.end > low - MAX_SHIFT
            for moment in (shift.start, shift.end)
            if low <= moment < high
        ]


def state_of(roster: Any) -> FeedState | None:
    """The feed state the loader attached to an on-call roster, if any."""
    state = getattr(roster, "_feed_state", None)
    return state if isinstance(state, FeedState) else None
