"""The ARI client against the real sandbox Asterisk 22 with SIPp calls (no engine running).

These pin down the Asterisk facts the client relies on: StasisStart carries
the dialplan's DID argument, error statuses and messages are what `errors.py`
maps, `/channels/create` takes caller-id variables, and a dropped event
WebSocket reconnects while the calls in the application stay up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from coverage_engine import wire
from coverage_engine.ari import (
    AriHttpError,
    AriSettings,
    CallBroadcast,
    CallerId,
    ChannelDestroyed,
    ChannelHangupRequest,
    ChannelStateChange,
    Connected,
    Dial,
    Disconnected,
    ResourceGone,
    StasisEnd,
    StasisStart,
    StreamItem,
)
from coverage_engine.ari.client import AriClient
from coverage_lab.ari_http import AriCredentials
from coverage_lab.phones import CallerHandle, Phones, answers, busy, wait_bridged
from coverage_lab.sandbox import Sandbox

pytestmark = pytest.mark.integration

T = TypeVar("T")
DID = "+15550100"


@pytest.fixture
async def client(ari: AriCredentials) -> AsyncIterator[AriClient]:
    """Our client registered as the coverage-engine application on the sandbox."""
    settings = AriSettings(
        url=ari.url, username=ari.user, password=ari.password, app=ari.app, heartbeat=2.0
    )
    async with AriClient(settings) as ari_client:
        assert await ari_client.wait_connected(10)
        yield ari_client


async def next_of(
    stream: AsyncIterator[StreamItem],
    kind: type[T],
    match: Callable[[T], bool] = lambda _: True,
    within: float = 20.0,
) -> T:
    """The next stream item of a type that matches, skipping others."""
    async with asyncio.timeout(within):
        async for item in stream:
            if isinstance(item, kind) and match(item):
                return item
    raise AssertionError(f"stream ended before a {kind.__name__}")


async def offered(stream: AsyncIterator[StreamItem], call: CallerHandle) -> CallBroadcast:
    """The broadcast offering a SIPp caller's call (matched by its unique number)."""
    return await next_of(stream, CallBroadcast, lambda e: e.channel.caller.number == call.caller)


async def inbound(
    client: AriClient, stream: AsyncIterator[StreamItem], call: CallerHandle
) -> StasisStart:
    """Claim a SIPp caller's call when it is offered, and return its StasisStart."""
    offer = await offered(stream, call)
    assert await client.claim(offer.channel.id)
    return await next_of(stream, StasisStart, lambda e: e.channel.id == offer.channel.id)


async def test_a_sipp_call_yields_stasis_start_with_the_did(
    client: AriClient, place_call: Callable[..., CallerHandle]
) -> None:
    """A call on the carrier trunk is offered, and once claimed enters the app with
    `inbound,<DID>` and the caller's number."""
    events = client.events()
    call = place_call(DID)
    start = await inbound(client, events, call)
    assert start.args == ("inbound", DID)
    assert start.channel.dialplan.app_name == "StasisBroadcast"
    assert start.channel.caller.number == call.caller
    assert start.channel.id in await client.application_channel_ids()
    await client.hangup(start.channel.id)
    await next_of(events, ChannelHangupRequest, lambda e: e.channel.id == start.channel.id)
    await next_of(events, StasisEnd, lambda e: e.channel.id == start.channel.id)
    # The inbound channel's implicit subscription ended with StasisEnd: Asterisk
    # sends no ChannelDestroyed for it (the fake ARI server mirrors this).
    with pytest.raises(TimeoutError):
        await next_of(events, ChannelDestroyed, within=1)
    result = await asyncio.to_thread(call.wait, 20)
    assert not result.answered
    assert call.proc.poll() is not None  # the PBX ended the call


async def test_snapshots_carry_the_call_memory_named_in_channelvars(
    client: AriClient, place_call: Callable[..., CallerHandle]
) -> None:
    """ari.conf's channelvars: events and the channel list show COVERAGE_* with no request each."""
    events = client.events()
    call = place_call(DID)
    start = await inbound(events, call)
    channel_id = start.channel.id
    # Set by the dialplan before Stasis; the others are not set yet, and still listed.
    assert start.channel.variables.get(wire.DID) == DID
    assert set(wire.CALL_MEMORY) <= set(start.channel.variables)
    await client.set_variable(channel_id, wire.TRIED, "operators/answering,oncall/patel")
    (listed,) = [c for c in await client.list_channels() if c.id == channel_id]
    assert listed.variables[wire.TRIED] == "operators/answering,oncall/patel"
    assert listed.variables[wire.DID] == DID
    await client.hangup(channel_id)


