"""The presence tracker driven by the in-memory FakeAmi: login, changes, disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from coverage_engine.ami.client import AmiDisconnected
from coverage_engine.ami.presence import QueueAvailability
from coverage_engine.ami.tracker import PresenceTracker
from coverage_lab.fake_ami import FakeAmi

Q = "answering"


@pytest.fixture
async def running() -> AsyncIterator[tuple[FakeAmi, PresenceTracker]]:
    ami = FakeAmi(queues={Q: {}})
    tracker = PresenceTracker(ami)
    task = asyncio.create_task(tracker.run())
    ami.login()
    async with asyncio.timeout(2):
        await tracker.wait_synced()
    yield ami, tracker
    task.cancel()


async def until(tracker: PresenceTracker, expected: QueueAvailability | None) -> None:
    """Wait (bounded) until the tracked availability of the queue is `expected`."""
    async with asyncio.timeout(2):
        await tracker.wait_until(lambda p: p.availability(Q) == expected)


async def test_login_pause_and_logout_are_followed(
    running: tuple[FakeAmi, PresenceTracker],
) -> None:
    """Each operator action through AMI shows up in the tracked availability."""
    ami, tracker = running
    assert tracker.presence.availability(Q) == QueueAvailability(Q, 0, 0, 0, 0)
    await ami.queue_add(Q, "PJSIP/operator1", "operator1")
    await until(tracker, QueueAvailability(Q, 1, 1, 0, 0))
    await ami.queue_pause(Q, "PJSIP/operator1", paused=True, reason="lunch")
    ami.caller_joins(Q, "100.1")
    await until(tracker, QueueAvailability(Q, 1, 0, 1, 1))
    await ami.queue_remove(Q, "PJSIP/operator1")
    await until(tracker, QueueAvailability(Q, 0, 0, 0, 1))
    assert tracker.presence.members == {}


async def test_a_disconnect_forgets_and_the_next_login_resyncs(
    running: tuple[FakeAmi, PresenceTracker],
) -> None:
    """While AMI is down availability is unknown; after login the snapshot is fetched again."""
    ami, tracker = running
    await ami.queue_add(Q, "PJSIP/operator1", "operator1")
    ami.notices.put_nowait(AmiDisconnected())
    await until(tracker, None)
    ami.login()
    async with asyncio.timeout(2):
        await tracker.wait_synced()
    assert tracker.presence.availability(Q) == QueueAvailability(Q, 1, 1, 0, 0)
    assert [a[0] for a in ami.actions].count("QueueStatus") == 2
