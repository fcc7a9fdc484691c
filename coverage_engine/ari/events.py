"""ARI events as frozen dataclasses, and the translation of ARI JSON into them.

Pure: no I/O. `parse_event` never raises: an event type we do not model (or a
malformed one) becomes `UnknownEvent` carrying the raw JSON, because one odd
frame from Asterisk must never stop the event stream that every call depends on.

Besides Asterisk's own events, the event stream yields two connection events
of ours, `Connected` and `Disconnected`, so the engine can run recovery (list
the channels still in the application and take each on to a person) after
every (re)connect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coverage_engine.ari.models import Bridge, Channel, Playback, parse_timestamp


@dataclass(frozen=True, slots=True, kw_only=True)
class AriEvent:
    """Fields every ARI event carries."""

    type: str
    application: str = ""
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent(AriEvent):
    """An event about one channel; `channel` is Asterisk's snapshot at the time of the event."""

    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisStart(ChannelEvent):
    """A channel entered our application.

    `args` are the dialplan's `Stasis(coverage-engine,<args...>)` arguments,
    e.g. `("inbound", "+15551230001")`, or the `appArgs` we gave a channel we
    created. `replace_channel` is set when a masquerade swapped channels.
    """

    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallBroadcast(ChannelEvent):
    """`StasisBroadcast()` offers a channel to every connected application: claim it or not.

    The first application to claim it (`POST /events/claim`) gets it, as a
    `StasisStart` with the broadcast's arguments; the others' claims are
    refused (409). `variables` are the channel's variables at the offer.
    """

    caller: str = ""
    called: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisEnd(ChannelEvent):
    """A channel left our application (hung up, or continued into the dialplan)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStateChange(ChannelEvent):
    """A channel's state changed (e.g. Ringing -> Up when the callee answers)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDtmfReceived(ChannelEvent):
    """A DTMF digit (0-9, A-D, *, #) arrived from the channel."""

    digit: str
    duration_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHangupRequest(ChannelEvent):
    """Someone asked for the channel to hang up; `cause` is the Q.850 cause when given."""

    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDestroyed(ChannelEvent):
    """The channel is gone for good; `cause` is the Q.850 cause (16 normal, 17 busy, ...)."""

    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelVarset(AriEvent):
    """A channel variable was set; `channel` is None for global variables."""

    variable: str
    value: str = ""
    channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial(AriEvent):
    """Progress of a dial attempt towards `peer` (the channel being called).

    `dialstatus` is empty when dialing starts, then Asterisk's DIALSTATUS
    words: RINGING, PROGRESS, ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION,
    CHANUNAVAIL. `caller` is the channel that asked for the dial, when known.
    """

    peer: Channel
    dialstatus: str = ""
    caller: Channel | None = None
    dialstring: str = ""
    forward: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackEvent(AriEvent):
    """An event about one playback."""

    playback: Playback


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackStarted(PlaybackEvent):
    """A playback started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished(PlaybackEvent):
    """A playback ended: `playback.state` is done, failed or cancelled (stopped by us)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEvent(AriEvent):
    """An event about one bridge."""

    bridge: Bridge


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeCreated(BridgeEvent):
    """A bridge was created."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeDestroyed(BridgeEvent):
    """A bridge was destroyed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEnteredBridge(BridgeEvent):
    """A channel joined a bridge."""

    channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelLeftBridge(BridgeEvent):
    """A channel left a bridge (hung up, or removed)."""

    channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(AriEvent):
    """An event type we do not model, or one we could not parse; `raw` is the JSON."""

    raw: Mapping[str, Any] = field(default_factory=dict)
    problem: str = ""


