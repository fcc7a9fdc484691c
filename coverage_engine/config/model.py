"""The coverage configuration as a strict, immutable model.

Each class mirrors one YAML mapping (docs/configuration.md is the reference of
every key). Field-level checks live here, so pydantic reports all of them at
once with their key paths; checks that relate one part of the file to another
(a doctor named in a rotation must be defined, a DID belongs to one practice)
live in `semantics.py`, which runs on the validated model.

Values arrive as text (see `yamlsource`): the parsers below turn "17:30" into
minutes, "2026-12-24 12:00" into a datetime, and say what is wrong in words a
clinic admin understands when they cannot.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import holidays as holidays_lib
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from coverage_engine.config.numbers import normalize_number, supported_region
from coverage_engine.config.text import show as _show
from coverage_engine.wallclock import first_instant

WEEKDAYS: tuple[str, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MINUTES_PER_DAY = 24 * 60
# Dates the file and the commands accept. Far enough either way for any
# schedule; near enough that converting between time zones never leaves
# what Python's datetime can hold (year 1 to 9999), which would crash.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2199, 12, 31)


def check_day_in_range(day: date, value: object) -> None:
    """Refuse a date outside FIRST_DAY..LAST_DAY with a message naming the value."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{_show(value)} is out of range: dates go from {FIRST_DAY} to {LAST_DAY}")


def format_clock(minutes: int) -> str:
    """Minutes since midnight as HH:MM (1440 is 24:00, the end of the day)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def localize(moment: datetime, zone: ZoneInfo) -> datetime:
    """A config datetime without an offset is wall-clock time at the practice.

    It means the first instant the clock there reads that time, like every
    other scheduled time (see `wallclock`).
    """
    return moment if moment.tzinfo is not None else first_instant(moment, zone)


# --- scalar parsers -------------------------------------------------------------

_HH_MM_RE = re.compile(r"(\d{1,2}):(\d{2})")


def _parse_minute_of_day(value: object) -> int:
    if isinstance(value, time):
        return value.hour * 60 + value.minute
    if isinstance(value, str):
        match = _HH_MM_RE.fullmatch(value.strip())
        if match:
            hours, minutes = int(match[1]), int(match[2])
            if (hours < 24 and minutes < 60) or (hours == 24 and minutes == 0):
                return hours * 60 + minutes
    raise ValueError(f"{_show(value)} is not a time (write HH:MM, from 00:00 to 24:00)")


def _parse_date(value: object) -> date:
    parsed: date | None = None
    if isinstance(value, date) and not isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = date.fromisoformat(value.strip())
    if parsed is not None:
        check_day_in_range(parsed, value)
        return parsed
    raise ValueError(f"{_show(value)} is not a date (write YYYY-MM-DD, e.g. 2026-12-24)")


def _parse_datetime(value: object) -> datetime:
    """A date and time; without an offset it is read in the practice's time zone later."""
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0))  # localized later, in the practice zone
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:  # a bare date means midnight at its start
                parsed = datetime.combine(date.fromisoformat(text), time(0))
            else:
                parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
    if parsed is not None:
        check_day_in_range(parsed.date(), value)
        return parsed
    raise ValueError(
        f"{_show(value)} is not a date and time (write YYYY-MM-DD HH:MM, "
        "optionally with an offset like -06:00)"
    )


def _parse_month_day(value: object) -> tuple[int, int]:
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", value.strip())
        if match:
            month, day = int(match[1]), int(match[2])
            try:
                date(2024, month, day)  # a leap year, so 02-29 is accepted
            except ValueError:
                pass
            else:
                return (month, day)
    raise ValueError(f"{_show(value)} is not a month and day (write MM-DD, e.g. 12-25)")


