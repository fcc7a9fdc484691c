"""The public test helpers: an in-memory ARI that records requests and delivers pushed events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coverage_engine.ari import (
    AriSettings,
    CallerId,
    Channel,
    Connected,
    DialplanLocation,
    Disconnected,
    ResourceGone,
    StasisStart,
    StreamItem,
)
from coverage_engine.bootstrap import EngineParts, load_holder, run_engine, sink_for
from coverage_engine.metrics import Metrics
from coverage_engine.testing import FrozenClock, MemoryAri, MemoryRecorder, Request

CONFIG = Path(__file__).resolve().parents[2] / "config" / "coverage.yaml"
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("America/Chicago"))


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll until the condition holds, failing after `seconds`."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polling the fake's state is the point
            await asyncio.sleep(0.01)


async def test_requests_are_recorded_in_order_with_what_they_acted_on() -> None:
    """Each call to the fake is one Request: the method, its target, its other arguments."""
    ari = MemoryAri()
    await ari.answer("c1")
    await ari.play("c1", "sound:hello", playback_id="c1-pb1")
    await ari.dial("c1-leg1", ring_seconds=25, caller="c1")

    assert ari.requests == [
        Request("answer", "c1"),
        Request("play", "c1", {"media": ("sound:hello",), "playback_id": "c1-pb1", "lang": None}),
        Request("dial", "c1-leg1", {"ring_seconds": 25, "caller": "c1"}),
    ]
    assert ari.sent(target="c1") == ari.requests[:2]
    assert ari.sent("dial") == ari.requests[2:]


async def test_events_start_with_connected_then_come_as_pushed_until_closed() -> None:
    """The reader sees Connected, then the pushed items in order, and the stream ends on close."""
    ari = MemoryAri()
    arrival = StasisStart(type="StasisStart", channel=Channel("c1"), args=("inbound", "+1555"))
    await ari.push(arrival)
    await ari.push(Disconnected(reason="test"))
    ari.close()

    seen: list[StreamItem] = [item async for item in ari.events()]

    assert seen == [Connected(attempt=1), arrival, Disconnected(reason="test")]


async def test_a_chosen_request_fails_every_time_and_is_still_recorded() -> None:
    """`fail` makes that method on that target raise; other targets are untouched."""
    ari = MemoryAri()
    gone = ResourceGone("POST", "/channels/c1/answer", 404, "Channel not found")
    ari.fail("answer", "c1", gone)

    for _ in range(2):
        with pytest.raises(ResourceGone):
            await ari.answer("c1")
    await ari.answer("c2")

    assert [r.target for r in ari.sent("answer")] == ["c1", "c1", "c2"]


async def test_channels_bridges_and_variables_hold_what_was_asked() -> None:
    """What a restarted engine reads back reflects what was created, set and hung up."""
    ari = MemoryAri()
    ari.add_channel(Channel("c1", state="Up"))
    leg = await ari.create_channel("PJSIP/frontdesk", channel_id="c1-leg1", app_args=("leg", "c1"))
    await ari.create_bridge("c1-bridge")
    await ari.add_to_bridge("c1-bridge", ["c1", "c1-leg1"])
    await ari.set_variable("c1", "COVERAGE_DID", "+13125550100")

    assert leg.id == "c1-leg1"
    assert leg.name.startswith("PJSIP/frontdesk-")
    assert [b.channels for b in await ari.list_bridges()] == [("c1", "c1-leg1")]
    assert await ari.get_variable("c1", "COVERAGE_DID") == "+13125550100"
    assert await ari.get_variable("c1", "COVERAGE_QUEUE") is None
    assert await ari.application_channel_ids() == ["c1", "c1-leg1"]

    await ari.remove_from_bridge("c1-bridge", ["c1-leg1"])
    await ari.hangup("c1-leg1")
    assert [b.channels for b in await ari.list_bridges()] == [("c1",)]
    with pytest.raises(ResourceGone):
        await ari.get_channel("c1-leg1")
    await ari.destroy_bridge("c1-bridge")
    assert await ari.list_bridges() == []


async def test_the_engine_carries_a_call_against_the_memory_fake() -> None:
    """Office hours: the real engine answers, rings the front desk, bridges it once it answers."""
    ari, recorder = MemoryAri(), MemoryRecorder()
    parts = EngineParts(
        CONFIG,
        AriSettings("http://127.0.0.1:1/ari", "unused", "unused"),
        clock=FrozenClock(MONDAY_10AM),
        ari_factory=lambda settings: ari,
        sink=sink_for(recorder, Metrics()),
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(run_engine(parts, load_holder(parts), stop))
    # After Connected the engine looks at what Asterisk has (nothing yet).
    await until(lambda: bool(ari.sent("list_channels")))

    caller = Channel(
        "c1",
        state="Ring",
        caller=CallerId("Jane Doe", "+13125559876"),
        dialplan=DialplanLocation(app_name="Stasis", app_data="coverage-engine,inbound"),
    )
    ari.add_channel(caller)
    await ari.push(
        StasisStart(type="StasisStart", channel=caller, args=("inbound", "+13125550100"))
    )
    await until(lambda: bool(ari.sent("answer", "c1")))
    [leg] = ari.sent("originate", "c1-leg1")
    assert leg.args["endpoint"] == "PJSIP/frontdesk-maple"
    assert ari.requests.index(leg) < ari.requests.index(ari.sent("answer", "c1")[0])

    answered = Channel("c1-leg1", state="Up")
    await ari.push(StasisStart(type="StasisStart", channel=answered, args=("leg", "c1")))
    await until(lambda: bool(ari.sent("add_to_bridge")))
    stop.set()
    await asyncio.wait_for(runner, 5)

    assert set(ari.sent("add_to_bridge")[0].args["channel_ids"]) == {"c1", "c1-leg1"}
    journey = recorder.get("c1")
    assert journey is not None
    assert (journey.practice, journey.caller_number, journey.outcome) == (
        "maple-grove",
        "+13125559876",
        None,
    )
