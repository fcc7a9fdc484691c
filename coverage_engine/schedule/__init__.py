"""Pure scheduling: office hours, holidays, overrides and on-call rotations.

Nothing here reads the clock or does I/O: every function takes the instant it
is asked about, as a timezone-aware datetime.
"""

from __future__ import annotations

from coverage_engine.schedule.holidays import HolidayHit, holidays_on
from coverage_engine.schedule.rotation import OnCallAssignment, OnCallSpan, oncall_at, oncall_spans
from coverage_engine.schedule.status import PracticeStatus, practice_status, require_aware

__all__ = [
    "HolidayHit",
    "OnCallAssignment",
    "OnCallSpan",
    "PracticeStatus",
    "holidays_on",
    "oncall_at",
    "oncall_spans",
    "practice_status",
    "require_aware",
]
