"""The engine's journey sink that writes to the call records (a `JourneyRecorder`).

It writes each event without waiting: the write's outcome arrives later on
its Ack, where a failure is logged (without the details, which may hold a
caller's number) and counted, and the call goes on regardless.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from coverage_engine.journey import JourneyEvent
from coverage_engine.records.recorder import Ack, JourneyRecorder, once_key

log = structlog.get_logger("coverage_engine.records")


class RecorderSink:
    """Writes the call flow's journey events to a `JourneyRecorder`; never blocks, never raises."""

    def __init__(
        self, recorder: JourneyRecorder, *, on_failure: Callable[[], None] | None = None
    ) -> None:
        self._recorder = recorder
        self._on_failure = on_failure

    def record(self, call_id: str, at: datetime, event: JourneyEvent) -> None:
        """Queue the write of one journey event of call `call_id`."""
        ack = self._recorder.write(call_id, at, event, key=once_key(call_id, event))

        def check(done: Ack) -> None:
            # Runs on the writer thread (or here, when the Ack is already done).
            error = done.exception()
            if error is None:
                return
            log.error(
                "journey_write_failed", call_id=call_id, journey_event=event.name, error=str(error)
            )
            if self._on_failure is not None:
                self._on_failure()

        ack.add_done_callback(check)

    def flush(self) -> Ack:
        """An Ack that completes once every journey event given so far is durable."""
        return self._recorder.flush()
