"""Which journeys to read: the filter of `calls list`, `calls export` and the report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coverage_engine.journey import Journey, JourneyKind, Outcome


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
    kind: JourneyKind | None = None  # calls, or handoff checks

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
        if self.kind is not None and journey.kind is not self.kind:
            return False
        return self.caller is None or self.caller in journey.caller_number