def _pattern(regex: str, problem: str) -> AfterValidator:
    """A validator accepting text that matches `regex` whole; else '"value" {problem}'."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value) or ".." in value:
            raise ValueError(f"{_show(value)} {problem}")
        return value

    return AfterValidator(check)


E164 = Annotated[
    str,
    _pattern(
        r"\+[1-9]\d{6,14}",
        "is not an E.164 phone number (write + then country code and number, digits only, "
        "e.g. +13125550100)",
    ),
]
# Names that end up inside an Asterisk dial string or application argument.
# Only these characters: nothing a typo or a caller could use to add a second
# outbound leg (`&`), an option or argument (`,`, `|`, `(`, `)`), a variable
# (`$`, `{`), or a path (`/`, `..`).
SafeName = Annotated[
    str,
    _pattern(
        r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}",
        "cannot be used in a dial string: use only letters, digits, '-', '_', '.' and '+' "
        "(no '&', ',', '(', ')', '|', '/', spaces)",
    ),
]
# Sound names are file names under Asterisk's sounds directory, so a '/' for a
# subfolder is fine, but not '..' or an absolute path.
SoundName = Annotated[
    str,
    _pattern(
        r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*",
        'is not an Asterisk sound name (letters, digits, "-", "_", subfolders with "/", '
        "no extension, e.g. custom/coverage-emergency)",
    ),
]
Ident = Annotated[
    str,
    _pattern(
        r"[a-z0-9][a-z0-9_-]{0,39}",
        'is not a valid id (lowercase letters, digits, "-" and "_", starting with a letter '
        "or digit)",
    ),
]
ShortName = Annotated[
    str,
    _pattern(
        r"[A-Za-z0-9][A-Za-z0-9 _-]{0,11}",
        'is not a short name (1 to 12 letters, digits, spaces, "-" or "_", e.g. "MGP")',
    ),
]


def _check_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("must be a single line of text")
    return value


CARD_TEXT_MAX = 2000


def _check_card_text(value: str) -> str:
    # Several lines are fine (an operator's script); other control characters,
    # and bidi controls that would reorder what the operator reads, are not.
    if not value.strip():
        raise ValueError("must not be empty")
    if len(value) > CARD_TEXT_MAX:
        raise ValueError(f"is too long ({len(value)} characters; at most {CARD_TEXT_MAX})")
    if any((ord(ch) < 32 and ch not in "\n\t") or 0x202A <= ord(ch) <= 0x202E
           or 0x2066 <= ord(ch) <= 0x2069 for ch in value):  # fmt: skip
        raise ValueError("must be plain text (no control characters)")
    return value.strip()


@cache
def _zone_names() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def _check_timezone(value: str) -> str:
    # Only names from the IANA database (shipped by tzdata), never a file
    # path or a machine's "localtime": the same file must mean the same
    # thing on every machine.
    if value not in _zone_names():
        raise ValueError(
            f"{_show(value)} is not an IANA time zone (e.g. America/Chicago, "
            "America/Los_Angeles, Europe/Paris)"
        )
    return value


def _check_record_path(value: str) -> str:
    if not value.strip() or "\x00" in value or any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{_show(value)} is not a usable file path")
    return value


_PG_URL = re.compile(r"postgres(ql)?://[^\s]+")
# user:password@ in the authority, or a password= parameter.
_PG_PASSWORD = re.compile(r"^[a-z]+://[^/@]*:[^/@]*@|[?&]password=", re.IGNORECASE)


def _check_records_url(value: str) -> str:
    if not _PG_URL.fullmatch(value):
        raise ValueError(
            f"{_show(value)} is not a PostgreSQL URL (postgresql://user@host:5432/database)"
        )
    if _PG_PASSWORD.search(value):
        raise ValueError(
            "the URL holds a password: remove it and put it in the engine user's ~/.pgpass "
            "(or the file PGPASSFILE names), mode 0600"
        )
    return value


def _none_is_empty(value: object) -> object:
    """`monday:` with nothing after it (or `closed`) means no ranges that day."""
    if value is None or value == "closed":
        return ()
    return value


# A time of day at the practice, written HH:MM, held as minutes since midnight
# (0..1440; 24:00 ends a day). Not a clock: nothing here reads the time.
MinuteOfDay = Annotated[int, BeforeValidator(_parse_minute_of_day)]
LocalDate = Annotated[date, BeforeValidator(_parse_date)]
LocalDateTime = Annotated[datetime, BeforeValidator(_parse_datetime)]
MonthDay = Annotated[tuple[int, int], BeforeValidator(_parse_month_day)]
Text = Annotated[str, AfterValidator(_check_text)]
CardText = Annotated[str, AfterValidator(_check_card_text)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Seconds = Annotated[int, Field(ge=1, le=3600)]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class Frozen(BaseModel):
    """Base: unknown keys are errors and nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- office hours -----------------------------------------------------------------


