"""The aiohttp ARI client against the fake ARI server: requests, errors, events, reconnects."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import structlog
from structlog.testing import capture_logs

from coverage_engine.ari import (
    AriAuthError,
    AriHttpError,
    AriTimeout,
    AriUnavailable,
    CallerId,
    ChannelDestroyed,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelStateChange,
    Connected,
    Dial,
    Disconnected,
    PlaybackFinished,
    ResourceConflict,
    ResourceGone,
    StasisEnd,
    StasisStart,
    StreamItem,
    UnknownEvent,
)
from coverage_engine.ari.client import AriClient
from coverage_lab.fake_ari import DialOutcome, FakeAri

T = TypeVar("T")


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    """A running fake ARI server."""
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def ari(fake: FakeAri) -> AsyncIterator[AriClient]:
    """A started client connected to the fake's event WebSocket."""
    async with AriClient(fake.settings()) as client:
        assert await client.wait_connected(5)
        yield client


async def next_of(stream: AsyncIterator[StreamItem], kind: type[T], within: float = 5.0) -> T:
    """The next stream item of the given type, skipping others."""
    async with asyncio.timeout(within):
        async for item in stream:
            if isinstance(item, kind):
                return item
    raise AssertionError(f"stream ended before a {kind.__name__}")


# -- REST requests ---------------------------------------------------------------------

Call = Callable[[AriClient, str], Awaitable[Any]]

REQUESTS: list[tuple[str, Call, str, str, dict[str, str]]] = [
    ("answer", lambda a, c: a.answer(c), "POST", "/channels/{c}/answer", {}),
    ("ring", lambda a, c: a.ring(c), "POST", "/channels/{c}/ring", {}),
    ("ring_stop", lambda a, c: a.ring_stop(c), "DELETE", "/channels/{c}/ring", {}),
    ("moh", lambda a, c: a.start_moh(c, "calm"), "POST", "/channels/{c}/moh", {"mohClass": "calm"}),
    ("moh_default", lambda a, c: a.start_moh(c), "POST", "/channels/{c}/moh", {}),
    ("stop_moh", lambda a, c: a.stop_moh(c), "DELETE", "/channels/{c}/moh", {}),
    (
        "play",
        lambda a, c: a.play(c, ["sound:a", "sound:b"], playback_id="pb-1", lang="en"),
        "POST",
        "/channels/{c}/play/pb-1",
        {"media": "sound:a,sound:b", "lang": "en"},
    ),
    ("hangup", lambda a, c: a.hangup(c, "busy"), "DELETE", "/channels/{c}", {"reason": "busy"}),
    (
        "continue",
        lambda a, c: a.continue_in_dialplan(c, context="coverage-queue", extension="s"),
        "POST",
        "/channels/{c}/continue",
        {"context": "coverage-queue", "extension": "s", "priority": "1"},
    ),
    (
        "subscribe",
        lambda a, c: a.subscribe_channel(c),
        "POST",
        "/applications/coverage-engine/subscription",
        {"eventSource": "channel:{c}"},
    ),
    (
        "set_var",
        lambda a, c: a.set_variable(c, "CE_STEP", "2"),
        "POST",
        "/channels/{c}/variable",
        {"variable": "CE_STEP", "value": "2"},
    ),
]


@pytest.mark.parametrize(
    ("call", "method", "path", "query"), [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS]
)
async def test_each_operation_sends_the_ari_request(
    fake: FakeAri,
    ari: AriClient,
    call: Call,
    method: str,
    path: str,
    query: dict[str, str],
) -> None:
    """Every interface method becomes exactly the documented ARI request."""
    channel_id = await fake.start_call("+15551230001")
    await call(ari, channel_id)
    sent = fake.requests[-1]
    assert (sent.method, sent.path, dict(sent.query)) == (
        method,
        path.format(c=channel_id),
        {k: v.format(c=channel_id) for k, v in query.items()},
    )


