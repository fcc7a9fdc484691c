"""Handoff checks: who comes on call when, whether a check is still wanted, what they hear (pure).

A practice that opts in (`paging.handoff_check`) has the engine call the
doctor coming on call at every handoff, so a phone left on silent or a
forgotten swap is found before a patient's call finds it. A handoff is any
change of the primary doctor: the rotation's handoff, the start of a swap,
and its end (the rotation's doctor takes over again). The doctor hears
"This is the answering service. You are on call for Maple Grove Pediatrics
until Monday, December 14th, at 8 AM. Press 1 to confirm." and presses 1.

Each handoff is one check, named by the practice and the instant
(`Handoff.check_id`), so two engines sharing the record file, or one engine
before and after a restart, find the same check rather than making two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coverage_engine.config.model import Practice
from coverage_engine.schedule import oncall_spans

#: A handoff the engine learns of this late (it was down, or the check was
#: just switched on) is still checked; an older one is left alone.
GRACE = timedelta(hours=1)
#: How far ahead "until" is looked for; a turn running longer has no end said.
HORIZON = timedelta(days=8)
_BEFORE = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Handoff:
    """`doctor` is the primary on call for `practice` from `at` until `until` (None: not
    within the week ahead), after `previous`; `source` says why (rotation, swap: reason)."""

    practice: str
    at: datetime
    doctor: str
    previous: str | None
    until: datetime | None
    source: str

    @property
    def check_id(self) -> str:
        """The check's journey id: one per practice and handoff instant."""
        return f"handoff-{self.practice}-{self.at.astimezone(UTC):%Y-%m-%dT%H%MZ}"


def handoffs(practice: Practice, since: datetime, until: datetime) -> list[Handoff]:
    """Every change of the practice's primary doctor from `since` to `until`, both included."""
    roster = practice.oncall
    if roster is None or until < since:
        return []
    # Runs of one primary doctor (a change of backup alone is no handoff), from just
    # before `since` so that a change at `since` itself shows.
    runs: list[tuple[datetime, str, str]] = []
    for span in oncall_spans(roster, practice.zone, since - _BEFORE, until + HORIZON):
        if not runs or runs[-1][1] != span.assignment.primary:
            runs.append((span.start, span.assignment.primary, span.assignment.source))
    found = []
    for index in range(1, len(runs)):
        at, doctor, source = runs[index]
        if at > until:
            break
        ends = runs[index + 1][0] if index + 1 < len(runs) else None
        found.append(Handoff(practice.id, at, doctor, runs[index - 1][1], ends, source))
    return found


def due(practice: Practice, now: datetime) -> list[Handoff]:
    """The handoffs of a practice that opted in whose check is due now (within the grace)."""
    if practice.paging.handoff_check is None:
        return []
    return handoffs(practice, now - GRACE, now)


def not_wanted(practice: Practice | None, doctor: str, at: datetime, now: datetime) -> str | None:
    """Why a pending check of `doctor` coming on call at `at` should not call any more, or None.

    The configuration may have changed since the check was opened: the
    practice gone, the check switched off, a swap removed (someone else is on
    call then), or the doctor's turn already over.
    """
    if practice is None:
        return "the practice is no longer in the configuration"
    if practice.paging.handoff_check is None:
        return "handoff checks were switched off for the practice"
    current = [h for h in handoffs(practice, at, at) if h.at == at]
    if not current or current[0].doctor != doctor:
        return f"{doctor} no longer comes on call then (the configuration changed)"
    if current[0].until is not None and now >= current[0].until:
        return f"{doctor}'s turn on call is over"
    return None