class TimeRange(Frozen):
    """One opening range in local wall-clock time, [start, end)."""

    start: MinuteOfDay
    end: MinuteOfDay

    @model_validator(mode="after")
    def _end_after_start(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError(
                f"end {format_clock(self.end)} is not after start {format_clock(self.start)}"
            )
        return self

    def __str__(self) -> str:
        return f"{format_clock(self.start)}-{format_clock(self.end)}"


DayRanges = Annotated[tuple[TimeRange, ...], BeforeValidator(_none_is_empty)]


class WeekHours(Frozen):
    """Opening ranges per weekday; a day left out is closed all day."""

    monday: DayRanges = ()
    tuesday: DayRanges = ()
    wednesday: DayRanges = ()
    thursday: DayRanges = ()
    friday: DayRanges = ()
    saturday: DayRanges = ()
    sunday: DayRanges = ()

    @field_validator(*WEEKDAYS)
    @classmethod
    def _no_overlap(cls, ranges: tuple[TimeRange, ...]) -> tuple[TimeRange, ...]:
        ordered = sorted(ranges, key=lambda r: r.start)
        for before, after in itertools.pairwise(ordered):
            if after.start < before.end:
                raise ValueError(f"ranges {before} and {after} overlap")
        return tuple(ordered)

    def for_weekday(self, weekday: int) -> tuple[TimeRange, ...]:
        """Ranges for `date.weekday()` (0 is Monday)."""
        ranges: tuple[TimeRange, ...] = getattr(self, WEEKDAYS[weekday])
        return ranges


# --- holidays ---------------------------------------------------------------------


class HolidayRule(Frozen):
    """A day the practice closes (all day, or from/until a time).

    Exactly one of: `fixed` (every year on MM-DD), `date` (once), `easter`
    (days from Easter Sunday), `nth` + `weekday` + `month` (4th Thursday of
    November; -1 is the last).
    """

    name: Text
    fixed: MonthDay | None = None
    date: LocalDate | None = None
    easter: int | None = Field(default=None, ge=-100, le=100)
    nth: int | None = Field(default=None, ge=-5, le=5)
    weekday: Weekday | None = None
    month: int | None = Field(default=None, ge=1, le=12)
    offset_days: int = Field(default=0, ge=-31, le=31)
    observed: bool | None = None
    closes_at: MinuteOfDay | None = None
    opens_at: MinuteOfDay | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HolidayRule:
        kinds = [k for k in ("fixed", "date", "easter", "nth") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of fixed (MM-DD every year), date (YYYY-MM-DD once), "
                f"easter (days from Easter Sunday) or nth (with weekday and month); got {kinds}"
            )
        if self.nth is not None:
            if self.nth == 0:
                raise ValueError("nth is 1 to 5 (1st to 5th) or -1 to -5 (last to 5th-last)")
            if self.weekday is None or self.month is None:
                raise ValueError("nth needs a weekday and a month (e.g. 4th thursday of 11)")
        elif self.weekday is not None or self.month is not None:
            raise ValueError("weekday and month belong to an nth rule only")
        if (
            self.closes_at is not None
            and self.opens_at is not None
            and self.closes_at <= self.opens_at
        ):
            raise ValueError("closes_at must be after opens_at")
        return self

    @property
    def partial(self) -> bool:
        """True when the practice is open part of that day."""
        return self.closes_at is not None or self.opens_at is not None


def _supported_countries() -> Mapping[str, list[str]]:
    result: Mapping[str, list[str]] = holidays_lib.list_supported_countries()
    return result


class NationalCalendar(Frozen):
    """Public holidays of a country (and subdivision) from the `holidays` package."""

    country: str
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known(self) -> NationalCalendar:
        supported = _supported_countries()
        if self.country not in supported:
            raise ValueError(
                f"{_show(self.country)} is not a country code the holidays calendar knows "
                "(use ISO 3166 alpha-2, e.g. US, CA, GB)"
            )
        if self.subdivision is not None and self.subdivision not in supported[self.country]:
            raise ValueError(
                f"{_show(self.subdivision)} is not a subdivision of {self.country} "
                f"(e.g. {', '.join(supported[self.country][:6])})"
            )
        return self


class Holidays(Frozen):
    """Days the practice is closed, on top of the weekly hours."""

    observed: bool = False
    national: NationalCalendar | None = None
    days: tuple[HolidayRule, ...] = ()


# --- overrides --------------------------------------------------------------------


class Override(Frozen):
    """'Closed (or open) from A until B, reason R': wins over everything else."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: LocalDateTime = Field(alias="from")
    until: LocalDateTime
    status: Literal["open", "closed"] = "closed"
    reason: Text
    # `oncall`: while it runs, calls go straight to the doctor on call
    # (primary, backup, then the operators) instead of the closed chain.
    route: Literal["oncall"] | None = None

    @model_validator(mode="after")
    def _route_when_closed(self) -> Override:
        if self.route is not None and self.status != "closed":
            raise ValueError("route: oncall is for a closed override (status: closed)")
        return self


# --- people -----------------------------------------------------------------------


class Reachable(Frozen):
    """How to reach a person: a PJSIP endpoint, or a number through a named trunk."""

    endpoint: SafeName | None = None
    number: E164 | None = None
    trunk: SafeName | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Reachable:
        if (self.endpoint is None) == (self.number is None):
            raise ValueError("give either endpoint (a PJSIP endpoint) or number (with trunk)")
        if self.number is not None and self.trunk is None:
            raise ValueError("a number needs the trunk (PJSIP endpoint) to send it through")
        if self.endpoint is not None and self.trunk is not None:
            raise ValueError("trunk goes with number, not with endpoint")
        return self

    @property
    def dial(self) -> str:
        """The Asterisk dial string, built from validated names only."""
        if self.endpoint is not None:
            return f"PJSIP/{self.endpoint}"
        return f"PJSIP/{self.number}@{self.trunk}"

    @property
    def external(self) -> bool:
        """True when the call leaves the PBX (a phone that may have voicemail)."""
        return self.number is not None

    @property
    def address(self) -> str:
        """The endpoint or number, as the admin wrote it."""
        return self.endpoint if self.endpoint is not None else str(self.number)


class Staff(Reachable):
    """The practice's own people while open (the front desk)."""

    name: Text = "front desk"
    ring_seconds: Seconds = 20


# One plain address, as feeds name doctors and as pages and alerts are sent to:
# no display name, no list, nothing a mail header could be split on (it goes
# into To: as it is), a domain of dot-separated labels.
_EMAIL = re.compile(
    r"[^@\s<>,;:\"']{1,64}@(?=[A-Za-z0-9.-]{4,190}$)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
)


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{_show(value)} is not an e-mail address (e.g. pager@example.org)")
    return value.lower()


Email = Annotated[str, AfterValidator(_check_email)]


class Doctor(Reachable):
    """A doctor who can be on call."""

    name: Text
    # How else to reach them, for the operator's screen (e.g. "cell +1 312 555 0199,
    # text first"): shown only, never dialed.
    contact: Text | None = None
    # How an on-call feed may name them: by e-mail (attendee, organizer) or
    # by other spellings of their name ("Patel, P").
    email: Email | None = None
    aliases: tuple[Text, ...] = ()


def _staffing(value: object) -> object:
    """`always` (None here) or weekly hours; an empty value is a mistake, not a choice."""
    if value == "always":
        return None
    if value is None or value == "":
        raise ValueError(
            "write always (the answering service is staffed around the clock) or the weekly "
            "hours it is staffed, like office hours"
        )
    return value


class Operators(Frozen):
    """The answering-service operator queue (an Asterisk app_queue queue)."""

    queue: SafeName
    max_wait_seconds: Seconds = 90
    whisper: SoundName | None = None  # played to the operator before bridging
    # With this many callers already waiting in the queue, a new caller skips
    # the operators step (needs AMI; see docs/operators.md). None: no limit.
    max_waiting_callers: Annotated[int, Field(ge=1, le=1000)] | None = None
    # When the answering service has people on the queue, in the practice's
    # local time; None is `always`. The gap finder uses it; live presence
    # (AMI) still decides each actual call.
    staffed: Annotated[WeekHours | None, BeforeValidator(_staffing)] = None

    def staffed_at(self, weekday: int, minute: int) -> bool:
        """Whether the queue is staffed at `minute` of a local day of `weekday` (0 is Monday)."""
        if self.staffed is None:
            return True
        return any(r.start <= minute < r.end for r in self.staffed.for_weekday(weekday))


class Fallback(Reachable):
    """The final fallback: another answering service, for when nobody takes the queue."""

    name: Text
    ring_seconds: Seconds = 60
    # Another answering service answers with a person; press 1 is available
    # for a line that might end in a voicemail.
    confirm: bool = False


# --- on call ----------------------------------------------------------------------


class Handoff(Frozen):
    """When the rotation passes to the next doctor, in the practice's local time."""

    weekday: Weekday
    time: MinuteOfDay

    @field_validator("time")
    @classmethod
    def _within_day(cls, minutes: int) -> int:
        if minutes >= MINUTES_PER_DAY:
            raise ValueError("a handoff time is at most 23:59")
        return minutes


class Rotation(Frozen):
    """Doctors take turns, `period_weeks` each, handing off at `handoff`."""

    doctors: tuple[Ident, ...]
    handoff: Handoff
    anchor: LocalDate  # a handoff date on which doctors[0] starts a turn
    period_weeks: int = Field(default=1, ge=1, le=8)

    @field_validator("doctors")
    @classmethod
    def _not_empty(cls, doctors: tuple[str, ...]) -> tuple[str, ...]:
        if not doctors:
            raise ValueError("a rotation needs at least one doctor")
        return doctors


class Swap(Frozen):
    """A doctor covers a period, whoever the rotation says (beats the rotation)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    doctor: Ident
    start: LocalDateTime = Field(alias="from")
    until: LocalDateTime
    backup: Ident | None = None
    reason: str = ""


def _check_feed_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/$.?#][^\s]{0,2000}", value):
        raise ValueError(f"{_show(value)} is not an http:// or https:// address")
    return value


class OnCallFeed(Frozen):
    """Where the on-call schedule is published as iCalendar, and how fresh it must be."""

    url: Annotated[str, AfterValidator(_check_feed_url)] | None = None
    path: Annotated[str, AfterValidator(_check_record_path)] | None = None
    refresh_minutes: int = Field(default=15, ge=1, le=1440)
    stale_after_hours: int = Field(default=24, ge=1, le=720)

    @model_validator(mode="after")
    def _one_source(self) -> OnCallFeed:
        if (self.url is None) == (self.path is None):
            raise ValueError("give either url (http:// or https://) or path (a file)")
        return self

    @property
    def source(self) -> str:
        return self.url if self.url is not None else str(self.path)


class OnCallRoster(Frozen):
    """The doctors and who of them is on call when."""

    doctors: dict[Ident, Doctor]
    rotation: Rotation | None = None
    primary: Ident | None = None  # a fixed primary, for a practice without a rotation
    # "next_in_rotation", "none", or a doctor id; default: next_in_rotation with
    # a rotation, none without.
    backup: str | None = None
    swaps: tuple[Swap, ...] = ()
    # The schedule published by the practice's scheduling system; the
    # rotation (or primary) above answers wherever it names nobody.
    feed: OnCallFeed | None = None
    # The feed's shifts as last fetched (schedule.feed.FeedState), attached
    # by the loader from the local copy: never written in the file.
    _feed_state: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _shape(self) -> OnCallRoster:
        if not self.doctors:
            raise ValueError("define at least one doctor")
        if (self.rotation is None) == (self.primary is None):
            raise ValueError("give either a rotation or a fixed primary doctor")
        return self

    @property
    def backup_rule(self) -> str:
        """The backup rule with its default applied."""
        if self.backup is not None:
            return self.backup
        return "next_in_rotation" if self.rotation is not None else "none"


# --- escalation -------------------------------------------------------------------

StepTo = Literal["staff", "operators", "oncall_primary", "oncall_backup", "doctor"]
DEFAULT_ONCALL_RING_SECONDS = 25


class ChainStep(Frozen):
    """One escalation step: who, how long, and whether they must press 1."""

    to: StepTo
    doctor: Ident | None = None
    ring_seconds: Seconds | None = None
    max_wait_seconds: Seconds | None = None
    confirm: bool | None = None

    @model_validator(mode="after")
    def _fields_fit(self) -> ChainStep:
        if (self.to == "doctor") != (self.doctor is not None):
            raise ValueError('"doctor" names the doctor of a `to: doctor` step, and only there')
        if self.to == "operators":
            if self.ring_seconds is not None:
                raise ValueError("an operators step waits max_wait_seconds, not ring_seconds")
            if self.confirm:
                raise ValueError("operators accept a call by answering; confirm is for phones")
        elif self.max_wait_seconds is not None:
            raise ValueError("max_wait_seconds is for operators steps; use ring_seconds")
        return self

    @property
    def reaches_doctor(self) -> bool:
        """True for steps that ring a doctor."""
        return self.to in ("oncall_primary", "oncall_backup", "doctor")

    @property
    def must_confirm(self) -> bool:
        """Confirm defaults to on for doctors: their phones may have voicemail."""
        if self.confirm is not None:
            return self.confirm
        return self.reaches_doctor


def _chain_not_empty(chain: tuple[ChainStep, ...]) -> tuple[ChainStep, ...]:
    if not chain:
        raise ValueError("the chain needs at least one step, ending with operators")
    return chain


# That a chain ends with the operators is checked in `semantics`, which can
# point at the offending last step's line.
Chain = Annotated[tuple[ChainStep, ...], AfterValidator(_chain_not_empty)]


class WhenOpen(Frozen):
    """What happens to a call while the practice is open."""

    chain: Chain


class WhenClosed(Frozen):
    """What happens to a call while the practice is closed."""

    announcement: SoundName | None = None  # e.g. "if this is an emergency, hang up and dial 911"
    policy: Literal["operators_first", "oncall_first"] | None = None
    oncall_ring_seconds: Seconds = DEFAULT_ONCALL_RING_SECONDS
    chain: Chain | None = None

    @model_validator(mode="after")
    def _policy_or_chain(self) -> WhenClosed:
        if (self.policy is None) == (self.chain is None):
            raise ValueError(
                "give either policy (operators_first or oncall_first) or an explicit chain"
            )
        return self

    @property
    def steps(self) -> tuple[ChainStep, ...]:
        """The explicit chain, or the one the policy stands for."""
        if self.chain is not None:
            return self.chain
        if self.policy == "operators_first":
            operators = ChainStep(to="operators")
            return (operators, *self.oncall_steps[:-1], operators)
        return self.oncall_steps

    @property
    def oncall_steps(self) -> tuple[ChainStep, ...]:
        """Straight to the doctors on call, then the operators (`oncall_first`)."""
        ring = self.oncall_ring_seconds
        return (
            ChainStep(to="oncall_primary", ring_seconds=ring, confirm=True),
            ChainStep(to="oncall_backup", ring_seconds=ring, confirm=True),
            ChainStep(to="operators"),
        )


# --- callers ----------------------------------------------------------------------


class CallerRule(Frozen):
    """Named callers (the hospital's ER, the practice's own clinicians) handled their own way."""

    name: Ident
    numbers: tuple[E164, ...] = Field(min_length=1)
    # `oncall`: straight to the doctor on call (primary, backup, operators).
    route: Literal["oncall"] | None = None
    skip_announcement: bool = False
    # `closed`: only while the practice is closed; `always`: open hours too.
    when: Literal["closed", "always"] = "closed"

    @model_validator(mode="after")
    def _does_something(self) -> CallerRule:
        if self.route is None and not self.skip_announcement:
            raise ValueError(
                "a caller rule needs route: oncall or skip_announcement: true (or both)"
            )
        return self


# --- the operator's card ----------------------------------------------------------


class Card(Frozen):
    """What the operator's screen shows for the practice when a call comes in."""

    greeting: CardText  # what to say when answering
    urgent: CardText  # what to do with an urgent call
    routine: CardText  # what to do with a routine call
    emergency: CardText | None = None  # what to say when it sounds like an emergency
    notes: CardText | None = None  # anything else the operator should know


# --- paging: urgent messages reach the doctor on call ------------------------------

PageChannel = Literal["voice", "webhook", "email"]
PageTarget = Literal["primary", "backup", "operators"]
DEFAULT_PAGE_LADDER: tuple[PageTarget, ...] = ("primary", "primary", "backup", "operators")


def _check_url(value: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?", value):
        raise ValueError(f"{_show(value)} is not an http:// or https:// address")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_check_url)]
