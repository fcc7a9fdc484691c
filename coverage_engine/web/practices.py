"""What the console says about a practice right now: open or closed, who is on call, what next.

Pure: the configuration and an instant in, plain data out. Built on the
routing core and the coverage calendar, so the board can never disagree with
`explain` or `calendar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from coverage_engine.config.model import Card, CoverageConfig, Doctor, Practice
from coverage_engine.coverage import day_coverage
from coverage_engine.routing import decide_for_practice

LOOK_AHEAD_DAYS = 15  # a two-week rotation's next handoff is always found


@dataclass(frozen=True, slots=True)
class DoctorCard:
    """A doctor as the operator needs them: who, and how to reach them."""

    id: str
    name: str
    reach: str  # "extension patel" / "+13125550199 via carrier-out"
    contact: str  # the practice's own note, if any


@dataclass(frozen=True, slots=True)
class Change:
    """The next instant something changes, and what it changes to."""

    at: datetime  # in the practice's time zone
    description: str


@dataclass(frozen=True, slots=True)
class PracticeNow:
    """One practice's panel on the board."""

    id: str
    name: str
    short_name: str
    timezone: str
    status: str  # open / closed
    reason: str
    primary: DoctorCard | None
    backup: DoctorCard | None
    next_handoff: Change | None
    next_status: Change | None
    card: Card | None


def doctor_card(practice: Practice, doctor_id: str | None) -> DoctorCard | None:
    if doctor_id is None or practice.oncall is None:
        return None
    doctor: Doctor | None = practice.oncall.doctors.get(doctor_id)
    if doctor is None:
        return None
    reach = (
        f"extension {doctor.endpoint}"
        if doctor.endpoint is not None
        else f"{doctor.number} via {doctor.trunk}"
    )
    return DoctorCard(doctor_id, doctor.name, reach, doctor.contact or "")


def practice_now(practice: Practice, instant: datetime) -> PracticeNow:
    """The practice's status, on-call doctors and next changes at `instant`."""
    zone = practice.zone
    plan = decide_for_practice(practice, instant)
    oncall = plan.oncall
    next_status: Change | None = None
    next_handoff: Change | None = None
    today = instant.astimezone(zone).date()
    for offset in range(LOOK_AHEAD_DAYS):
        for segment in day_coverage(practice, today + timedelta(days=offset)).segments:
            if segment.end <= instant or segment.start <= instant:
                continue
            seg = segment.plan
            if next_status is None and seg.status != plan.status:
                next_status = Change(segment.start, f"{seg.status}: {seg.reason}")
            if next_handoff is None and seg.oncall != oncall and seg.oncall is not None:
                incoming = doctor_card(practice, seg.oncall.primary)
                name = incoming.name if incoming else seg.oncall.primary
                next_handoff = Change(segment.start, f"{name} takes over")
        if next_status is not None and (next_handoff is not None or practice.oncall is None):
            break
    return PracticeNow(
        id=practice.id,
        name=practice.name,
        short_name=practice.short_name,
        timezone=practice.timezone,
        status=plan.status,
        reason=plan.reason,
        primary=doctor_card(practice, oncall.primary if oncall else None),
        backup=doctor_card(practice, oncall.backup if oncall else None),
        next_handoff=next_handoff,
        next_status=next_status,
        card=practice.card,
    )


class ConfigDirectory:
    """Names for the board from the configuration (see `board.Directory`)."""

    def __init__(self, config: CoverageConfig) -> None:
        self._config = config

    def name(self, practice: str, target: str) -> str:
        found = self._config.practice(practice)
        if found is not None:
            if found.oncall is not None and target in found.oncall.doctors:
                return found.oncall.doctors[target].name
            if found.staff is not None and target == found.staff.address:
                return found.staff.name
        return target

    def announces(self, practice: str, status: str) -> bool:
        found = self._config.practice(practice)
        return (
            found is not None and status == "closed" and found.when_closed.announcement is not None
        )
