"""The journeys of the calls in progress, in memory, as their events arrive.

`LiveJourneys` is a journey sink: it folds each event into the call's
journey (`Journey.apply`) and tells its subscribers, who get the journey as
it now stands and the event that made it so. The metrics count ended calls
from it; a live board would read `calls()` once and follow the updates.
A journey leaves the view when it ends.

A call this process did not see arrive (taken on after a restart) starts
its journey here at the first event seen: `from_arrival` is then False and
its times do not count from the caller's arrival.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from coverage_engine.journey.events import JourneyEvent, Received
from coverage_engine.journey.fold import Journey, Stamped

log = structlog.get_logger("coverage_engine.journey")

Listener = Callable[[Journey, Stamped], None]
"""Told (the journey after the event, the event) for every event of every call."""


def from_arrival(journey: Journey) -> bool:
    """Whether the journey was followed from the caller's arrival (its first event is Received)."""
    return bool(journey.events) and isinstance(journey.events[0].event, Received)


class LiveJourneys:
    """A `JourneySink` keeping the journeys of calls in progress, with subscribers."""

    def __init__(self) -> None:
        self._calls: dict[str, Journey] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` for every event from now on; returns the way to stop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def calls(self) -> list[Journey]:
        """The journeys of the calls in progress, oldest first."""
        return sorted(self._calls.values(), key=lambda j: (j.started_at, j.call_id))

    def get(self, call_id: str) -> Journey | None:
        """The journey of a call in progress, or None."""
        return self._calls.get(call_id)

    def record(self, call_id: str, at: datetime, event: JourneyEvent) -> None:
        current = self._calls.get(call_id)
        if current is None and isinstance(event, Received):
            journey = Journey.begin(call_id, at, event)
        else:
            journey = (current or Journey(call_id, started_at=at)).apply(at, event)
        if journey.in_progress:
            self._calls[call_id] = journey
        else:
            self._calls.pop(call_id, None)
        stamped = journey.events[-1]
        for listener in list(self._listeners):
            try:
                listener(journey, stamped)
            except Exception:
                log.exception("journey_listener_failed", call_id=call_id, journey_event=event.name)