FilePath = Annotated[str, AfterValidator(_check_record_path)]


class AckSeconds(Frozen):
    """How long a paged doctor has to acknowledge before the next step, per urgency."""

    urgent: Seconds = 600
    emergency: Seconds = 300


class HandoffCheck(Frozen):
    """Call the incoming doctor at each handoff and swap start: press 1 to confirm."""

    attempts: int = Field(default=3, ge=1, le=10)
    retry_seconds: Seconds = 300
    ring_seconds: Seconds = 30


def _check_ladder(ladder: tuple[str, ...]) -> tuple[str, ...]:
    if "operators" not in ladder:
        raise ValueError(
            "the escalation must reach the operators (e.g. [primary, primary, backup, "
            "operators]), so an unacknowledged message always reaches a person who can act"
        )
    return ladder


class PracticePaging(Frozen):
    """How the practice's urgent messages reach the doctor on call, and who is told when not."""

    channels: tuple[PageChannel, ...] = Field(default=("voice",), min_length=1)
    ack_seconds: AckSeconds = AckSeconds()
    escalation: Annotated[
        tuple[PageTarget, ...], Field(min_length=1, max_length=20), AfterValidator(_check_ladder)
    ] = DEFAULT_PAGE_LADDER
    ring_seconds: Seconds = 30
    # Press 2 on a voice page dials the callback number through this trunk;
    # without one the doctor is not offered the connection.
    callback_trunk: SafeName | None = None
    # E-mail (pager gateway) address of each doctor, for the email channel.
    pagers: dict[Ident, Email] = Field(default_factory=dict)
    # Told when the operators are alerted and when a handoff goes unconfirmed.
    alert_email: tuple[Email, ...] = ()
    handoff_check: HandoffCheck | None = None

    @field_validator("channels")
    @classmethod
    def _distinct(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(channels)) != len(channels):
            raise ValueError("name each channel once")
        return channels


