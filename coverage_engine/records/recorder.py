"""The port the engine writes call records through, and an in-memory fake.

Contract (the engine relies on it; both implementations keep it):

* Calls never block: `write` returns an `Ack` at once and the write happens
  elsewhere, so a slow disk can never delay answering a caller.
* A write is *acknowledged* when its `Ack` has completed without an exception.
  From then on it survives the process being killed (SIGKILL, OOM, power loss
  for the SQLite store: the WAL is fsynced before the Ack completes). The
  engine does not have to wait for Acks; tests and shutdown do.
* Writes for one recorder are applied in the order they were made, so a
  journey's events keep the order the call flow produced them in.
* A `Received` event opens a journey; every other event is folded into it
  with `Journey.apply`, which is where the practice, the outcome and the
  times come from. With several engines (or an engine's buffered writes
  replayed after a database outage) events of one call can arrive from more
  than one writer, in an order no single one chose: an event for a call not
  seen yet opens its journey there, a later `Received` fills in who called
  and moves the start back to the caller's arrival, and a second `Received`
  continues the same journey. Nothing is refused for arriving "too early".
* A write may carry a `key`, unique to that event: a store that already
  holds an event with that key applies it no second time, so replaying a
  buffer after a crash never doubles a journey's events.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from coverage_engine.journey import (
    Bridged,
    HandoffCheckStarted,
    Journey,
    JourneyEvent,
    OperatorAnswered,
    Received,
    Stamped,
)
from coverage_engine.plan import StepKind
from coverage_engine.records.model import JourneyFilter

#: Completes when the write is durable; carries the exception if it failed.
Ack = Future[None]


def received_key(call_id: str) -> str:
    """The one key every writer gives a call's `Received`: a call is received once.

    An engine that takes on a call it cannot tell was ever received (the
    channel carries no memory yet: the engine that received it died first)
    receives it again; the store keeps the first and skips the rest.
    """
    return f"received:{call_id}"


def once_key(call_id: str, event: JourneyEvent) -> str | None:
    """The key of an event a call has at most once, whichever engine records it; else None.

    Besides `Received`: an operator taking a queued caller (the answer and
    the bridge it makes), which two engines can both learn of when one
    followed the caller before letting go and the other after taking over.
    """
    match event:
        case Received():
            return received_key(call_id)
        case OperatorAnswered():
            return f"operator_answered:{call_id}"
        case Bridged(step_kind=StepKind.OPERATORS):
            return f"bridged_operator:{call_id}"
    return None


class RecordError(Exception):
    """A write the record store refused (unknown call, duplicate journey, closed store)."""


class JourneyRecorder(Protocol):
    """Where the engine writes each call's journey as it happens."""

    def write(
        self, call_id: str, at: datetime, event: JourneyEvent, *, key: str | None = None
    ) -> Ack:
        """Add one event to the call's journey (`key`: the event's own id, for idempotency)."""
        ...

    def flush(self) -> Ack:
        """An Ack that completes once every write made before it is durable."""
        ...


async def acknowledged(*acks: Ack) -> None:
    """Wait until every one of `acks` is durable; raise the first write error."""
    for ack in acks:
        await asyncio.wrap_future(ack)


@dataclass(frozen=True, slots=True)
class Write:
    """One queued write: an event of a call's journey."""

    call_id: str
    stamped: Stamped
    key: str | None = None  # unique per event: a store applies one key once


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("record timestamps must be timezone-aware")
    return at


class RecorderBase(ABC):
    """`JourneyRecorder.write` and `flush` on top of one `_submit`.

    Checks happen here, on the caller's side, so a bad call fails where it
    was made (a naive datetime).
    """

    def write(
        self, call_id: str, at: datetime, event: JourneyEvent, *, key: str | None = None
    ) -> Ack:
        """Add one event to the call's journey (a `Received` opens it)."""
        return self._submit(Write(call_id, Stamped(_aware(at), event), key))

    def flush(self) -> Ack:
        """An Ack that completes once every write made before it is durable."""
        return self._submit(None)

    @abstractmethod
    def _submit(self, write: Write | None) -> Ack:
        """Apply `write` (None: nothing, only order) after every earlier one; never block."""


def done(error: Exception | None = None) -> Ack:
    """An Ack that has already completed (with `error`, if given)."""
    ack: Ack = Future()
    if error is None:
        ack.set_result(None)
    else:
        ack.set_exception(error)
    return ack


def folded(current: Journey | None, write: Write) -> Journey:
    """The journey after `write` (pure).

    A `Received` (a handoff check's `HandoffCheckStarted`) opens the journey,
    or, when events of the call arrived first (from another engine), fills in
    the caller and moves the start back to the arrival; any other event opens
    a journey that has none yet.
    """
    at, event = write.stamped.at, write.stamped.event
    if current is None:
        if isinstance(event, Received | HandoffCheckStarted):
            return Journey.begin(write.call_id, at, event)
        return Journey(write.call_id, started_at=at).apply(at, event)
    after = current.apply(at, event)
    if isinstance(event, Received) and at < after.started_at:
        return replace(after, started_at=at, time_to_person=_moved(after, at))
    return after


def _moved(journey: Journey, start: datetime) -> timedelta | None:
    """Time to a person counted from an earlier start (the caller's real arrival)."""
    if journey.time_to_person is None:
        return None
    return journey.time_to_person + (journey.started_at - start)


class MemoryRecorder(RecorderBase):
    """The in-memory `JourneyRecorder` for unit tests: every write is acknowledged at once."""

    def __init__(self) -> None:
        self._journeys: dict[str, Journey] = {}
        self._keys: set[str] = set()

    def _submit(self, write: Write | None) -> Ack:
        if write is None:
            return done()
        if write.key is not None:
            if write.key in self._keys:
                return done()
            self._keys.add(write.key)
        self._journeys[write.call_id] = folded(self._journeys.get(write.call_id), write)
        return done()

    def get(self, call_id: str) -> Journey | None:
        """The journey of `call_id` with its events, or None."""
        return self._journeys.get(call_id)

    def journeys(self, where: JourneyFilter | None = None) -> list[Journey]:
        """The journeys matching `where`, oldest first."""
        where = where or JourneyFilter()
        found = [j for j in self._journeys.values() if where.matches(j)]
        return sorted(found, key=lambda j: (j.started_at, j.call_id))