async def test_outbound_leg_is_created_into_the_app_and_dialed(
    fake: FakeAri, ari: AriClient
) -> None:
    """create_channel enters the app at once; dial rings and answers, as on Asterisk 22."""
    fake.dial_outcomes["PJSIP/dr-*"] = "answer"
    caller = await fake.start_call("+15551230001")
    events = ari.events()
    channel = await ari.create_channel(
        "PJSIP/dr-patel",
        channel_id="leg-1",
        app_args=["leg", caller],
        originator=caller,
        caller_id=CallerId(name="MGP: Jane", number="+15559870001"),
        formats=["ulaw"],
    )
    assert channel.id == "leg-1"
    created = fake.requests_to("POST", "/channels/create")[0]
    assert dict(created.query) == {
        "endpoint": "PJSIP/dr-patel",
        "app": "coverage-engine",
        "channelId": "leg-1",
        "appArgs": f"leg,{caller}",
        "originator": caller,
        "formats": "ulaw",
    }
    # What the callee's phone shows is the leg's connected line.
    assert created.body == {
        "variables": {"CONNECTEDLINE(name)": "MGP: Jane", "CONNECTEDLINE(num)": "+15559870001"}
    }
    start = await next_of(events, StasisStart)
    if start.channel.id == caller:  # the caller's own entry comes first
        start = await next_of(events, StasisStart)
    assert (start.channel.id, start.args, start.channel.state) == (
        "leg-1",
        ("leg", caller),
        "Down",
    )
    await ari.dial("leg-1", ring_seconds=20, caller=caller)
    assert dict(fake.requests_to("POST", "/channels/leg-1/dial")[0].query) == {
        "timeout": "20",
        "caller": caller,
    }
    statuses = []
    while not statuses or statuses[-1] != "ANSWER":
        statuses.append((await next_of(events, Dial)).dialstatus)
    assert statuses == ["", "RINGING", "ANSWER"]
    assert (await ari.get_channel("leg-1")).is_up


async def test_originate_dials_at_once_and_the_leg_enters_the_app_answered(
    fake: FakeAri, ari: AriClient
) -> None:
    """originate is one POST /channels; the app hears the leg's dial, then its StasisStart (Up)."""
    fake.dial_outcomes["PJSIP/dr-*"] = "answer"
    caller = await fake.start_call("+15551230001")
    events = ari.events()
    channel = await ari.originate(
        "PJSIP/dr-patel",
        channel_id="leg-1",
        ring_seconds=25,
        app_args=["leg", caller],
        originator=caller,
        caller_id=CallerId(name="MGP: Jane", number="+15559870001"),
    )
    assert channel.id == "leg-1"
    sent = fake.requests_to("POST", "/channels")[0]
    assert dict(sent.query) == {
        "endpoint": "PJSIP/dr-patel",
        "app": "coverage-engine",
        "channelId": "leg-1",
        "timeout": "25",
        "appArgs": f"leg,{caller}",
        "originator": caller,
    }
    assert sent.body == {
        "variables": {"CONNECTEDLINE(name)": "MGP: Jane", "CONNECTEDLINE(num)": "+15559870001"}
    }
    statuses = []
    while not statuses or statuses[-1] != "ANSWER":
        statuses.append((await next_of(events, Dial)).dialstatus)
    assert statuses == ["", "RINGING", "ANSWER"]
    start = await next_of(events, StasisStart)
    if start.channel.id == caller:  # the caller's own entry may come first
        start = await next_of(events, StasisStart)
    assert (start.channel.id, start.args, start.channel.state) == ("leg-1", ("leg", caller), "Up")


async def test_several_variables_go_in_one_request_exactly_as_given(
    fake: FakeAri, ari: AriClient
) -> None:
    """set_variables is one ARRAY() write; caller text with commas, quotes, parentheses,
    brackets and backslashes arrives whole (the fake splits as Asterisk does)."""
    caller = await fake.start_call("+15551230001")
    hostile = ' Jane, "Doe" (x) [y] \\ back|pipe ${EXTEN} $[1+1] é ; end '
    values = [("COVERAGE_TRIED", "staff/a,oncall/b"), ("COVERAGE_X", hostile), ("COVERAGE_E", "")]
    await ari.set_variables(caller, values)
    [sent] = fake.requests_to("POST", f"/channels/{caller}/variable")
    assert sent.query["variable"] == "ARRAY(COVERAGE_TRIED,COVERAGE_X,COVERAGE_E)"
    assert {n: fake.channels[caller].variables[n] for n, _ in values} == dict(values)
    with pytest.raises(ValueError, match="ARRAY"):
        await ari.set_variables(caller, [("A,B", "1"), ("C", "2")])


