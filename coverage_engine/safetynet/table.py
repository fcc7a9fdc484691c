"""What the dialplan's safety net needs to know, as a table the engine hands the PBX (pure).

When no engine takes a call (none running, or none claimed it in time) the
dialplan's `coverage-fallback` carries it alone. To ring the right doctor it
needs, per dialed number, the practice, and per practice who is on call, as
primary and backup, at every moment of the days ahead. The engine computes
that table from the configuration (`safety_net_table`) and writes it into
Asterisk's database (AstDB) at every connect, reload and handoff; the table
covers `HORIZON` ahead, so the safety net stays right through handoffs that
happen while no engine runs at all.

The AstDB layout (`astdb_entries`) is the wire contract with
`dialplan/coverage-engine.conf`; `tests/unit/test_safety_net.py` checks the
dialplan reads exactly these keys. Everything sits under one version (a
digest of the table), switched in by one last write of `coverage/current`,
so a call never reads half of an old table and half of a new one:

    coverage/current                           <version>
    coverage/table/<v>/did/<did>               <practice id>
    coverage/table/<v>/practice/<p>/prompt     what a doctor hears before pressing 1
    coverage/table/<v>/practice/<p>/spans      how many spans follow (1..n)
    coverage/table/<v>/practice/<p>/<n>/until  end of span n, in seconds since 1970 (PBX clock)
    coverage/table/<v>/practice/<p>/<n>/primary        dial string ("" for nobody)
    coverage/table/<v>/practice/<p>/<n>/primary_id     doctor id (for the call's journey)
    coverage/table/<v>/practice/<p>/<n>/primary_ring   seconds
    coverage/table/<v>/practice/<p>/<n>/backup, backup_id, backup_ring
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from coverage_engine.config.model import (
    DEFAULT_ONCALL_RING_SECONDS,
    CoverageConfig,
    Practice,
)
from coverage_engine.schedule import oncall_spans, require_aware

#: How far ahead the table reaches: a week and a day, so a weekly handoff is
#: always in it and the engine refreshes it long before it runs out.
HORIZON = timedelta(days=8)

#: The AstDB family everything lives under.
FAMILY = "coverage"
CURRENT_KEY = f"{FAMILY}/current"
TABLE_FAMILY = f"{FAMILY}/table"

#: What a doctor hears before pressing 1 when the practice has no prompt of its own.
GENERIC_PROMPT = "coverage/coverage-press-1"


def practice_prompt(practice_id: str) -> str:
    """The practice's own press-1 prompt ("a call for Maple Grove: press 1")."""
    return f"coverage/accept-{practice_id}"


@dataclass(frozen=True, slots=True)
class Callee:
    """A doctor the safety net rings: how, for how long, and who it is."""

    doctor_id: str
    dial: str
    ring_seconds: int


@dataclass(frozen=True, slots=True)
class Span:
    """Who the safety net rings from `start` until `until`."""

    start: datetime
    until: datetime
    primary: Callee | None
    backup: Callee | None


@dataclass(frozen=True, slots=True)
class PracticeNet:
    """One practice's part of the table."""

    practice_id: str
    prompt: str
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class SafetyNetTable:
    """The whole table: dialed numbers to practices, and each practice's on-call spans."""

    start: datetime
    dids: Mapping[str, str]
    practices: tuple[PracticeNet, ...]

    def span_at(self, practice_id: str, instant: datetime) -> Span | None:
        """The span in force for `practice_id` at `instant` (what the dialplan would pick)."""
        for practice in self.practices:
            if practice.practice_id != practice_id:
                continue
            for span in practice.spans:
                if instant < span.until:
                    return span
            return practice.spans[-1] if practice.spans else None
        return None


def safety_net_table(
    config: CoverageConfig,
    now: datetime,
    *,
    prompt_for: Callable[[str], str] = practice_prompt,
    horizon: timedelta = HORIZON,
) -> SafetyNetTable:
    """The table from `now` for `horizon`: every practice's on-call doctors, span by span.

    `prompt_for(practice_id)` names the press-1 prompt to play (the engine
    checks the PBX has the practice's own and falls back to the generic one).
    """
    now = require_aware(now)
    dids = {did: p.id for p in config.practices.values() for did in p.dids}
    practices = tuple(
        PracticeNet(p.id, prompt_for(p.id), _spans(p, now, now + horizon))
        for p in sorted(config.practices.values(), key=lambda p: p.id)
    )
    return SafetyNetTable(now, dids, practices)


def _spans(practice: Practice, start: datetime, until: datetime) -> tuple[Span, ...]:
    roster = practice.oncall
    if roster is None:
        return (Span(start, until, None, None),)
    primary_ring, backup_ring = _ring_seconds(practice)

    def callee(doctor_id: str | None, ring: int) -> Callee | None:
        doctor = roster.doctors.get(doctor_id) if doctor_id is not None else None
        return None if doctor is None or doctor_id is None else Callee(doctor_id, doctor.dial, ring)

    return tuple(
        Span(
            span.start,
            span.until,
            callee(span.assignment.primary, primary_ring),
            callee(span.assignment.backup, backup_ring),
        )
        for span in oncall_spans(roster, practice.zone, start, until)
    )


def _ring_seconds(practice: Practice) -> tuple[int, int]:
    """How long the closed chain rings the primary and the backup (the safety net does the same)."""
    steps = practice.when_closed.steps
    primary = next((s.ring_seconds for s in steps if s.to == "oncall_primary"), None)
    backup = next((s.ring_seconds for s in steps if s.to == "oncall_backup"), None)
    primary = primary or DEFAULT_ONCALL_RING_SECONDS
    return primary, backup or primary


# -- the AstDB layout ----------------------------------------------------------------------


def version_of(entries: Mapping[str, str]) -> str:
    """A short digest of a table's entries: equal tables get equal versions."""
    text = json.dumps(sorted(entries.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def astdb_entries(
    table: SafetyNetTable, *, epoch: Callable[[datetime], float]
) -> tuple[str, dict[str, str]]:
    """The table as AstDB keys and values under its version; returns (version, entries).

    `epoch(instant)` gives the PBX clock's seconds for an instant (the
    dialplan compares span ends with its `${EPOCH}`). Span ends are rounded
    up to whole seconds, so a span never ends early.
    """
    body: dict[str, str] = {}
    for did, practice_id in sorted(table.dids.items()):
        body[f"did/{did}"] = practice_id
    for practice in table.practices:
        base = f"practice/{practice.practice_id}"
        body[f"{base}/prompt"] = practice.prompt
        body[f"{base}/spans"] = str(len(practice.spans))
        for n, span in enumerate(practice.spans, start=1):
            body[f"{base}/{n}/until"] = str(math.ceil(epoch(span.until)))
            for role, callee in (("primary", span.primary), ("backup", span.backup)):
                body[f"{base}/{n}/{role}"] = callee.dial if callee else ""
                body[f"{base}/{n}/{role}_id"] = callee.doctor_id if callee else ""
                body[f"{base}/{n}/{role}_ring"] = str(callee.ring_seconds) if callee else "0"
    version = version_of(body)
    return version, {f"{TABLE_FAMILY}/{version}/{key}": value for key, value in body.items()}
