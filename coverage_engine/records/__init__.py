"""Call records: every call's journey, durably, and what can be read from them."""

from __future__ import annotations

from coverage_engine.records.model import Journey, JourneyEvent, JourneyFilter
from coverage_engine.records.reached import Reached, outcome_reached
from coverage_engine.records.recorder import (
    Ack,
    JourneyRecorder,
    MemoryRecorder,
    RecordError,
    acknowledged,
    record,
)
from coverage_engine.records.vocabulary import ONCALL_MISSED, EventKind, Outcome

__all__ = [
    "ONCALL_MISSED",
    "Ack",
    "EventKind",
    "Journey",
    "JourneyEvent",
    "JourneyFilter",
    "JourneyRecorder",
    "MemoryRecorder",
    "Outcome",
    "Reached",
    "RecordError",
    "acknowledged",
    "outcome_reached",
    "record",
]