# -- connection events (ours, not Asterisk's) ---------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """The event WebSocket is (re)connected; `attempt` counts connections since start (1 = first).

    Events that happened while disconnected are lost: after this, the engine
    lists the channels in the application and takes each on again.
    """

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected:
    """The event WebSocket dropped; the client is already reconnecting with backoff."""

    reason: str


StreamItem = AriEvent | Connected | Disconnected
"""What the event stream yields."""


# -- parsing -------------------------------------------------------------------


def _channel(data: Mapping[str, Any], key: str) -> Channel | None:
    value = data.get(key)
    return Channel.from_json(value) if isinstance(value, Mapping) else None


def _required_channel(data: Mapping[str, Any], key: str = "channel") -> Channel:
    channel = _channel(data, key)
    if channel is None or not channel.id:
        raise ValueError(f"no {key!r} object with an id")
    return channel


def _bridge(data: Mapping[str, Any]) -> Bridge:
    value = data.get("bridge")
    if not isinstance(value, Mapping) or not value.get("id"):
        raise ValueError("no 'bridge' object with an id")
    return Bridge.from_json(value)


def _playback(data: Mapping[str, Any]) -> Playback:
    value = data.get("playback")
    if not isinstance(value, Mapping) or not value.get("id"):
        raise ValueError("no 'playback' object with an id")
    return Playback.from_json(value)


def _opt_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _common(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": str(data.get("type", "")),
        "application": str(data.get("application", "")),
        "timestamp": parse_timestamp(str(data.get("timestamp") or "")),
    }


def _stasis_start(data: Mapping[str, Any]) -> AriEvent:
    raw_args = data.get("args")
    args = tuple(str(a) for a in raw_args) if isinstance(raw_args, list) else ()
    return StasisStart(
        **_common(data),
        channel=_required_channel(data),
        args=args,
        replace_channel=_channel(data, "replace_channel"),
    )


def _broadcast(data: Mapping[str, Any]) -> AriEvent:
    raw = data.get("variables")
    variables = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
    return CallBroadcast(
        **_common(data),
        channel=_required_channel(data),
        caller=str(data.get("caller") or ""),
        called=str(data.get("called") or ""),
        variables=variables,
    )


def _dtmf(data: Mapping[str, Any]) -> AriEvent:
    return ChannelDtmfReceived(
        **_common(data),
        channel=_required_channel(data),
        digit=str(data.get("digit", "")),
        duration_ms=_opt_int(data.get("duration_ms")) or 0,
    )


def _hangup_request(data: Mapping[str, Any]) -> AriEvent:
    return ChannelHangupRequest(
        **_common(data),
        channel=_required_channel(data),
        cause=_opt_int(data.get("cause")),
        soft=bool(data.get("soft", False)),
    )


def _destroyed(data: Mapping[str, Any]) -> AriEvent:
    return ChannelDestroyed(
        **_common(data),
        channel=_required_channel(data),
        cause=_opt_int(data.get("cause")) or 0,
        cause_txt=str(data.get("cause_txt", "")),
    )


def _varset(data: Mapping[str, Any]) -> AriEvent:
    return ChannelVarset(
        **_common(data),
        variable=str(data.get("variable", "")),
        value=str(data.get("value", "")),
        channel=_channel(data, "channel"),
    )


def _dial(data: Mapping[str, Any]) -> AriEvent:
    return Dial(
        **_common(data),
        peer=_required_channel(data, "peer"),
        dialstatus=str(data.get("dialstatus", "")),
        caller=_channel(data, "caller"),
        dialstring=str(data.get("dialstring", "")),
        forward=str(data.get("forward", "")),
    )


def _simple_channel(cls: type[ChannelEvent]) -> Callable[[Mapping[str, Any]], AriEvent]:
    def parse(data: Mapping[str, Any]) -> AriEvent:
        return cls(**_common(data), channel=_required_channel(data))

    return parse


def _simple_playback(cls: type[PlaybackEvent]) -> Callable[[Mapping[str, Any]], AriEvent]:
    def parse(data: Mapping[str, Any]) -> AriEvent:
        return cls(**_common(data), playback=_playback(data))

    return parse


def _simple_bridge(cls: type[BridgeEvent]) -> Callable[[Mapping[str, Any]], AriEvent]:
    def parse(data: Mapping[str, Any]) -> AriEvent:
        return cls(**_common(data), bridge=_bridge(data))

    return parse


def _bridge_membership(
    cls: type[ChannelEnteredBridge | ChannelLeftBridge],
) -> Callable[[Mapping[str, Any]], AriEvent]:
    def parse(data: Mapping[str, Any]) -> AriEvent:
        return cls(**_common(data), bridge=_bridge(data), channel=_channel(data, "channel"))

    return parse


_PARSERS: dict[str, Callable[[Mapping[str, Any]], AriEvent]] = {
    "StasisStart": _stasis_start,
    "CallBroadcast": _broadcast,
    "StasisEnd": _simple_channel(StasisEnd),
    "ChannelStateChange": _simple_channel(ChannelStateChange),
    "ChannelDtmfReceived": _dtmf,
    "ChannelHangupRequest": _hangup_request,
    "ChannelDestroyed": _destroyed,
    "ChannelVarset": _varset,
    "Dial": _dial,
    "PlaybackStarted": _simple_playback(PlaybackStarted),
    "PlaybackFinished": _simple_playback(PlaybackFinished),
    "BridgeCreated": _simple_bridge(BridgeCreated),
    "BridgeDestroyed": _simple_bridge(BridgeDestroyed),
    "ChannelEnteredBridge": _bridge_membership(ChannelEnteredBridge),
    "ChannelLeftBridge": _bridge_membership(ChannelLeftBridge),
}


#: The event types parsed into their own dataclass (any other is an `UnknownEvent`).
MODELLED: frozenset[str] = frozenset(_PARSERS)


def parse_event(data: Any) -> AriEvent:
    """Translate one decoded ARI event (a JSON object) into its dataclass; never raises."""
    if not isinstance(data, Mapping):
        return UnknownEvent(type="", problem="event is not a JSON object", raw={"value": data})
    parser = _PARSERS.get(str(data.get("type", "")))
    if parser is None:
        return UnknownEvent(**_common(data), raw=dict(data))
    try:
        return parser(data)
    except (ValueError, TypeError) as exc:
        return UnknownEvent(**_common(data), raw=dict(data), problem=str(exc))
