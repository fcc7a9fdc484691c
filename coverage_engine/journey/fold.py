"""A call's journey: its events folded into what a person asks about the call (pure).

`Journey.begin(call_id, at, received)` opens a journey; `journey.apply(at,
event)` returns the journey after one more event. Every reader of journeys
uses this one fold: the in-memory and SQLite record stores (which keep its
result as the journey's columns), the metrics and the live view of the
calls in progress. So the practice is read from `Decided` in one place, and
time to a person and talk time are worked out in one place:

* time to a person: from the call's arrival to the first person answering
  (the first `Bridged` or `OperatorAnswered`), kept only if the call ends
  answered;
* talk time: from that moment to the end, for an answered call.

A call another engine takes on continues the same journey (no second
`Received`): its `Decided` is marked resumed, which reopens a journey the
crash recovery had closed; times still count from the caller's arrival.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from coverage_engine.journey.events import (
    Bridged,
    Decided,
    Ended,
    HandoffCheckStarted,
    JourneyEvent,
    JourneyKind,
    OperatorAnswered,
    Outcome,
    Received,
)

#: The events that open a journey: a call received, a handoff check started.
Opener = Received | HandoffCheckStarted


@dataclass(frozen=True, slots=True)
class Stamped:
    """One event of a journey with the instant it happened."""

    at: datetime
    event: JourneyEvent

    @property
    def name(self) -> str:
        """The event's stored name."""
        return self.event.name


@dataclass(frozen=True, slots=True)
class Journey:
    """One call from the moment it entered the engine to its end (or one handoff check:
    `kind`, from the opening event).

    `call_id` is Asterisk's linkedid (the caller's channel id): it names
    every leg the engine created for the call. `practice`, `status`,
    `reason` and `plan` come from the `Decided` event; they are empty until
    the routing decision. `outcome` is None while the call is in progress.
    """

    call_id: str
    started_at: datetime
    did: str = ""
    caller_number: str = ""
    caller_name: str = ""
    practice: str = ""
    status: str = ""  # "open" / "closed" at the instant of the decision
    reason: str = ""
    plan: Mapping[str, Any] | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    answered_by: str | None = None
    time_to_person: timedelta | None = None
    talk_time: timedelta | None = None
    events: tuple[Stamped, ...] = ()
    kind: JourneyKind = JourneyKind.CALL

    @classmethod
    def begin(cls, call_id: str, at: datetime, opener: Opener) -> Journey:
        """The journey of a call that has just been received (or a handoff check started)."""
        return cls(call_id, started_at=at).apply(at, opener)

    @property
    def in_progress(self) -> bool:
        """Whether the journey has not ended yet."""
        return self.outcome is None

    def apply(self, at: datetime, event: JourneyEvent) -> Journey:
        """The journey after `event` happened at `at`."""
        # One copy of the journey per event, the event added with what it changes:
        # every store and view folds every event of every call.
        events = (*self.events, Stamped(at, event))
        match event:
            case Received(did=did, caller_number=number, caller_name=name):
                return replace(
                    self, events=events, did=did, caller_number=number, caller_name=name
                )
            case HandoffCheckStarted(practice=practice, doctor=doctor, source=source):
                reason = f"{doctor} comes on call" + (f" ({source})" if source else "")
                return replace(
                    self,
                    events=events,
                    kind=JourneyKind.HANDOFF_CHECK,
                    practice=practice,
                    reason=reason,
                )
            case Decided():
                journey = replace(
                    self,
                    events=events,
                    practice=event.practice,
                    status=event.status,
                    reason=event.reason,
                    plan=event.details(),
                )
                if event.resumed:
                    # Taken on again after a restart: in progress once more.
                    journey = replace(
                        journey, outcome=None, ended_at=None, answered_by=None, talk_time=None
                    )
                return journey
            case Bridged() | OperatorAnswered() if self.time_to_person is None:
                return replace(self, events=events, time_to_person=at - self.started_at)
            case Ended(outcome=outcome, answered_by=answered_by):
                return self._ended(events, at, outcome, answered_by)
        return replace(self, events=events)

    def _ended(
        self, events: tuple[Stamped, ...], at: datetime, outcome: Outcome, answered_by: str | None
    ) -> Journey:
        ttp = self.time_to_person
        if ttp is None:
            # A journey stored before times were kept as they happened.
            first = first_person_at(events)
            ttp = None if first is None else first - self.started_at
        if not outcome.answered or ttp is None:
            ttp, talk = None, None
        else:
            talk = at - (self.started_at + ttp)
        return replace(
            self,
            events=events,
            ended_at=at,
            outcome=outcome,
            answered_by=answered_by,
            time_to_person=ttp,
            talk_time=talk,
        )


def first_person_at(events: Iterable[Stamped]) -> datetime | None:
    """When a person first answered: the first bridge, or an operator taking the call."""
    return next((s.at for s in events if isinstance(s.event, Bridged | OperatorAnswered)), None)
