"""How far a journey got, read from its events alone (pure).

Recovery uses this to close a journey that a crash left open: the record must
say what the caller had reached, from nothing but what was durably written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from coverage_engine.records.model import JourneyEvent
from coverage_engine.records.vocabulary import EventKind, Outcome

_BRIDGED_KIND_OUTCOME: Mapping[str, Outcome] = {
    "staff": Outcome.ANSWERED_BY_STAFF,
    "operator": Outcome.ANSWERED_BY_OPERATOR,
    "operators": Outcome.ANSWERED_BY_OPERATOR,
    "oncall": Outcome.ANSWERED_BY_ONCALL,
}


@dataclass(frozen=True, slots=True)
class Reached:
    """The outcome a journey had reached, who answered and when a person first did."""

    outcome: Outcome
    answered_by: str | None = None
    answered_at: datetime | None = None


def outcome_reached(events: Iterable[JourneyEvent]) -> Reached:
    """The outcome a journey had reached after `events`, for closing it after a crash.

    A person reached stays reached: once bridged (or an operator took the call)
    the outcome is `answered_by_*` whatever follows. A call last seen in the
    operator queue is in the Asterisk dialplan's hands (app_queue, then the
    fallback context), so it is `failed_over_to_dialplan`. Anything else was
    cut off inside the engine: `engine_error`, so the report shows it.
    """
    in_queue = False
    for event in events:
        if event.kind == EventKind.BRIDGED:
            outcome = _BRIDGED_KIND_OUTCOME.get(str(event.details.get("kind", "")))
            if outcome is not None:
                target = event.details.get("target")
                return Reached(outcome, str(target) if target else None, event.at)
        elif event.kind == EventKind.OPERATOR_ANSWERED:
            member = event.details.get("member")
            return Reached(Outcome.ANSWERED_BY_OPERATOR, str(member) if member else None, event.at)
        elif event.kind == EventKind.QUEUE_ENTERED:
            in_queue = True
        elif event.kind in (
            EventKind.QUEUE_TIMEOUT,
            EventKind.STAFF_RINGING,
            EventKind.ONCALL_DIALING,
        ):
            # The queue handed the call back to the engine, or the engine moved on.
            in_queue = False
    return Reached(Outcome.FAILED_OVER_TO_DIALPLAN if in_queue else Outcome.ENGINE_ERROR)
