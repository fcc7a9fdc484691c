"""How far a journey got, read from its events alone (pure).

Recovery uses this to close a journey that a crash left open: the record must
say what the caller had reached, from nothing but what was durably written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from coverage_engine.journey import (
    Bridged,
    OncallDialing,
    OperatorAnswered,
    Outcome,
    QueueEntered,
    QueueTimeout,
    StaffRinging,
    Stamped,
)


@dataclass(frozen=True, slots=True)
class Reached:
    """The outcome a journey had reached, who answered and when a person first did."""

    outcome: Outcome
    answered_by: str | None = None
    answered_at: datetime | None = None


def outcome_reached(events: Iterable[Stamped]) -> Reached:
    """The outcome a journey had reached after `events`, for closing it after a crash.

    A person reached stays reached: once bridged (or an operator took the call)
    the outcome is `answered_by_*` whatever follows. A call last seen in the
    operator queue is in the Asterisk dialplan's hands (app_queue, then the
    fallback context), so it was handed to the dialplan. Anything else was
    cut off inside the engine: an engine error, so the report shows it.
    """
    in_queue = False
    for stamped in events:
        match stamped.event:
            case Bridged(step_kind=kind, target=target):
                return Reached(Outcome.answered_by_kind(kind), target or None, stamped.at)
            case OperatorAnswered(member=member):
                return Reached(Outcome.ANSWERED_BY_OPERATOR, member or None, stamped.at)
            case QueueEntered():
                in_queue = True
            case QueueTimeout() | StaffRinging() | OncallDialing():
                # The queue handed the call back to the engine, or the engine moved on.
                in_queue = False
    return Reached(Outcome.FAILED_OVER_TO_DIALPLAN if in_queue else Outcome.ENGINE_ERROR)
