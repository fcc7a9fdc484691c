"""The safety net's notes of a call, read back as the call's journey (pure).

`dialplan/coverage-engine.conf` notes what the safety net does with a call
in AstDB, under `coverage/net/<caller's channel id>`: `caller` (the number),
and numbered notes `<seconds since 1970>,<what>,<detail>` (a callee's press-1
result is numbered `<n>c`). An engine collects them once the call has
ended (`end` noted) and writes the journey they tell: received, handed to
the safety net and why, the queue, each doctor rung and how it went, who
answered, and the end. A call an engine had started and handed back already
has a journey: these events continue it, and its final outcome is what the
safety net achieved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from coverage_engine.journey import (
    Bridged,
    CallerHungUp,
    Ended,
    JourneyEvent,
    OncallBusy,
    OncallConfirmed,
    OncallDialing,
    OncallNoAnswer,
    OncallNotConfirmed,
    OperatorAnswered,
    Outcome,
    QueueEntered,
    QueueTimeout,
    Received,
    SafetyNetTook,
)
from coverage_engine.plan import StepKind

#: The AstDB family of the notes, one sub-family per call.
NOTES_FAMILY = "coverage/net"
#: The note that says the call is over (written by the caller's hangup handler).
END = "end"

_NUMBERED = re.compile(r"(\d+)(c?)")


@dataclass(frozen=True, slots=True)
class Note:
    """One thing the safety net did, when."""

    at: datetime
    what: str
    detail: str


def parse_notes(values: Mapping[str, str]) -> tuple[str, list[Note]]:
    """The caller's number and the notes in the order they happened (ill-formed ones skipped)."""
    notes: list[tuple[int, int, Note]] = []
    for key, value in values.items():
        found = _NUMBERED.fullmatch(key)
        parts = value.split(",", 2)
        if found is None or len(parts) != 3:
            continue
        try:
            at = datetime.fromtimestamp(float(parts[0]), tz=UTC)
        except (ValueError, OverflowError):
            continue
        # A callee's note `<n>c` (its press-1 result) happened before the
        # caller's `<n>` (the Dial's result): the callee counted on from the
        # caller's number at the time of the dial.
        notes.append((int(found[1]), 0 if found[2] else 1, Note(at, parts[1], parts[2])))
    notes.sort(key=lambda n: (n[0], n[1], n[2].at))
    return values.get("caller", ""), [n for _, _, n in notes]


def finished(values: Mapping[str, str]) -> bool:
    """Whether the notes include the call's end (only then are they collected)."""
    return any(note.what == END for note in parse_notes(values)[1])


def journey_events(values: Mapping[str, str]) -> list[tuple[datetime, JourneyEvent]]:
    """The journey the notes tell, event by event, ending with its outcome."""
    caller, notes = parse_notes(values)
    events: list[tuple[datetime, JourneyEvent]] = []
    ringing: tuple[str, str] | None = None  # (doctor id or "fixed", role) being rung
    answered: tuple[Outcome, str] | None = None
    where = "announcement"
    step = 0
    for note in notes:
        at = note.at
        match note.what:
            case "arrived":
                events.append((at, Received(note.detail, caller)))
            case "taken":
                events.append((at, SafetyNetTook(note.detail)))
            case "queue":
                where = "queue"
                events.append((at, QueueEntered(step, note.detail, 0, "safety net queue")))
                step += 1
            case "queue_result":
                events.append((at, QueueTimeout(note.detail)))
            case "operator":
                answered = (Outcome.ANSWERED_BY_OPERATOR, note.detail)
                events.append((at, OperatorAnswered(note.detail)))
                events.append((at, Bridged(StepKind.OPERATORS, note.detail)))
            case "dial":
                role, _, doctor = note.detail.partition(":")
                ringing = (doctor or "fixed", role)
                where = "ringing"
                who = doctor or role
                events.append((at, OncallDialing(step, who, who, role=role, confirm=True)))
                step += 1
            case "confirm" if ringing is not None:
                doctor = ringing[0]
                if note.detail == "1":
                    answered = (Outcome.ANSWERED_BY_ONCALL, doctor)
                    events.append((at, OncallConfirmed(doctor)))
                    events.append((at, Bridged(StepKind.ONCALL, doctor)))
                else:
                    events.append((at, OncallNotConfirmed(doctor, "no 1 pressed")))
                ringing = None
            case "dial_result" if ringing is not None:
                doctor = ringing[0]
                if note.detail == "BUSY":
                    events.append((at, OncallBusy(doctor, "busy")))
                elif note.detail != "ANSWER":
                    events.append((at, OncallNoAnswer(doctor, note.detail.lower())))
                ringing = None
            case "end":
                if note.detail and answered is None:
                    # An operator took the call (app_queue's MEMBERINTERFACE) and
                    # no earlier note said when: the end is the best we know.
                    answered = (Outcome.ANSWERED_BY_OPERATOR, note.detail)
                    events.append((at, OperatorAnswered(note.detail)))
                    events.append((at, Bridged(StepKind.OPERATORS, note.detail)))
                events.append((at, CallerHungUp()))
                if answered is not None:
                    events.append((at, Ended(answered[0], answered[1], reason="safety net")))
                else:
                    events.append((at, Ended(_abandoned(where), reason="safety net")))
                break
    return events


def _abandoned(where: str) -> Outcome:
    return {
        "queue": Outcome.ABANDONED_IN_QUEUE,
        "ringing": Outcome.ABANDONED_WHILE_RINGING,
    }.get(where, Outcome.ABANDONED_DURING_ANNOUNCEMENT)