async def test_the_event_filter_keeps_other_types_away_until_the_link_drops(
    fake: FakeAri, ari: AriClient
) -> None:
    """filter_events sets the application's allowed types; Asterisk forgets them with the
    application when its WebSocket closes, so a reconnected client hears everything again."""
    events = ari.events()
    await ari.filter_events({"ChannelDestroyed", "StasisStart"})
    sent = fake.requests_to("PUT", "/applications/coverage-engine/eventFilter")[-1]
    assert sent.body == {
        "allowed": [{"type": "ChannelDestroyed"}, {"type": "StasisStart"}],
        "disallowed": [],
    }
    caller = await fake.start_call("+15551230001")
    await ari.answer(caller)  # a ChannelStateChange, filtered out
    await fake.remote_hangup(caller)
    await fake.push("ChannelDestroyed", cause=16, channel={"id": caller})
    kinds = [type(await anext(events)).__name__ for _ in range(3)]
    assert kinds == ["Connected", "StasisStart", "ChannelDestroyed"]
    await fake.drop_websockets()
    await next_of(events, Connected)
    assert fake.events_allowed == []


async def test_dial_right_after_create_waits_for_the_leg_to_enter_the_app(
    fake: FakeAri, ari: AriClient
) -> None:
    """A dial refused with 409 'not in Stasis' during the create gap is retried, then succeeds."""
    fake.stasis_entry_delay = 0.15
    fake.dial_outcomes["PJSIP/dr-*"] = "answer"
    await ari.create_channel("PJSIP/dr-patel", channel_id="leg-1", app_args=["leg"])
    await ari.dial("leg-1", ring_seconds=5)
    dials = fake.requests_to("POST", "/channels/leg-1/dial")
    assert len(dials) > 1
    assert fake.channels["leg-1"].data["state"] in ("Ringing", "Up")


async def test_a_leg_that_never_enters_the_app_fails_its_dial_within_the_bound(
    fake: FakeAri, ari: AriClient
) -> None:
    """The 409 retry gives up within stasis_entry_wait after a handful of tries, not forever."""
    fake.stasis_entry_delay = 30
    await ari.create_channel("PJSIP/dr-patel", channel_id="leg-1", app_args=["leg"])
    with pytest.raises(ResourceConflict, match="not in Stasis"):
        await ari.dial("leg-1", ring_seconds=5)
    # Pauses doubling from 5 ms within the 1 s bound: eight tries at the most.
    assert 2 <= len(fake.requests_to("POST", "/channels/leg-1/dial")) <= 8


@pytest.mark.parametrize(("outcome", "cause"), [("busy", 17), ("noanswer", 19)])
async def test_a_failed_leg_shows_as_its_hangup_with_the_cause(
    fake: FakeAri, ari: AriClient, outcome: DialOutcome, cause: int
) -> None:
    """Busy or unanswered legs end with StasisEnd and ChannelDestroyed carrying the cause."""
    fake.dial_outcomes["PJSIP/dr-*"] = outcome
    events = ari.events()
    await ari.create_channel("PJSIP/dr-patel", channel_id="leg-1", app_args=["leg"])
    await ari.dial("leg-1", ring_seconds=1)
    await next_of(events, StasisEnd)
    assert (await next_of(events, ChannelDestroyed)).cause == cause


async def test_an_endpoint_asterisk_cannot_allocate_fails_at_create(
    fake: FakeAri, ari: AriClient
) -> None:
    """An unknown endpoint is HTTP 500 'Allocation failed' (Asterisk's `error` key is read)."""
    fake.dial_outcomes["PJSIP/nobody"] = "missing"
    with pytest.raises(AriHttpError) as caught:
        await ari.create_channel("PJSIP/nobody", channel_id="leg-1")
    assert (caught.value.status, caught.value.message) == (500, "Allocation failed")


