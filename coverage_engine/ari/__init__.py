"""ARI (Asterisk REST Interface): the engine's link to Asterisk.

This package's top level is pure (no aiohttp): the interface the engine codes
against, the event and resource dataclasses, and the error tree. The aiohttp
implementation lives in `coverage_engine.ari.client`; an in-memory fake for
tests in `coverage_engine.testing`.
"""

from __future__ import annotations

from coverage_engine.ari.errors import (
    AriAuthError,
    AriError,
    AriHttpError,
    AriTimeout,
    AriUnavailable,
    ResourceConflict,
    ResourceGone,
)
from coverage_engine.ari.events import (
    AriEvent,
    BridgeCreated,
    BridgeDestroyed,
    CallBroadcast,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelEvent,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelVarset,
    Connected,
    Dial,
    Disconnected,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
    StreamItem,
    UnknownEvent,
    parse_event,
)
from coverage_engine.ari.interface import Ari, AriEventSource, AriOperations, HangupReason
from coverage_engine.ari.models import Bridge, CallerId, Channel, DialplanLocation, Playback
from coverage_engine.ari.settings import AriSettings

__all__ = [
    "Ari",
    "AriAuthError",
    "AriError",
    "AriEvent",
    "AriEventSource",
    "AriHttpError",
    "AriOperations",
    "AriSettings",
    "AriTimeout",
    "AriUnavailable",
    "Bridge",
    "BridgeCreated",
    "BridgeDestroyed",
    "CallBroadcast",
    "CallerId",
    "Channel",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "ChannelEnteredBridge",
    "ChannelEvent",
    "ChannelHangupRequest",
    "ChannelLeftBridge",
    "ChannelStateChange",
    "ChannelVarset",
    "Connected",
    "Dial",
    "DialplanLocation",
    "Disconnected",
    "HangupReason",
    "Playback",
    "PlaybackFinished",
    "PlaybackStarted",
    "ResourceConflict",
    "ResourceGone",
    "StasisEnd",
    "StasisStart",
    "StreamItem",
    "UnknownEvent",
    "parse_event",
]
