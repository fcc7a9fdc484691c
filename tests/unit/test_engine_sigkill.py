"""SIGKILL of `coverage-engine run` while a caller is queued, then a restart (fake ARI)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.journey import EventKind, Journey, Outcome
from coverage_lab.engine_process import EngineProcess
from coverage_lab.fake_ari import FakeAri
from coverage_lab.records import kinds, wait_for_journey
from tests.unit.test_run import config_in

# Monday 03:00 in Chicago: Maple Grove is closed; its plan starts with the operator queue.
MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=ZoneInfo("America/Chicago"))
MAPLE_DID = "+13125550100"
CALLER = "+13125559876"
PASSWORD = "fake-ari-password"  # the fake server's fake password


async def journey_when(db: Path, caller: str, condition: Callable[[Journey], bool]) -> Journey:
    """Wait, off the event loop (the fake ARI runs on it), for the caller's journey to match."""
    return await asyncio.to_thread(wait_for_journey, db, caller, condition, timeout=20)


async def test_sigkill_during_a_queued_call_loses_nothing_and_the_restart_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while the caller waits in the queue: after restart the journey is whole and closed."""
    monkeypatch.setenv("COVERAGE_METRICS_PORT", "0")  # no fixed port in a test run
    db = tmp_path / "records.sqlite"
    async with FakeAri(password=PASSWORD) as fake:
        engine = EngineProcess(
            config_in(tmp_path),
            ari_url=fake.url,
            ari_user=fake.username,
            ari_password=PASSWORD,
            log_path=tmp_path / "engine.log",
        )
        try:
            await asyncio.to_thread(engine.start, MONDAY_3AM)
            caller = await fake.start_call(MAPLE_DID, CALLER)
            queued = await journey_when(db, CALLER, lambda j: EventKind.QUEUE_ENTERED in kinds(j))
            await asyncio.to_thread(engine.kill)
            assert engine.proc is not None
            assert engine.proc.returncode == -9

            await asyncio.to_thread(engine.start)
            closed = await journey_when(db, CALLER, lambda j: j.outcome is not None)
            # Every event written before the kill is still there, in order, then the restart.
            assert closed.events[: len(queued.events)] == queued.events
            assert kinds(closed)[len(queued.events) :] == [
                EventKind.ENGINE_RESTARTED,
                EventKind.ENDED,
            ]
            assert closed.outcome is Outcome.FAILED_OVER_TO_DIALPLAN
            assert closed.caller_number == CALLER

            # The queue gives the caller back: the new engine carries on the same journey.
            await fake.reenter(caller, "queue-result", "TIMEOUT")
            resumed = await journey_when(
                db, CALLER, lambda j: EventKind.ONCALL_DIALING in kinds(j)[len(closed.events) :]
            )
            assert kinds(resumed)[len(closed.events)] == EventKind.DECIDED
            assert resumed.outcome is None  # in progress again
        finally:
            await asyncio.to_thread(engine.stop)
    log = engine.log()
    assert "ari_connected" in log
    assert CALLER not in log  # the caller's number is masked in the engine's own log