async def test_asterisk_error_answers_map_onto_the_error_tree(
    client: AriClient, place_call: Callable[..., CallerHandle]
) -> None:
    """Gone channel -> ResourceGone (404, and addChannel's 400); an unset variable reads None."""
    events = client.events()
    call = place_call(DID)
    start = await inbound(client, events, call)
    channel_id = start.channel.id
    assert await client.get_variable(channel_id, "COVERAGE_NOT_SET") is None
    await client.set_variable(channel_id, "COVERAGE_TRIED", "oncall/patel")
    assert await client.get_variable(channel_id, "COVERAGE_TRIED") == "oncall/patel"
    await client.create_bridge("live-test-bridge")
    try:
        with pytest.raises(ResourceGone):
            await client.add_to_bridge("live-test-bridge", ["no-such-channel"])
    finally:
        await client.destroy_bridge("live-test-bridge")
    with pytest.raises(ResourceGone):
        await client.destroy_bridge("live-test-bridge")
    await client.hangup(channel_id)
    await next_of(events, StasisEnd, lambda e: e.channel.id == channel_id)
    with pytest.raises(ResourceGone):
        await client.answer(channel_id)
    with pytest.raises(ResourceGone):
        await client.hangup(channel_id)


async def test_an_outbound_leg_is_created_dialed_and_bridged_with_the_caller(
    client: AriClient, phones: Phones, place_call: Callable[..., CallerHandle], ari: AriCredentials
) -> None:
    """create_channel + dial reach a phone; answered, it enters the app and is bridged."""
    phones.start("operator1", answers(after=1))
    events = client.events()
    call = place_call(DID)
    caller = (await inbound(client, events, call)).channel
    await client.answer(caller.id)
    await client.start_moh(caller.id)
    leg = await client.create_channel(
        "PJSIP/operator1",
        channel_id="live-leg-1",
        app_args=["leg", caller.id],
        originator=caller.id,
        caller_id=CallerId(name="MGP: Test Caller", number=call.caller),
    )
    assert leg.id == "live-leg-1"
    # Asterisk 22 puts a created channel into the app at once, before dialing.
    entered = await next_of(events, StasisStart, lambda e: e.channel.id == leg.id)
    assert (entered.args, entered.channel.state) == (("leg", caller.id), "Down")
    await client.dial(leg.id, ring_seconds=15)
    await next_of(events, Dial, lambda e: e.peer.id == leg.id and e.dialstatus == "ANSWER")
    # The connected line set at creation is what the operator's phone showed.
    (operator_call,) = phones.calls("operator1")
    assert operator_call.caller == call.caller
    await client.stop_moh(caller.id)
    await client.create_bridge("live-call-1")
    try:
        await client.add_to_bridge("live-call-1", [caller.id, leg.id])
        await asyncio.to_thread(wait_bridged, ari, "carrier-in", "operator1", timeout=10)
        assert phones.answered_by(call.caller) == "operator1"
    finally:
        await client.hangup(leg.id)
        await client.hangup(caller.id)
        await client.destroy_bridge("live-call-1")


async def test_an_originated_leg_rings_at_once_and_enters_the_app_answered(
    client: AriClient, phones: Phones, place_call: Callable[..., CallerHandle]
) -> None:
    """originate (POST /channels) rings the phone in one request, showing the caller; the app
    hears the leg's Dial events at once and its StasisStart, state Up, when it answers."""
    phones.start("operator1", answers(after=1))
    events = client.events()
    call = place_call(DID)
    caller = (await inbound(events, call)).channel
    await client.originate(
        "PJSIP/operator1",
        channel_id="live-orig-1",
        ring_seconds=15,
        app_args=["leg", caller.id],
        originator=caller.id,
        caller_id=CallerId(name="MGP: Test Caller", number=call.caller),
    )
    try:
        ringing = await next_of(events, Dial, lambda e: e.peer.id == "live-orig-1")
        assert ringing.dialstatus == ""
        entered = await next_of(events, StasisStart, lambda e: e.channel.id == "live-orig-1")
        assert (entered.args, entered.channel.state) == (("leg", caller.id), "Up")
        (operator_call,) = phones.calls("operator1")
        assert operator_call.caller == call.caller
    finally:
        await client.hangup("live-orig-1")
        await client.hangup(caller.id)


