"""Test helpers for call records written by another process (integration tests, the demo)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from coverage_engine.journey import Journey
from coverage_engine.records.location import location_of, open_store
from coverage_engine.records.model import JourneyFilter
from coverage_engine.records.sqlite import StoreError


def kinds(journey: Journey) -> list[str]:
    """The names of the journey's events, in order."""
    return [e.name for e in journey.events]


def finished(journey: Journey) -> bool:
    """Whether the journey has its outcome."""
    return journey.outcome is not None


def wait_for_journey(
    db: Path | str,
    caller: str,
    condition: Callable[[Journey], bool] = finished,
    *,
    timeout: float = 30.0,
) -> Journey:
    """Poll the record file until the latest journey of `caller` satisfies `condition`.

    The engine writes from its own process and thread, a moment after the
    call did what the test saw; polling the file is how a test waits for it.
    Blocking: from async code, run it with `asyncio.to_thread`.
    """
    deadline = time.monotonic() + timeout
    last: Journey | None = None
    while True:
        try:
            with open_store(location_of(db)) as store:
                found = store.journeys(JourneyFilter(caller=caller), events=True)
        except StoreError:  # the engine has not created the file yet
            found = []
        if found:
            last = found[-1]
            if condition(last):
                return last
        if time.monotonic() > deadline:
            seen = f"{last.outcome}, events {kinds(last)}" if last else "none"
            raise TimeoutError(f"the journey of {caller} did not get there in time; last: {seen}")
        time.sleep(0.1)
