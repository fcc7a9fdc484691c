"""ARI JSON -> event dataclasses, table-driven from the shapes Asterisk 22 sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coverage_engine.ari import (
    AriEvent,
    Bridge,
    CallerId,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelVarset,
    Dial,
    DialplanLocation,
    Playback,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)
from coverage_engine.ari.errors import (
    AriAuthError,
    AriHttpError,
    ResourceConflict,
    ResourceGone,
    error_for_status,
)

STAMP = "2026-11-27T03:01:02.345+0000"
WHEN = datetime(2026, 11, 27, 3, 1, 2, 345000, tzinfo=UTC)


def channel_json(
    channel_id: str = "1732676462.17",
    *,
    state: str = "Ring",
    number: str = "+15559870001",
    app_data: str = "coverage-engine,inbound,+15551230001",
) -> dict[str, Any]:
    """A channel object as Asterisk 22 puts it in events."""
    return {
        "id": channel_id,
        "name": "PJSIP/carrier-00000011",
        "state": state,
        "protocol_id": "3c2a8f1e@127.0.0.1",
        "caller": {"name": "Jane Patient", "number": number},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "coverage-inbound",
            "exten": "+15551230001",
            "priority": 3,
            "app_name": "Stasis",
            "app_data": app_data,
        },
        "creationtime": STAMP,
        "language": "en",
    }


def bridge_json(channels: list[str]) -> dict[str, Any]:
    """A bridge object as Asterisk 22 puts it in events."""
    return {
        "id": "call-1732676462.17",
        "technology": "simple_bridge",
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": "",
        "channels": channels,
        "creationtime": STAMP,
        "video_mode": "none",
    }


def playback_json(state: str) -> dict[str, Any]:
    """A playback object as Asterisk 22 puts it in events."""
    return {
        "id": "announce-1732676462.17",
        "media_uri": "sound:coverage/emergency",
        "target_uri": "channel:1732676462.17",
        "language": "en",
        "state": state,
    }


def envelope(event_type: str, **fields: Any) -> dict[str, Any]:
    """Wrap event fields in the keys every ARI event carries."""
    return {
        "type": event_type,
        "timestamp": STAMP,
        "application": "coverage-engine",
        "asterisk_id": "02:42:ac:11:00:02",
        **fields,
    }


CHANNEL = Channel.from_json(channel_json())
UP = Channel.from_json(channel_json(state="Up"))
DOCTOR = Channel.from_json(
    channel_json("oncall-1", state="Up", number="", app_data="coverage-engine,leg")
)
COMMON: dict[str, Any] = {"application": "coverage-engine", "timestamp": WHEN}

CASES: list[tuple[str, dict[str, Any], AriEvent]] = [
    (
        "stasis-start-with-did",
        envelope("StasisStart", args=["inbound", "+15551230001"], channel=channel_json()),
        StasisStart(
            type="StasisStart", **COMMON, channel=CHANNEL, args=("inbound", "+15551230001")
        ),
    ),
    (
        "stasis-end",
        envelope("StasisEnd", channel=channel_json(state="Up")),
        StasisEnd(type="StasisEnd", **COMMON, channel=UP),
    ),
    (
        "state-change",
        envelope("ChannelStateChange", channel=channel_json(state="Up")),
        ChannelStateChange(type="ChannelStateChange", **COMMON, channel=UP),
    ),
    (
        "dtmf",
        envelope("ChannelDtmfReceived", digit="1", duration_ms=120, channel=channel_json()),
        ChannelDtmfReceived(
            type="ChannelDtmfReceived", **COMMON, channel=CHANNEL, digit="1", duration_ms=120
        ),
    ),
    (
        "hangup-request-with-cause",
        envelope("ChannelHangupRequest", cause=16, soft=False, channel=channel_json()),
        ChannelHangupRequest(type="ChannelHangupRequest", **COMMON, channel=CHANNEL, cause=16),
    ),
    (
        "hangup-request-without-cause",
        envelope("ChannelHangupRequest", channel=channel_json()),
        ChannelHangupRequest(type="ChannelHangupRequest", **COMMON, channel=CHANNEL, cause=None),
    ),
    (
        "destroyed-busy",
        envelope("ChannelDestroyed", cause=17, cause_txt="User busy", channel=channel_json()),
        ChannelDestroyed(
            type="ChannelDestroyed", **COMMON, channel=CHANNEL, cause=17, cause_txt="User busy"
        ),
    ),
    (
        "dial-answered",
        envelope(
            "Dial",
            dialstatus="ANSWER",
            dialstring="PJSIP/dr-patel",
            peer=channel_json("oncall-1", state="Up", number="", app_data="coverage-engine,leg"),
            caller=channel_json(state="Up"),
        ),
        Dial(
            type="Dial",
            **COMMON,
            peer=DOCTOR,
            dialstatus="ANSWER",
            caller=UP,
            dialstring="PJSIP/dr-patel",
        ),
    ),
    (
        "dial-start-without-caller",
        envelope(
            "Dial",
            dialstatus="",
            peer=channel_json("oncall-1", state="Up", number="", app_data="coverage-engine,leg"),
        ),
        Dial(type="Dial", **COMMON, peer=DOCTOR, dialstatus=""),
    ),
    (
        "playback-started",
        envelope("PlaybackStarted", playback=playback_json("playing")),
        PlaybackStarted(
            type="PlaybackStarted", **COMMON, playback=Playback.from_json(playback_json("playing"))
        ),
    ),
    (
        "playback-finished",
        envelope("PlaybackFinished", playback=playback_json("done")),
        PlaybackFinished(
            type="PlaybackFinished", **COMMON, playback=Playback.from_json(playback_json("done"))
        ),
    ),
    (
        "entered-bridge",
        envelope(
            "ChannelEnteredBridge",
            bridge=bridge_json(["1732676462.17", "oncall-1"]),
            channel=channel_json("oncall-1", state="Up", number="", app_data="coverage-engine,leg"),
        ),
        ChannelEnteredBridge(
            type="ChannelEnteredBridge",
            **COMMON,
            bridge=Bridge.from_json(bridge_json(["1732676462.17", "oncall-1"])),
            channel=DOCTOR,
        ),
    ),
    (
        "left-bridge",
        envelope("ChannelLeftBridge", bridge=bridge_json([]), channel=channel_json(state="Up")),
        ChannelLeftBridge(
            type="ChannelLeftBridge", **COMMON, bridge=Bridge.from_json(bridge_json([])), channel=UP
        ),
    ),
    (
        "varset",
        envelope("ChannelVarset", variable="CE_STEP", value="2", channel=channel_json()),
        ChannelVarset(
            type="ChannelVarset", **COMMON, variable="CE_STEP", value="2", channel=CHANNEL
        ),
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_ari_json_becomes_the_matching_event(raw: dict[str, Any], expected: AriEvent) -> None:
    """Each ARI event shape parses into its dataclass with every field carried over."""
    assert parse_event(raw) == expected


def test_stasis_start_channel_carries_caller_id_and_dialplan_position() -> None:
    """A StasisStart's channel tells the caller's number and where in the dialplan it was."""
    event = parse_event(envelope("StasisStart", args=["inbound", "+1555"], channel=channel_json()))
    assert isinstance(event, StasisStart)
    assert event.channel.caller == CallerId(name="Jane Patient", number="+15559870001")
    assert event.channel.dialplan == DialplanLocation(
        context="coverage-inbound",
        exten="+15551230001",
        priority=3,
        app_name="Stasis",
        app_data="coverage-engine,inbound,+15551230001",
    )
    assert event.channel.creationtime == WHEN


@pytest.mark.parametrize(
    "raw",
    [
        envelope("ChannelTalkingStarted", channel=channel_json()),
        envelope("ApplicationReplaced"),
        envelope("StasisStart", args=["inbound"]),  # no channel: malformed
        envelope("Dial", dialstatus="ANSWER"),  # no peer: malformed
        envelope("PlaybackFinished", playback={"state": "done"}),  # no playback id
        {"no": "type"},
    ],
    ids=[
        "unmodelled",
        "no-channel-at-all",
        "start-without-channel",
        "dial-without-peer",
        "playback-without-id",
        "no-type",
    ],
)
def test_unknown_or_malformed_events_become_unknown_event(raw: dict[str, Any]) -> None:
    """An event we do not model, or cannot parse, becomes UnknownEvent with the raw JSON."""
    event = parse_event(raw)
    assert isinstance(event, UnknownEvent)
    assert event.raw == raw


def test_a_non_object_frame_becomes_unknown_event() -> None:
    """A JSON value that is not an object still yields an event, not an exception."""
    event = parse_event(["not", "an", "object"])
    assert isinstance(event, UnknownEvent)
    assert event.problem


def test_odd_timestamps_and_causes_do_not_raise() -> None:
    """Garbage in optional fields degrades to None/0 instead of failing the stream."""
    raw = envelope("ChannelDestroyed", cause="x", channel=channel_json())
    raw["timestamp"] = "yesterday"
    event = parse_event(raw)
    assert isinstance(event, ChannelDestroyed)
    assert (event.timestamp, event.cause) == (None, 0)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (404, "Channel not found", ResourceGone),
        (400, "Channel not found", ResourceGone),  # addChannel's way of saying it
        (409, "Channel not in Stasis application", ResourceConflict),
        (412, "Channel in invalid state", ResourceConflict),
        (422, "Channel not in Stasis application", ResourceConflict),
        (401, "Authentication required", AriAuthError),
        (400, "Invalid reason for hangup provided", AriHttpError),
        (500, "Internal Server Error", AriHttpError),
    ],
)
def test_http_errors_map_to_the_error_tree(
    status: int, message: str, expected: type[AriHttpError]
) -> None:
    """Each HTTP error becomes its most specific class and keeps Asterisk's message."""
    error = error_for_status("POST", "/channels/c1/answer", status, message)
    assert type(error) is expected
    assert error.message == message
    assert message in str(error)
