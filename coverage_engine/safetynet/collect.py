"""Collects the safety net's notes of finished calls into their journeys (a task of each engine).

Every engine collects (at each connect, then every `EVERY` seconds): what
the dialplan noted while no engine was up, or after an engine handed a
caller back, becomes the call's journey. Writes carry keys derived from the
notes, so two engines collecting the same call, or one collecting twice
after a crash, write it once; the notes are deleted only once the journey is
durable.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from coverage_engine.ari.astdb import AstDb, AstDbError, DeleteTree, Get, Keys
from coverage_engine.journey import Received
from coverage_engine.records.recorder import JourneyRecorder, acknowledged, received_key
from coverage_engine.safetynet.notes import NOTES_FAMILY, finished, journey_events

log = structlog.get_logger("coverage_engine.safetynet")

EVERY = 30.0
_FLUSH_WITHIN = 10.0


class NotesCollector:
    """Turns finished safety-net notes into journeys, then removes them."""

    def __init__(self, astdb: AstDb, recorder: JourneyRecorder) -> None:
        self._astdb = astdb
        self._recorder = recorder
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """Collect soon (the ARI link came up: calls may have waited for us)."""
        self._wake.set()

    async def run(self) -> None:
        """Collect for ever."""
        while True:
            try:
                await self.collect()
            except AstDbError as exc:
                log.warning("safety_net.collect_failed", error=str(exc))
            except Exception:
                # Housekeeping: a bug here must never stop the engine carrying calls.
                log.exception("safety_net.collect_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=EVERY)

    async def collect(self) -> int:
        """One round; how many calls' journeys were written."""
        (listed,) = await self._astdb.run([Keys(NOTES_FAMILY)])
        calls = [c for c in (listed or "").split(",") if c]
        written = 0
        for call_id in calls:
            family = f"{NOTES_FAMILY}/{call_id}"
            (names,) = await self._astdb.run([Keys(family)])
            keys = [n for n in (names or "").split(",") if n]
            values = await self._astdb.run([Get(f"{family}/{k}") for k in keys]) if keys else []
            notes = {k: v or "" for k, v in zip(keys, values, strict=True)}
            if not finished(notes):
                continue  # the safety net still has the caller
            for n, (at, event) in enumerate(journey_events(notes)):
                key = received_key(call_id) if isinstance(event, Received) else f"net:{call_id}:{n}"
                self._recorder.write(call_id, at, event, key=key)
            try:
                await asyncio.wait_for(acknowledged(self._recorder.flush()), _FLUSH_WITHIN)
            except TimeoutError:
                log.warning("safety_net.collect_waits_for_records", call_id=call_id)
                return written
            await self._astdb.run([DeleteTree(family)])
            written += 1
            log.info("safety_net.journey", call_id=call_id)
        return written