async def test_bridges_are_created_filled_and_listed(fake: FakeAri, ari: AriClient) -> None:
    """A mixing bridge with our id takes channels; listing shows them; destroy removes it."""
    a = await fake.start_call("+15551230001")
    b = fake.add_channel(state="Up")
    bridge = await ari.create_bridge("call-a", name="call a")
    assert (bridge.id, bridge.bridge_type) == ("call-a", "mixing")
    events = ari.events()
    await ari.add_to_bridge("call-a", [a, b])
    entered = await next_of(events, ChannelEnteredBridge)
    assert entered.bridge.id == "call-a"
    assert [br.channels for br in await ari.list_bridges()] == [(a, b)]
    await ari.remove_from_bridge("call-a", [b])
    await ari.destroy_bridge("call-a")
    assert await ari.list_bridges() == []


async def test_listing_finds_the_channels_in_the_application(fake: FakeAri, ari: AriClient) -> None:
    """list_channels, get_channel and application_channel_ids show what recovery needs."""
    ours = await fake.start_call("+15551230001", caller_number="+15559870001")
    fake.add_channel(in_stasis=False)
    assert await ari.application_channel_ids() == [ours]
    assert len(await ari.list_channels()) == 2
    channel = await ari.get_channel(ours)
    assert (channel.caller.number, channel.dialplan.app_name) == ("+15559870001", "Stasis")


async def test_variables_round_trip_and_unset_reads_as_none(fake: FakeAri, ari: AriClient) -> None:
    """A variable set is read back; an unset one is None, not an error."""
    channel_id = await fake.start_call("+15551230001")
    await ari.set_variable(channel_id, "CE_PLAN", "maple/closed")
    assert await ari.get_variable(channel_id, "CE_PLAN") == "maple/closed"
    assert await ari.get_variable(channel_id, "CE_NOPE") is None


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.answer("gone-1"),
        lambda a: a.hangup("gone-1"),
        lambda a: a.stop_moh("gone-1"),
        lambda a: a.get_variable("gone-1", "X"),
        lambda a: a.stop_playback("gone-pb"),
        lambda a: a.destroy_bridge("gone-bridge"),
    ],
    ids=["answer", "hangup", "stop_moh", "get_variable", "stop_playback", "destroy_bridge"],
)
async def test_a_gone_resource_raises_resource_gone(
    ari: AriClient, call: Callable[[AriClient], Awaitable[Any]]
) -> None:
    """A 404 on a channel, playback or bridge that is gone is ResourceGone, message kept."""
    with pytest.raises(ResourceGone) as caught:
        await call(ari)
    assert caught.value.status == 404
    assert "not found" in caught.value.message


async def test_adding_a_hung_up_channel_to_a_bridge_is_gone_too(
    fake: FakeAri, ari: AriClient
) -> None:
    """Asterisk's 400 'Channel not found' from addChannel is ResourceGone as well."""
    await ari.create_bridge("b1")
    with pytest.raises(ResourceGone) as caught:
        await ari.add_to_bridge("b1", ["hung-up"])
    assert (caught.value.status, caught.value.message) == (400, "Channel not found")


async def test_a_channel_outside_the_app_is_a_conflict(fake: FakeAri, ari: AriClient) -> None:
    """409 'Channel not in Stasis application' is ResourceConflict with the message."""
    channel_id = fake.add_channel(in_stasis=False)
    with pytest.raises(ResourceConflict, match="not in Stasis"):
        await ari.answer(channel_id)


async def test_server_errors_keep_asterisks_message(fake: FakeAri, ari: AriClient) -> None:
    """A 500 is an AriHttpError carrying Asterisk's own message and the path, not the URL."""
    fake.fail("POST", "/bridges/*", status=500, message="Allocation failed")
    with pytest.raises(Exception, match="Allocation failed") as caught:
        await ari.create_bridge("b1")
    assert "/bridges/b1" in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)