class Webhook(Frozen):
    """Where page notifications are POSTed (JSON, HMAC-SHA256 signed)."""

    url: HttpUrl
    # The signing secret: this file, else $COVERAGE_WEBHOOK_SECRET; never in this file.
    secret_file: FilePath | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 10
    tries: Annotated[int, Field(ge=1, le=10)] = 4


class Smtp(Frozen):
    """The mail server page notifications go through (a pager or SMS gateway takes e-mail)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: Annotated[str, _pattern(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", "is not a host name")]
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    sender: Email = Field(alias="from")
    starttls: bool = False
    username: Text | None = None
    # The password: this file, else $COVERAGE_SMTP_PASSWORD; never in this file.
    password_file: FilePath | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 10
    tries: Annotated[int, Field(ge=1, le=10)] = 4


class Notifications(Frozen):
    """How pages and alerts leave the box: without patient data, with a link to sign in."""

    # The console's address as the doctors reach it (links in notifications).
    console_url: HttpUrl
    webhook: Webhook | None = None
    smtp: Smtp | None = None


# --- practice and file ------------------------------------------------------------


class Practice(Frozen):
    """One medical practice: its numbers, hours, people and escalation."""

    id: Ident  # filled in from the key under `practices:`
    name: Text
    short_name: ShortName
    dids: tuple[E164, ...] = Field(min_length=1)
    timezone: TimeZoneName
    hours: WeekHours = WeekHours()
    holidays: Holidays = Holidays()
    overrides: tuple[Override, ...] = ()
    staff: Staff | None = None
    operators: Operators
    # Rung after the chain's last step (the operators) when they do not answer.
    fallback: Fallback | None = None
    oncall: OnCallRoster | None = None
    # Named callers routed their own way; the first rule naming the caller wins.
    callers: tuple[CallerRule, ...] = ()
    when_open: WhenOpen | None = None
    when_closed: WhenClosed
    card: Card | None = None
    # Urgent messages: how they reach the doctor on call (default: voice pages).
    paging: PracticePaging = PracticePaging()

    @property
    def zone(self) -> ZoneInfo:
        """The practice's time zone (zoneinfo caches instances per key)."""
        return ZoneInfo(self.timezone)

    @property
    def open_steps(self) -> tuple[ChainStep, ...]:
        """The open chain; by default the staff (if any), then the operators."""
        if self.when_open is not None:
            return self.when_open.chain
        if self.staff is not None:
            return (ChainStep(to="staff"), ChainStep(to="operators"))
        return (ChainStep(to="operators"),)


