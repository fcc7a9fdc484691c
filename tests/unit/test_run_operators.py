"""The engine follows operator presence (FakeAmi) when it routes: skip an empty queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from coverage_engine.ami.client import Ami, AmiSettings, AmiUnavailable
from coverage_engine.bootstrap import EngineParts, load_holder, run_engine
from coverage_engine.clock import FrozenClock
from coverage_engine.journey.sink import NoSink
from coverage_lab.fake_ami import FakeAmi
from coverage_lab.fake_ari import FakeAri

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
# Monday 03:00 in Chicago: Maple Grove is closed; its plan starts with the operators.
MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=ZoneInfo("America/Chicago"))
AMI = AmiSettings(username="coverage-engine", secret="unused")


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polling the fakes' state is the point
            await asyncio.sleep(0.02)


async def first_move(fake_ami: FakeAmi | None) -> tuple[str, str]:
    """Run the engine on one closed-hours call; return what it did first: (kind, where)."""

    async def connect(_settings: AmiSettings) -> Ami:
        if fake_ami is None:
            raise AmiUnavailable("nobody listening")
        fake_ami.login()
        return fake_ami

    async with FakeAri() as fake:
        # No call records here (NoSink): this test is about routing only.
        parts = EngineParts(
            CONFIG,
            fake.settings(),
            clock=FrozenClock(MONDAY_3AM),
            ami_settings=AMI,
            ami_factory=connect,
            sink=NoSink(),
        )
        stop = asyncio.Event()
        runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
        await fake.wait_for_websockets()
        if fake_ami is not None:  # let the tracker take its first snapshot
            await until(lambda: ("QueueStatus", "") in fake_ami.actions)
            await asyncio.sleep(0.05)
        caller = await fake.start_call("+13125550100", "+13125559876")
        moves = lambda: [  # noqa: E731
            r
            for r in fake.requests
            if ((r.method, r.path) == ("POST", "/channels") and "app" in r.query)
            or r.path == f"/channels/{caller}/continue"
        ]
        await until(lambda: bool(moves()))
        stop.set()
        await asyncio.wait_for(runner, 5)
    move = moves()[0]
    if move.path == "/channels":
        return "dial", str(move.query.get("endpoint"))
    return "continue", str(move.query.get("context"))


async def test_with_nobody_logged_in_the_caller_goes_straight_to_the_oncall_doctor() -> None:
    """Zero operators in the queue: the first thing the engine does is dial the doctor."""
    assert await first_move(FakeAmi(queues={"answering": {}})) == ("dial", "PJSIP/patel")


async def test_with_an_operator_logged_in_the_caller_joins_the_queue() -> None:
    """One operator logged in and unpaused: the caller is sent into the operator queue."""
    ami = FakeAmi(queues={"answering": {}})
    await ami.queue_add("answering", "PJSIP/operator1", "operator1")
    assert await first_move(ami) == ("continue", "coverage-queue")


async def test_without_ami_the_queue_is_tried_as_before() -> None:
    """AMI unreachable: presence is unknown, so nothing is skipped and calls still flow."""
    assert await first_move(None) == ("continue", "coverage-queue")
