"""What a call's record holds: the journey and its ordered events (read side)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from coverage_engine.records.vocabulary import EventKind, Outcome


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    """One thing that happened on a call, with when and the details that explain it."""

    at: datetime
    kind: EventKind
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Journey:
    """One call from the moment it entered the application to its end.

    `call_id` is Asterisk's linkedid: it survives transfers and names every leg
    the engine created for the call. `practice`, `status`, `reason` and `plan`
    come from the `decided` event; they are empty until the routing decision.
    `outcome` is None while the call is in progress.
    """

    call_id: str
    did: str
    caller_number: str
    caller_name: str
    started_at: datetime
    practice: str = ""
    status: str = ""  # "open" / "closed" at the instant of the decision
    reason: str = ""
    plan: Mapping[str, Any] | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    answered_by: str | None = None
    time_to_person: timedelta | None = None
    talk_time: timedelta | None = None
    events: tuple[JourneyEvent, ...] = ()

    @property
    def in_progress(self) -> bool:
        """Whether the journey has not been finished yet."""
        return self.outcome is None


@dataclass(frozen=True, slots=True)
class JourneyFilter:
    """Which journeys to list or export; every field left None matches everything.

    `since` is inclusive and `until` exclusive, both compared with `started_at`,
    so consecutive months never overlap or leave a gap.
    """

    since: datetime | None = None
    until: datetime | None = None
    practice: str | None = None
    outcome: Outcome | None = None
    caller: str | None = None  # a substring of the caller number, e.g. the last four digits

    def matches(self, journey: Journey) -> bool:
        """Whether `journey` passes the filter (the in-memory twin of the SQL query)."""
        if self.since is not None and journey.started_at < self.since:
            return False
        if self.until is not None and journey.started_at >= self.until:
            return False
        if self.practice is not None and journey.practice != self.practice:
            return False
        if self.outcome is not None and journey.outcome != self.outcome:
            return False
        return self.caller is None or self.caller in journey.caller_number
