"""The per-call logic, pure: events in, commands out (no I/O, no clock)."""

from __future__ import annotations

from coverage_engine.callflow.call import Call, CallSettings, CallState, Hold, Phase
from coverage_engine.callflow.commands import Command
from coverage_engine.callflow.events import Event, LegFailure

__all__ = ["Call", "CallSettings", "CallState", "Command", "Event", "Hold", "LegFailure", "Phase"]