class DefaultRoute(Frozen):
    """Where a call to a number no practice claims goes: a person, never silence."""

    queue: SafeName
    max_wait_seconds: Seconds = 120
    short_name: ShortName = "COVERAGE"


class EngineSection(Frozen):
    """Settings of the live engine that are not per practice."""

    default_route: DefaultRoute
    notifications: Notifications | None = None


class Records(Frozen):
    """Where the call records are (a SQLite file, or a PostgreSQL database), and for how long.

    `url` (postgresql://user@host/db, never with a password: libpq reads it
    from ~/.pgpass or PGPASSFILE) lets several engines share the records;
    `spool` is the local file that holds writes while the database is away.
    """

    path: Annotated[str, AfterValidator(_check_record_path)] | None = None
    url: Annotated[str, AfterValidator(_check_records_url)] | None = None
    spool: Annotated[str, AfterValidator(_check_record_path)] | None = None
    # Calls older than this many days are deleted (securely, audited) once a
    # day by the engine; None keeps them until `calls purge`. Up to 25 years:
    # the longest medical-record retention periods, not a typo's 10**9 days.
    keep_days: Annotated[int, Field(ge=1, le=25 * 366)] | None = None

    @model_validator(mode="after")
    def _one_store(self) -> Records:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either path (a SQLite file) or url (a PostgreSQL database)")
        if self.spool is not None and self.url is None:
            raise ValueError("spool goes with url: a SQLite file needs no spool")
        return self


