"""Should a caller be sent to the operator queue right now? Availability-aware routing.

`PresenceGate.skip_reason` is the `presence.OperatorsCheck` a call asks as
an operators step is about to start (`presence.reason_to_skip` decides which
steps are asked: never the plan's last). Presence can change while the
caller is with doctors who do not answer, so it is asked then, not when the
call arrives.

The seed's promise: at 4 a.m. with nobody logged in, a caller must not sit in
an empty queue listening to music; they go on to the next person at once
(normally the on-call doctor). The same when the queue already holds more
callers than the practice accepts to keep waiting.

`skip_reason` is the pure rule; `PresenceGate` applies it to what the
`PresenceTracker` currently knows. When presence is unknown (AMI not
configured, not connected yet, or disconnected) nothing is skipped: the
caller goes to the queue and app_queue's own `joinempty` is the net. A wrong
"nobody there" would bypass operators who are in fact ready.
"""

from __future__ import annotations

from collections.abc import Callable

from coverage_engine.ami.presence import Presence, QueueAvailability


def skip_reason(availability: QueueAvailability | None, max_waiting: int | None) -> str | None:
    """Why the operators step should be skipped, or None to go ahead."""
    if availability is None:
        return None
    a = availability
    if a.logged_in == 0:
        return f"no operator logged in to queue {a.queue}"
    if a.available == 0:
        offline = a.logged_in - a.paused
        detail = f"{a.paused} paused" + (f", {offline} phone(s) offline" if offline else "")
        return f"no operator available in queue {a.queue} ({detail})"
    if max_waiting is not None and a.waiting >= max_waiting:
        return (
            f"{a.waiting} caller(s) already waiting in queue {a.queue} "
            f"(the practice allows {max_waiting})"
        )
    return None


class PresenceGate:
    """`skip_reason` over live presence, with per-practice waiting limits."""

    def __init__(
        self,
        presence: Callable[[], Presence],
        max_waiting: Callable[[str], int | None] = lambda _practice: None,
    ) -> None:
        # Both are read at each question: the presence as it is now, the limit
        # from the configuration as it is now (a reload changes it).
        self._presence = presence
        self._max_waiting = max_waiting

    def skip_reason(self, practice_id: str, queue: str) -> str | None:
        """Why nobody should be sent to `queue` for `practice_id` now, or None."""
        return skip_reason(self._presence().availability(queue), self._max_waiting(practice_id))