async def test_an_originated_leg_to_a_busy_phone_is_destroyed_with_cause_17(
    client: AriClient, phones: Phones
) -> None:
    """Busy: the app hears the originated leg's ChannelDestroyed with cause 17 (user busy)."""
    phones.start("operator3", busy())
    events = client.events()
    await client.originate("PJSIP/operator3", channel_id="live-orig-busy", ring_seconds=10)
    destroyed = await next_of(events, ChannelDestroyed, lambda e: e.channel.id == "live-orig-busy")
    assert destroyed.cause == 17


async def test_several_variables_set_in_one_request_arrive_exactly(
    client: AriClient, place_call: Callable[..., CallerHandle]
) -> None:
    """ARRAY() through ARI: caller text with commas, quotes, parentheses, brackets, a
    backslash and dialplan syntax is stored as given, beside the empty and plain values."""
    events = client.events()
    call = place_call(DID)
    channel_id = (await inbound(events, call)).channel.id
    hostile = 'Jane, "Doe" (x) [y] \\ back|pipe ${EXTEN} $[1+1] é ; end'
    values = [
        ("COVERAGE_PRACTICE", "maple-grove"),
        ("COVERAGE_TRIED", "staff/frontdesk-maple,operators/answering"),
        ("COVERAGE_QUEUE_WHISPER", ""),
        ("COVERAGE_X", hostile),
        ("CALLERID(name)", f"MGP: {hostile}"),
    ]
    await client.set_variables(channel_id, values)
    for name, value in values:
        assert await client.get_variable(channel_id, name) == value, name
    await client.hangup(channel_id)


async def test_a_busy_phone_ends_the_leg_with_cause_17(client: AriClient, phones: Phones) -> None:
    """A busy callee shows as the leg's StasisEnd and ChannelDestroyed(17), not as a Dial event."""
    phones.start("operator3", busy())
    events = client.events()
    await client.create_channel("PJSIP/operator3", channel_id="live-busy-1", app_args=["leg"])
    await client.dial("live-busy-1", ring_seconds=10)
    destroyed = await next_of(events, ChannelDestroyed, lambda e: e.channel.id == "live-busy-1")
    assert destroyed.cause == 17


async def test_an_unknown_endpoint_fails_at_create(client: AriClient) -> None:
    """Asterisk answers 500 with {"error": "Allocation failed"}; the message is kept."""
    with pytest.raises(AriHttpError) as caught:
        await client.create_channel("PJSIP/nobody-here", channel_id="live-nobody")
    assert (caught.value.status, caught.value.message) == (500, "Allocation failed")


async def test_the_event_filter_keeps_every_other_type_away(
    client: AriClient, place_call: Callable[..., CallerHandle]
) -> None:
    """PUT eventFilter with {"allowed": [{"type": ...}]}: only those types come for a call."""
    events = client.events()
    await client.filter_events({"StasisStart", "StasisEnd"})
    call = place_call(DID)
    start = await inbound(events, call)
    # A state change, a variable, a hang-up request: none of them may come.
    await client.answer(start.channel.id)
    await client.set_variable(start.channel.id, "COVERAGE_TRIED", "x")
    await client.hangup(start.channel.id)
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for item in events:
            seen.append(type(item).__name__)
            if isinstance(item, StasisEnd) and item.channel.id == start.channel.id:
                break
    assert seen == ["StasisEnd"]


async def test_app_queue_names_the_operator_who_answered_in_a_dial_event(
    client: AriClient,
    phones: Phones,
    place_call: Callable[..., CallerHandle],
    logged_in: Callable[..., None],
) -> None:
    """A watched caller in the queue: app_queue's Dial ANSWER has the caller as its caller and
    the queue member's interface as its dialstring (what MEMBERINTERFACE says later)."""
    logged_in("operator1")
    phones.start("operator1", answers(after=1, hangup_after=3))
    events = client.events()
    call = place_call(DID)
    caller = (await inbound(events, call)).channel
    await client.answer(caller.id)
    await client.set_variable(caller.id, "COVERAGE_QUEUE", "answering")
    await client.subscribe_channel(caller.id)
    await client.continue_in_dialplan(caller.id, context="coverage-queue", extension="s")
    answered = await next_of(
        events,
        Dial,
        lambda e: e.caller is not None and e.caller.id == caller.id and e.dialstatus == "ANSWER",
    )
    assert answered.dialstring == "PJSIP/operator1"
    assert answered.peer.name.startswith("PJSIP/operator1-")
    await client.hangup(caller.id)