def _check_region(value: str) -> str:
    if not supported_region(value):
        raise ValueError(
            f"{_show(value)} is not a region code for phone numbers (ISO 3166 alpha-2 in "
            "capitals, e.g. US, CA, GB)"
        )
    return value


def _check_version(value: int) -> int:
    if value != 1:
        raise ValueError(f"version {value} is not supported by this release (write version: 1)")
    return value


def ids_from_keys(value: Any) -> Any:
    """Each practice's id is its key under `practices:`; the admin writes it once."""
    if isinstance(value, dict):
        return {
            key: ({"id": key, **body} if isinstance(body, dict) and "id" not in body else body)
            for key, body in value.items()
        }
    return value


class CoverageConfig(Frozen):
    """The whole coverage file."""

    version: Annotated[int, AfterValidator(_check_version)] = 1
    # How a number without a country code is read (3125550100 -> +13125550100).
    default_region: Annotated[str, AfterValidator(_check_region)] = "US"
    engine: EngineSection
    trunks: tuple[SafeName, ...] = ()
    records: Records | None = None
    practices: Annotated[dict[Ident, Practice], BeforeValidator(ids_from_keys)] = Field(
        min_length=1
    )

    def practice(self, practice_id: str) -> Practice | None:
        """The practice with this id, if any."""
        return self.practices.get(practice_id)

    def normalize(self, number: str) -> str | None:
        """A DID or caller number as E.164, read with `default_region`; None if unreadable."""
        return normalize_number(number, self.default_region)

    def practice_for_did(self, did: str) -> Practice | None:
        """The practice a dialed number reaches, however the carrier wrote it.

        `3125550100`, `1-312-555-0100` and `+13125550100` all reach the
        practice with +13125550100 (see `config.numbers`).
        """
        number = self.normalize(did)
        if number is None:
            return None
        for practice in self.practices.values():
            if number in practice.dids:
                return practice
        return None