async def test_a_slow_asterisk_hits_the_request_deadline(fake: FakeAri) -> None:
    """A request Asterisk does not answer in time raises AriTimeout at the deadline."""
    fake.fail("POST", "/channels/*/answer", status=0, delay=3.0)
    async with AriClient(fake.settings(request_timeout=0.3)) as ari:
        started = time.monotonic()
        with pytest.raises(AriTimeout):
            await ari.answer("c1")
        assert time.monotonic() - started < 1.5


async def test_a_wrong_password_is_an_auth_error(fake: FakeAri) -> None:
    """Asterisk refusing the credentials is AriAuthError (an admin must fix ari.conf)."""
    async with AriClient(fake.settings(password="wrong")) as ari:
        with pytest.raises(AriAuthError):
            await ari.list_channels()


async def test_nothing_listening_is_unavailable() -> None:
    """A refused connection is AriUnavailable, not a raw aiohttp error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with FakeAri() as fake:
        settings = fake.settings(url=f"http://127.0.0.1:{port}/ari")
    async with AriClient(settings) as ari:
        with pytest.raises(AriUnavailable):
            await ari.list_channels()


# -- events ----------------------------------------------------------------------------


async def test_a_call_into_the_app_yields_connected_then_stasis_start(fake: FakeAri) -> None:
    """The stream starts with Connected(1), then a StasisStart carrying the DID argument."""
    async with AriClient(fake.settings()) as ari:
        events = ari.events()
        assert await next_of(events, Connected) == Connected(attempt=1)
        channel_id = await fake.start_call("+15551230001", caller_number="+15559870001")
        start = await next_of(events, StasisStart)
        assert (start.channel.id, start.args) == (channel_id, ("inbound", "+15551230001"))
        assert start.channel.caller.number == "+15559870001"


async def test_rest_actions_produce_the_events_asterisk_sends(
    fake: FakeAri, ari: AriClient
) -> None:
    """answer -> StateChange(Up); play -> PlaybackFinished; hangup -> HangupRequest, StasisEnd."""
    events = ari.events()
    channel_id = await fake.start_call("+15551230001")
    await ari.answer(channel_id)
    assert (await next_of(events, ChannelStateChange)).channel.state == "Up"
    await ari.play(channel_id, "sound:hello", playback_id="pb-1")
    assert (await next_of(events, PlaybackFinished)).playback.state == "done"
    await ari.hangup(channel_id)
    assert (await next_of(events, ChannelHangupRequest)).channel.id == channel_id
    assert (await next_of(events, StasisEnd)).channel.id == channel_id
    # An inbound caller's implicit subscription ends with StasisEnd: no ChannelDestroyed.
    with pytest.raises(TimeoutError):
        await next_of(events, ChannelDestroyed, within=0.3)


async def test_a_subscribed_caller_reports_its_destruction(fake: FakeAri, ari: AriClient) -> None:
    """After subscribe_channel, a caller's hang-up also yields ChannelDestroyed with the cause."""
    events = ari.events()
    channel_id = await fake.start_call("+15551230001")
    await ari.subscribe_channel(channel_id)
    await fake.remote_hangup(channel_id)
    request = await next_of(events, ChannelHangupRequest)
    assert request.cause is None  # a BYE from the phone carries no cause
    assert (await next_of(events, ChannelDestroyed)).cause == 16


async def test_a_malformed_frame_does_not_stop_the_stream(fake: FakeAri, ari: AriClient) -> None:
    """A non-JSON frame becomes UnknownEvent and the next event still arrives."""
    events = ari.events()
    await next_of(events, Connected)
    await fake.push_raw("this is not json")
    await fake.push("SomethingNew", detail=1)
    assert (await next_of(events, UnknownEvent)).problem == "frame is not JSON"
    assert (await next_of(events, UnknownEvent)).type == "SomethingNew"
    await fake.start_call("+15551230001")
    assert isinstance(await next_of(events, StasisStart), StasisStart)


async def test_a_dropped_websocket_reconnects_and_events_keep_coming(fake: FakeAri) -> None:
    """After an abrupt drop: Disconnected, then Connected(2), then events flow again."""
    async with AriClient(fake.settings()) as ari:
        events = ari.events()
        await next_of(events, Connected)
        await fake.drop_websockets()
        assert (await next_of(events, Disconnected)).reason
        assert await next_of(events, Connected) == Connected(attempt=2)
        await fake.start_call("+15551230001")
        assert isinstance(await next_of(events, StasisStart), StasisStart)


