"""The port the engine writes call records through, and an in-memory fake.

Contract (the engine relies on it; both implementations keep it):

* Calls never block: each returns an `Ack` at once and the write happens
  elsewhere, so a slow disk can never delay answering a caller.
* A write is *acknowledged* when its `Ack` has completed without an exception.
  From then on it survives the process being killed (SIGKILL, OOM, power loss
  for the SQLite store: the WAL is fsynced before the Ack completes). The
  engine does not have to wait for Acks; tests and shutdown do.
* Writes for one recorder are applied in the order they were made, so a
  journey's events keep the order the call flow produced them in.
* `start` writes the journey and its `received` event; `event` appends one
  event (a `decided` event also fills the journey's practice, status, reason
  and plan from its details, which are the Plan's JSON; one marked
  `resumed` reopens a journey that recovery closed, since a restarted engine
  has taken the call on again); `finish` closes the journey and writes its
  `ended` event.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from coverage_engine.records.model import Journey, JourneyEvent, JourneyFilter
from coverage_engine.records.vocabulary import EventKind, Outcome

#: Completes when the write is durable; carries the exception if it failed.
Ack = Future[None]


class RecordError(Exception):
    """A write the record store refused (unknown call, duplicate journey, closed store)."""


class JourneyRecorder(Protocol):
    """Where the engine writes each call's journey as it happens."""

    def start(
        self,
        call_id: str,
        *,
        at: datetime,
        did: str,
        caller_number: str,
        caller_name: str = "",
    ) -> Ack:
        """Open the journey of a new call and write its `received` event."""
        ...

    def event(
        self,
        call_id: str,
        kind: EventKind,
        *,
        at: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> Ack:
        """Append one event to the call's journey."""
        ...

    def finish(
        self,
        call_id: str,
        *,
        at: datetime,
        outcome: Outcome,
        answered_by: str | None = None,
        time_to_person: timedelta | None = None,
        talk_time: timedelta | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Ack:
        """Close the journey with its outcome and write its `ended` event.

        Time to a person and talk time left out are worked out from the events.
        """
        ...

    def flush(self) -> Ack:
        """An Ack that completes once every write made before it is durable."""
        ...


async def acknowledged(*acks: Ack) -> None:
    """Wait until every one of `acks` is durable; raise the first write error."""
    for ack in acks:
        await asyncio.wrap_future(ack)


@dataclass(frozen=True, slots=True)
class StartJourney:
    """The write `start` queues: a new journey and its `received` event."""

    call_id: str
    at: datetime
    did: str
    caller_number: str
    caller_name: str

    def received(self) -> JourneyEvent:
        """The `received` event (the caller number stays on the journey only)."""
        details = {"did": self.did, "caller_name": self.caller_name}
        return JourneyEvent(self.at, EventKind.RECEIVED, details)


@dataclass(frozen=True, slots=True)
class AddEvent:
    """The write `event` queues."""

    call_id: str
    event: JourneyEvent


@dataclass(frozen=True, slots=True)
class FinishJourney:
    """The write `finish` queues: the journey's end and its `ended` event."""

    call_id: str
    at: datetime
    outcome: Outcome
    answered_by: str | None = None
    time_to_person: timedelta | None = None
    talk_time: timedelta | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def ended(self) -> JourneyEvent:
        """The `ended` event."""
        details = {
            **self.details,
            "outcome": self.outcome.value,
            "answered_by": self.answered_by,
        }
        return JourneyEvent(self.at, EventKind.ENDED, details)

    def durations(
        self, started_at: datetime, events: Iterable[JourneyEvent]
    ) -> tuple[timedelta | None, timedelta | None]:
        """Time to a person and talk time: as given, else from when a person first answered.

        The engine need not track them: the first `bridged` or
        `operator_answered` event is when the caller reached a person, and the
        conversation lasted from then to this end.
        """
        answered_at = next(
            (e.at for e in events if e.kind in (EventKind.BRIDGED, EventKind.OPERATOR_ANSWERED)),
            None,
        )
        ttp = self.time_to_person
        talk = self.talk_time
        if answered_at is not None and self.outcome.answered:
            ttp = ttp if ttp is not None else answered_at - started_at
            talk = talk if talk is not None else self.at - answered_at
        return ttp, talk


Write = StartJourney | AddEvent | FinishJourney


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("record timestamps must be timezone-aware")
    return at


def _frozen(details: Mapping[str, Any] | None) -> dict[str, Any]:
    # Through JSON now, on the caller's side: what is stored is what was passed,
    # whatever the caller mutates later, and both implementations store the same.
    frozen: dict[str, Any] = json.loads(json.dumps(dict(details or {}), default=str))
    return frozen


class RecorderBase(ABC):
    """The `JourneyRecorder` methods, turning each call into a `Write` for `_submit`.

    Checks happen here, on the caller's side, so a bad call fails where it was
    made (a naive datetime, an unknown outcome or event kind).
    """

    def start(
        self,
        call_id: str,
        *,
        at: datetime,
        did: str,
        caller_number: str,
        caller_name: str = "",
    ) -> Ack:
        """Open the journey of a new call and write its `received` event."""
        return self._submit(StartJourney(call_id, _aware(at), did, caller_number, caller_name))

    def event(
        self,
        call_id: str,
        kind: EventKind,
        *,
        at: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> Ack:
        """Append one event to the call's journey."""
        event = JourneyEvent(_aware(at), EventKind(kind), _frozen(details))
        return self._submit(AddEvent(call_id, event))

    def finish(
        self,
        call_id: str,
        *,
        at: datetime,
        outcome: Outcome,
        answered_by: str | None = None,
        time_to_person: timedelta | None = None,
        talk_time: timedelta | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Ack:
        """Close the journey with its outcome and write its `ended` event."""
        write = FinishJourney(
            call_id,
            _aware(at),
            Outcome(outcome),
            answered_by,
            time_to_person,
            talk_time,
            _frozen(details),
        )
        return self._submit(write)

    def flush(self) -> Ack:
        """An Ack that completes once every write made before it is durable."""
        return self._submit(None)

    @abstractmethod
    def _submit(self, write: Write | None) -> Ack:
        """Apply `write` (None: nothing, only order) after every earlier one; never block."""


def _done(error: Exception | None = None) -> Ack:
    ack: Ack = Future()
    if error is None:
        ack.set_result(None)
    else:
        ack.set_exception(error)
    return ack


class MemoryRecorder(RecorderBase):
    """The in-memory `JourneyRecorder` for unit tests: every write is acknowledged at once."""

    def __init__(self) -> None:
        self._journeys: dict[str, Journey] = {}

    def _submit(self, write: Write | None) -> Ack:
        try:
            if write is not None:
                self._apply(write)
        except RecordError as exc:
            return _done(exc)
        return _done()

    def _apply(self, write: Write) -> None:
        if isinstance(write, StartJourney):
            if write.call_id in self._journeys:
                raise RecordError(f"journey {write.call_id} already exists")
            self._journeys[write.call_id] = Journey(
                call_id=write.call_id,
                did=write.did,
                caller_number=write.caller_number,
                caller_name=write.caller_name,
                started_at=write.at,
                events=(write.received(),),
            )
            return
        journey = self._journeys.get(write.call_id)
        if journey is None:
            raise RecordError(f"no journey {write.call_id}")
        if isinstance(write, AddEvent):
            journey = replace(journey, events=(*journey.events, write.event))
            if write.event.kind == EventKind.DECIDED:
                plan = write.event.details
                journey = replace(
                    journey,
                    practice=str(plan.get("practice") or ""),
                    status=str(plan.get("status") or ""),
                    reason=str(plan.get("reason") or ""),
                    plan=plan,
                )
                if plan.get("resumed"):
                    journey = replace(journey, outcome=None, ended_at=None)
        else:
            ttp, talk = write.durations(journey.started_at, journey.events)
            journey = replace(
                journey,
                ended_at=write.at,
                outcome=write.outcome,
                answered_by=write.answered_by,
                time_to_person=ttp,
                talk_time=talk,
                events=(*journey.events, write.ended()),
            )
        self._journeys[write.call_id] = journey

    def get(self, call_id: str) -> Journey | None:
        """The journey of `call_id` with its events, or None."""
        return self._journeys.get(call_id)

    def journeys(self, where: JourneyFilter | None = None) -> list[Journey]:
        """The journeys matching `where`, oldest first."""
        where = where or JourneyFilter()
        found = [j for j in self._journeys.values() if where.matches(j)]
        return sorted(found, key=lambda j: (j.started_at, j.call_id))


def record(
    recorder: JourneyRecorder,
    call_id: str,
    name: str,
    details: Mapping[str, Any],
    *,
    at: datetime,
) -> Ack:
    """Write one call-flow record command (`RecordEvent(name, details)`) through `recorder`.

    The call flow speaks one vocabulary for everything; the journey has a
    beginning and an end. `received` (details: did, caller, name) opens the
    journey, `ended` (details: outcome, answered_by, and anything else) closes
    it, every other name is an event. A name or outcome outside the vocabulary
    is a bug in the caller: the Ack fails with RecordError, the call goes on.
    """
    try:
        if name == EventKind.RECEIVED:
            return recorder.start(
                call_id,
                at=at,
                did=str(details.get("did") or ""),
                caller_number=str(details.get("caller") or ""),
                caller_name=str(details.get("name") or ""),
            )
        if name == EventKind.ENDED:
            rest = {k: v for k, v in details.items() if k not in ("outcome", "answered_by")}
            answered_by = details.get("answered_by")
            return recorder.finish(
                call_id,
                at=at,
                outcome=Outcome(str(details.get("outcome"))),
                answered_by=str(answered_by) if answered_by is not None else None,
                details=rest,
            )
        return recorder.event(call_id, EventKind(name), at=at, details=details)
    except ValueError as exc:
        return _done(RecordError(f"cannot record {name!r} for {call_id}: {exc}"))
