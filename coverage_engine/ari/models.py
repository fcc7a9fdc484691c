"""ARI resources (channel, bridge, playback) as frozen dataclasses.

Pure: no I/O, no aiohttp. Parsing is lenient on purpose: Asterisk versions add
fields, and a field we do not know must never break a call, so unknown keys are
ignored and missing ones get an empty default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key)
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def parse_timestamp(text: str) -> datetime | None:
    """Parse Asterisk's timestamps (`2026-11-27T03:01:02.345+0000`), None when absent or odd."""
    if not text:
        return None
    # fromisoformat reads Asterisk's form (Python >= 3.11) about 30 times
    # faster than strptime, which showed up as 5% of the engine's CPU under
    # load (every event carries two timestamps); strptime stays as a fallback.
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            return None
    # Only timezone-aware instants leave this module.
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class CallerId:
    """A caller id as Asterisk shows it: display name and number (either may be empty)."""

    name: str = ""
    number: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallerId:
        return cls(name=_str(data, "name"), number=_str(data, "number"))


@dataclass(frozen=True, slots=True)
class DialplanLocation:
    """Where in the dialplan a channel is: context, extension, priority, and the app running."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DialplanLocation:
        return cls(
            context=_str(data, "context"),
            exten=_str(data, "exten"),
            priority=_int(data, "priority"),
            app_name=_str(data, "app_name"),
            app_data=_str(data, "app_data"),
        )


@dataclass(frozen=True, slots=True)
class Channel:
    """A snapshot of one Asterisk channel (one leg of a call).

    `state` is Asterisk's word for it: Down, Rsrvd, OffHook, Dialing, Ring,
    Ringing, Up, Busy, Dialing Offhook, Pre-ring, Unknown.
    """

    id: str
    name: str = ""
    state: str = ""
    caller: CallerId = field(default_factory=CallerId)
    connected: CallerId = field(default_factory=CallerId)
    dialplan: DialplanLocation = field(default_factory=DialplanLocation)
    creationtime: datetime | None = None
    language: str = ""
    accountcode: str = ""
    # The variables ari.conf's `channelvars` names, as they were at the
    # snapshot (empty when none are configured).
    variables: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_up(self) -> bool:
        """True once the channel is answered."""
        return self.state == "Up"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Channel:
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            state=_str(data, "state"),
            caller=CallerId.from_json(_mapping(data, "caller")),
            connected=CallerId.from_json(_mapping(data, "connected")),
            dialplan=DialplanLocation.from_json(_mapping(data, "dialplan")),
            creationtime=parse_timestamp(_str(data, "creationtime")),
            language=_str(data, "language"),
            accountcode=_str(data, "accountcode"),
            variables={
                str(k): "" if v is None else str(v)
                for k, v in _mapping(data, "channelvars").items()
            },
        )


@dataclass(frozen=True, slots=True)
class Bridge:
    """A snapshot of one bridge: its id, type and the ids of the channels in it."""

    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Bridge:
        raw_channels = data.get("channels")
        channels = tuple(str(c) for c in raw_channels) if isinstance(raw_channels, list) else ()
        return cls(
            id=_str(data, "id"),
            technology=_str(data, "technology"),
            bridge_type=_str(data, "bridge_type"),
            bridge_class=_str(data, "bridge_class"),
            creator=_str(data, "creator"),
            name=_str(data, "name"),
            channels=channels,
        )


@dataclass(frozen=True, slots=True)
class Playback:
    """A sound being played to a channel or bridge.

    `target_uri` is `channel:<id>` or `bridge:<id>`; `state` is queued,
    playing, continuing, done, failed or cancelled.
    """

    id: str
    media_uri: str = ""
    target_uri: str = ""
    state: str = ""
    language: str = ""

    @property
    def channel_id(self) -> str | None:
        """The id of the channel played to, None when the target is a bridge."""
        kind, _, ident = self.target_uri.partition(":")
        return ident if kind == "channel" and ident else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Playback:
        return cls(
            id=_str(data, "id"),
            media_uri=_str(data, "media_uri"),
            target_uri=_str(data, "target_uri"),
            state=_str(data, "state"),
            language=_str(data, "language"),
        )