async def test_a_client_side_drop_reconnects_too(fake: FakeAri) -> None:
    """drop_websocket() cuts the TCP link; the client reconnects and recovery can run."""
    async with AriClient(fake.settings()) as ari:
        events = ari.events()
        await next_of(events, Connected)
        assert ari.drop_websocket()
        assert (await next_of(events, Disconnected)).reason
        assert await next_of(events, Connected) == Connected(attempt=2)
        await fake.wait_for_websockets(2)


async def test_heartbeat_notices_a_silently_dead_asterisk_within_ten_seconds(
    fake: FakeAri,
) -> None:
    """With the default 5 s heartbeat, a peer that stops answering pings is dropped in < 10 s."""
    async with AriClient(fake.settings(heartbeat=5.0)) as ari:
        events = ari.events()
        await next_of(events, Connected)
        fake.freeze_websockets()
        started = time.monotonic()
        disconnected = await next_of(events, Disconnected, within=12)
        assert time.monotonic() - started < 10
        assert "PONG" in disconnected.reason
        fake.thaw_websockets()
        assert await next_of(events, Connected) == Connected(attempt=2)


async def test_reconnect_backoff_grows_with_jitter_and_is_capped() -> None:
    """While Asterisk is down, retries back off exponentially (with jitter) up to the cap."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with FakeAri() as fake:
        settings = fake.settings(
            url=f"http://127.0.0.1:{port}/ari", backoff_initial=0.02, backoff_max=0.08
        )
    with capture_logs() as logs:
        async with AriClient(settings) as ari:
            await asyncio.sleep(0.6)
            assert not ari.is_connected
    waits = [e["retry_in_s"] for e in logs if e["event"] == "ari.connect_failed"]
    assert len(waits) >= 5
    assert waits[0] <= 0.03
    assert max(waits) <= 0.08 * 1.2 + 0.01
    assert waits[4] >= 0.08 * 0.8 - 0.01


async def test_a_timed_out_wait_leaves_the_stream_usable(fake: FakeAri, ari: AriClient) -> None:
    """Cancelling a wait for the next event (a timeout) does not close the event stream."""
    events = ari.events()
    await next_of(events, Connected)
    with pytest.raises(TimeoutError):
        await next_of(events, StasisStart, within=0.1)
    await fake.start_call("+15551230001")
    assert isinstance(await next_of(events, StasisStart), StasisStart)


async def test_close_ends_the_stream_and_closes_the_websocket_cleanly(fake: FakeAri) -> None:
    """close() sends a close frame (the fake sees no open socket) and ends events()."""
    ari = AriClient(fake.settings())
    await ari.start()
    events = ari.events()
    await next_of(events, Connected)
    await ari.close()
    async with asyncio.timeout(2):
        remaining = [item async for item in events]
    assert remaining == []
    for _ in range(50):
        if fake.connected_websockets == 0:
            break
        await asyncio.sleep(0.02)
    assert fake.connected_websockets == 0


@pytest.fixture
def debug_lines() -> Iterator[None]:
    """structlog lets debug lines through for the test (as `run --verbose` does)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("debug_lines")
async def test_logs_carry_neither_the_password_nor_full_numbers(fake: FakeAri) -> None:
    """Nothing the client logs, debug lines included, holds the ARI password or a full
    external number."""
    settings = fake.settings()
    with capture_logs() as logs:
        async with AriClient(settings) as ari:
            await ari.wait_connected(5)
            await ari.create_channel("PJSIP/+15551234567@carrier-out", channel_id="leg-9")
            await fake.drop_websockets()
            await asyncio.sleep(0.3)
    text = repr(logs)
    assert settings.password not in text
    assert "5551234567" not in text
    assert "PJSIP/***4567@carrier-out" in text  # the dial string, masked where it is logged
    assert "ari.connected" in text
    assert settings.password not in repr(settings)