async def test_a_dropped_websocket_reconnects_and_calls_in_the_app_survive(
    client: AriClient, place_call: Callable[..., CallerHandle]
) -> None:
    """Cut the event link mid-call: the client reconnects, the call is still there, events flow."""
    events = client.events()
    call = place_call(DID)
    start = await inbound(client, events, call)
    await client.answer(start.channel.id)
    await next_of(events, ChannelStateChange, lambda e: e.channel.id == start.channel.id)
    assert client.drop_websocket()
    assert (await next_of(events, Disconnected)).reason
    assert await next_of(events, Connected) == Connected(attempt=2)
    # What the engine's recovery does after every (re)connect: find our calls.
    assert start.channel.id in await client.application_channel_ids()
    assert (await client.get_channel(start.channel.id)).state == "Up"
    assert call.result().answered
    # Events for that call still reach us on the new connection.
    await client.hangup(start.channel.id)
    await next_of(events, StasisEnd, lambda e: e.channel.id == start.channel.id)
    assert (await asyncio.to_thread(call.wait, 20)).ended_by == "remote"


async def test_asterisk_answers_pings_so_an_idle_link_stays_up(client: AriClient) -> None:
    """With a 2 s heartbeat and no traffic for 7 s, the link is never declared dead."""
    events = client.events()
    assert await next_of(events, Connected) == Connected(attempt=1)
    with pytest.raises(TimeoutError):
        await next_of(events, Disconnected, within=7)
    assert client.is_connected


async def test_the_client_rides_out_an_asterisk_restart(
    client: AriClient, sandbox: Sandbox, place_call: Callable[..., CallerHandle]
) -> None:
    """Asterisk stopped and started again: the client reconnects by itself and sees new calls."""
    events = client.events()
    assert await next_of(events, Connected) == Connected(attempt=1)
    await asyncio.to_thread(sandbox.stop)
    assert (await next_of(events, Disconnected)).reason
    await asyncio.to_thread(sandbox.start)
    assert await next_of(events, Connected, within=30) == Connected(attempt=2)
    call = place_call(DID)
    start = await inbound(client, events, call)
    assert start.args == ("inbound", DID)
    await client.hangup(start.channel.id)


async def test_the_first_claim_wins_and_a_second_engine_is_refused(
    ari: AriCredentials, client: AriClient, place_call: Callable[..., CallerHandle]
) -> None:
    """Two applications are offered the same caller; the first claim wins, the next is refused
    (409, False here) and the StasisStart goes to the winner only."""
    other_settings = AriSettings(
        url=ari.url, username=ari.user, password=ari.password, app=f"{ari.app}-b", heartbeat=2.0
    )
    async with AriClient(other_settings) as other:
        assert await other.wait_connected(10)
        ours, theirs = client.events(), other.events()
        call = place_call(DID)
        offer = await offered(ours, call)
        assert (await offered(theirs, call)).channel.id == offer.channel.id
        assert await other.claim(offer.channel.id)
        assert not await client.claim(offer.channel.id)
        start = await next_of(theirs, StasisStart, lambda e: e.channel.id == offer.channel.id)
        assert start.args == ("inbound", DID)
        assert offer.channel.id in await other.application_channel_ids()
        assert offer.channel.id not in await client.application_channel_ids()
        await other.hangup(offer.channel.id)


async def test_a_caller_nobody_claims_is_answered_by_the_safety_net_within_a_second(
    client: AriClient, phones: Phones, place_call: Callable[..., CallerHandle]
) -> None:
    """An engine connected but not claiming (hung, say): after the claim time (500 ms) the
    dialplan goes on to the safety net, which answers at once; the caller never waits longer."""
    phones.start("operator1", answers(after=1, hangup_after=2))
    events = client.events()
    call = place_call(DID)
    offer = await offered(events, call)  # offered, and left unclaimed
    answered = await asyncio.to_thread(call.wait_answered, 10)
    assert answered.seconds_to_answer is not None
    assert answered.seconds_to_answer < 1.0
    assert not await client.claim(offer.channel.id)  # too late: the offer is over
