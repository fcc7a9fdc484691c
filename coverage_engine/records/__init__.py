"""Call records: every call's journey, durably, and what can be read from them.

The journeys themselves (their events, outcomes and the fold) are
`coverage_engine.journey`; this package stores and reads them.
"""

from __future__ import annotations

from coverage_engine.records.model import JourneyFilter
from coverage_engine.records.reached import Reached, outcome_reached
from coverage_engine.records.recorder import (
    Ack,
    JourneyRecorder,
    MemoryRecorder,
    RecordError,
    acknowledged,
)

__all__ = [
    "Ack",
    "JourneyFilter",
    "JourneyRecorder",
    "MemoryRecorder",
    "Reached",
    "RecordError",
    "acknowledged",
    "outcome_reached",
]
