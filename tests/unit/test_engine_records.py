"""The engine's record and metrics, written by the same run that carries the call (fake ARI)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from coverage_engine.bootstrap import EngineParts, load_holder, run_engine
from coverage_engine.clock import FrozenClock
from coverage_engine.journey import EventKind, Outcome
from coverage_engine.records.sqlite import RecordStore
from coverage_lab.fake_ari import FakeAri
from tests.unit.test_run import bridged, config_in, until

MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
MAPLE_DID = "+13125550100"
CALLER = "+13125559876"


async def started(fake: FakeAri, parts: EngineParts) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Run the engine on `parts` until the returned event is set; wait for its ARI link."""
    stop = asyncio.Event()
    runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
    await fake.wait_for_websockets()
    return runner, stop


async def stopped(runner: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Stop the engine cleanly (calls stay connected)."""
    stop.set()
    await asyncio.wait_for(runner, 5)


async def test_a_front_desk_call_is_recorded_and_counted(tmp_path: Path) -> None:
    """Answered by the front desk, then the caller hangs up: the record and the metrics agree."""
    clock = FrozenClock(MONDAY_10AM)
    async with FakeAri() as fake:
        fake.dial_outcomes["PJSIP/frontdesk-maple"] = "answer"
        parts = EngineParts(config_in(tmp_path), fake.settings(), clock=clock)
        runner, stop = await started(fake, parts)
        caller = await fake.start_call(MAPLE_DID, CALLER)
        await until(lambda: bridged(fake, caller, f"{caller}-leg1"))
        clock.advance(95)
        await fake.remote_hangup(caller)
        metrics = parts.metrics.registry
        staff = {"practice": "maple-grove", "outcome": "answered_by_staff"}
        await until(lambda: metrics.get_sample_value("coverage_calls_total", staff) == 1)
        assert metrics.get_sample_value("coverage_ari_connected") == 1
        assert metrics.get_sample_value("coverage_routing_decision_seconds_count") == 1
        await stopped(runner, stop)

    with RecordStore.open(tmp_path / "records.sqlite") as store:
        journey = store.get(caller)
    assert journey is not None
    assert journey.outcome is Outcome.ANSWERED_BY_STAFF
    assert journey.answered_by == "frontdesk-maple"
    assert (journey.caller_number, journey.did, journey.status) == (CALLER, MAPLE_DID, "open")
    assert [e.name for e in journey.events] == [
        EventKind.RECEIVED,
        EventKind.DECIDED,
        EventKind.STAFF_RINGING,
        EventKind.BRIDGED,
        EventKind.CALLER_HUNG_UP,
        EventKind.ENDED,
    ]
    assert journey.time_to_person == timedelta(0)  # the frozen clock did not move before
    assert journey.talk_time == timedelta(seconds=95)


async def test_a_call_left_open_by_a_stop_is_closed_by_the_next_start(tmp_path: Path) -> None:
    """A journey the previous run left open is closed on the next start with what it reached."""
    config = config_in(tmp_path)
    clock = FrozenClock(MONDAY_10AM)
    async with FakeAri() as fake:
        fake.dial_outcomes["PJSIP/frontdesk-maple"] = "answer"
        runner, stop = await started(fake, EngineParts(config, fake.settings(), clock=clock))
        caller = await fake.start_call(MAPLE_DID, CALLER)
        await until(lambda: bridged(fake, caller, f"{caller}-leg1"))
        await stopped(runner, stop)
        clock.advance(60)
        await stopped(*await started(fake, EngineParts(config, fake.settings(), clock=clock)))

    with RecordStore.open(tmp_path / "records.sqlite") as store:
        journey = store.get(caller)
    assert journey is not None
    assert (journey.outcome, journey.answered_by) == (Outcome.ANSWERED_BY_STAFF, "frontdesk-maple")
    assert [e.name for e in journey.events][-3:] == [
        EventKind.BRIDGED,
        EventKind.ENGINE_RESTARTED,
        EventKind.ENDED,
    ]
    assert journey.events[-2].at == MONDAY_10AM + timedelta(seconds=60)
