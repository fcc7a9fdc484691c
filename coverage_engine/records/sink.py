"""The engine's journey sink, backed by a `JourneyRecorder`.

The engine hands every `RecordEvent` of the call flow to a sink's
`record(call_id, at, name, details)`. This one writes it to the call record
without waiting: the write's outcome arrives later on its Ack, where a
failure is logged (without the details, which may hold a caller's number)
and counted, and the call goes on regardless.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from coverage_engine.records.recorder import Ack, JourneyRecorder, record

log = structlog.get_logger("coverage_engine.records")


class RecorderSink:
    """Writes the call flow's record events to a `JourneyRecorder`; never blocks, never raises."""

    def __init__(
        self, recorder: JourneyRecorder, *, on_failure: Callable[[], None] | None = None
    ) -> None:
        self._recorder = recorder
        self._on_failure = on_failure

    def record(self, call_id: str, at: datetime, name: str, details: Mapping[str, Any]) -> None:
        """Queue the write of one record event of call `call_id`."""
        ack = record(self._recorder, call_id, name, details, at=at)

        def check(done: Ack) -> None:
            # Runs on the writer thread (or here, when the Ack is already done).
            error = done.exception()
            if error is None:
                return
            log.error("journey_write_failed", call_id=call_id, journey_event=name, error=str(error))
            if self._on_failure is not None:
                self._on_failure()

        ack.add_done_callback(check)

    def flush(self) -> Ack:
        """An Ack that completes once every record event given so far is durable."""
        return self._recorder.flush()
