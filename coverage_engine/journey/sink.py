"""Where journey events go once the engine has stamped them: the subscription seam.

The engine hands every journey event of every call to one `JourneySink`.
The composition root builds that sink from the parts that want the events:
the record store (`records.sink.RecorderSink`), the metrics
(`metrics.JourneyMetrics`), the live view of the calls in progress
(`journey.live.LiveJourneys`), and anything later (a console's board) joins
the `Fanout` the same way. A sink runs on the engine's event loop between two
requests of a call: it must not block, and whatever it raises is its own
problem (the engine logs it and carries on with the call).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import structlog

from coverage_engine.journey.events import JourneyEvent

log = structlog.get_logger("coverage_engine.journey")


class JourneySink(Protocol):
    """Receives each journey event of each call, in the order the call produced them."""

    def record(self, call_id: str, at: datetime, event: JourneyEvent) -> None:
        """Take one event; must not block the event loop."""
        ...


class NoSink:
    """Keeps nothing: for runs without a record store (the engine's log is then the trace)."""

    def record(self, call_id: str, at: datetime, event: JourneyEvent) -> None:
        return None


class Fanout:
    """Hands every event to each sink in turn; one failing sink never starves the others."""

    def __init__(self, *sinks: JourneySink) -> None:
        self._sinks = sinks

    def record(self, call_id: str, at: datetime, event: JourneyEvent) -> None:
        for sink in self._sinks:
            try:
                sink.record(call_id, at, event)
            except Exception:
                log.exception("journey_sink_failed", call_id=call_id, journey_event=event.name)
