"""Should a caller be sent to the operator queue right now? Availability-aware routing.

Applied when the call arrives (`gate_plan`): operators steps nobody can
answer are taken out of the plan, so the caller goes on to the next person
at once, and the plan's reason says why (it is the journey's reason too).
Asked again by the call right before it enters each operators step but the
last (`PresenceGate.skip_reason` is the call's `operators_check`), because
presence can change while the caller is with doctors who do not answer.
The plan's last step, the operators as the final safety net, always stays:
if nobody is there then either, app_queue returns at once (joinempty) and
the dialplan's safety net takes over.

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
from dataclasses import replace
from typing import Protocol

from coverage_engine.ami.presence import Presence, QueueAvailability
from coverage_engine.plan import Plan, StepKind


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


class OperatorGate(Protocol):
    """What the engine asks before sending a caller to an operator queue."""

    def skip_reason(self, practice_id: str, queue: str) -> str | None: ...


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
        return skip_reason(self._presence().availability(queue), self._max_waiting(practice_id))


def gate_plan(plan: Plan, gate: OperatorGate) -> Plan:
    """`plan` without the operators steps the gate says to skip (never the last step)."""
    kept = []
    skipped: list[str] = []
    last = len(plan.steps) - 1
    for index, step in enumerate(plan.steps):
        reason = (
            gate.skip_reason(plan.practice_id, step.dial)
            if step.kind is StepKind.OPERATORS and index != last
            else None
        )
        if reason is None:
            kept.append(step)
        elif reason not in skipped:
            skipped.append(reason)
    if not skipped:
        return plan
    why = "; ".join(skipped)
    return replace(
        plan,
        steps=tuple(kept),
        reason=f"{plan.reason}; operators skipped: {why}",
        notes=(*plan.notes, f"operators skipped: {why}"),
    )
