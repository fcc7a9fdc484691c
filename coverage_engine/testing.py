"""Helpers for your own tests of code built on coverage-engine.

`MemoryAri` is an in-memory fake of the ARI interface the engine drives
(`coverage_engine.ari.Ari`): it records every request, keeps the channels,
bridges and variables it was asked to make, and hands the events a test
pushes to whoever reads `events()`. It emits nothing by itself: the test plays
Asterisk's part (a caller arrives, a phone answers, someone hangs up) with
`push`. `FrozenClock` and `MemoryRecorder` complete it: a clock that moves
only when told, and call records kept in memory.

    ari = MemoryAri()
    ari.add_channel(Channel("c1", state="Ring"))
    await ari.push(StasisStart(type="StasisStart", channel=..., args=("inbound", did)))
    ...
    assert ari.sent("answer") == [Request("answer", "c1")]

The project's own tests also use a fake ARI *server* (HTTP and WebSocket) to
exercise the production client; it lives in the lab, outside this package.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from coverage_engine.ari import (
    Ari,
    Bridge,
    CallerId,
    Channel,
    Connected,
    HangupReason,
    Playback,
    ResourceGone,
    StreamItem,
)
from coverage_engine.clock import FrozenClock
from coverage_engine.records import MemoryRecorder

__all__ = ["FrozenClock", "MemoryAri", "MemoryRecorder", "Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One request the code under test made: the `Ari` method, what it acted on, the rest."""

    op: str
    target: str
    args: Mapping[str, object] = field(default_factory=dict)


class MemoryAri:
    """An in-memory `Ari`: requests recorded, events pushed by the test, failures on demand."""

    def __init__(self, app: str = "coverage-engine") -> None:
        self._app = app
        self.requests: list[Request] = []
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.variables: dict[str, dict[str, str]] = {}
        # (op, target) -> the error that request raises, every time until removed.
        self.failures: dict[tuple[str, str], Exception] = {}
        # Channels another engine claimed first: our claim of them is refused.
        self.claimed_by_others: set[str] = set()
        # Other applications (engines) and the channels each holds.
        self.other_apps: dict[str, list[str]] = {}
        self._events: asyncio.Queue[StreamItem | None] = asyncio.Queue()

    # -- the test's side ----------------------------------------------------------

    def add_channel(self, channel: Channel) -> None:
        """A channel that exists in Asterisk (a caller who has just arrived, say)."""
        self.channels[channel.id] = channel

    async def push(self, item: StreamItem) -> None:
        """Deliver an event (or `Connected`/`Disconnected`) to the reader of `events()`."""
        await self._events.put(item)

    def close(self) -> None:
        """End the event stream, as a closed client does."""
        self._events.put_nowait(None)

    def fail(self, op: str, target: str, error: Exception) -> None:
        """Make every `op` request on `target` raise `error` (e.g. `ResourceGone`)."""
        self.failures[(op, target)] = error

    def sent(self, op: str | None = None, target: str | None = None) -> list[Request]:
        """The requests made so far, in order, optionally only one method or one target."""
        return [
            r
            for r in self.requests
            if (op is None or r.op == op) and (target is None or r.target == target)
        ]

    def _request(self, op: str, target: str, **args: object) -> None:
        self.requests.append(Request(op, target, args))
        error = self.failures.get((op, target))
        if error is not None:
            raise error

    # -- the Ari interface -----------------------------------------------------------

    @property
    def app(self) -> str:
        return self._app

    async def events(self) -> AsyncIterator[StreamItem]:
        yield Connected(attempt=1)
        while (item := await self._events.get()) is not None:
            yield item

    async def answer(self, channel_id: str) -> None:
        self._request("answer", channel_id)

    async def ring(self, channel_id: str) -> None:
        self._request("ring", channel_id)

    async def ring_stop(self, channel_id: str) -> None:
        self._request("ring_stop", channel_id)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        self._request("start_moh", channel_id, moh_class=moh_class)

    async def stop_moh(self, channel_id: str) -> None:
        self._request("stop_moh", channel_id)

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str,
        lang: str | None = None,
    ) -> Playback:
        media = (media,) if isinstance(media, str) else tuple(media)
        self._request("play", channel_id, media=media, playback_id=playback_id, lang=lang)
        return Playback(playback_id, media_uri=",".join(media), target_uri=f"channel:{channel_id}")

    async def stop_playback(self, playback_id: str) -> None:
        self._request("stop_playback", playback_id)

    async def hangup(self, channel_id: str, reason: HangupReason = "normal") -> None:
        self._request("hangup", channel_id, reason=reason)
        self.channels.pop(channel_id, None)

    async def create_channel(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: Sequence[str] = (),
        originator: str | None = None,
        caller_id: CallerId | None = None,
        formats: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        self._request(
            "create_channel",
            channel_id,
            endpoint=endpoint,
            app_args=tuple(app_args),
            originator=originator,
            caller_id=caller_id,
            variables=dict(variables or {}),
        )
        channel = Channel(channel_id, name=f"{endpoint}-{len(self.channels):08x}", state="Down")
        self.channels[channel_id] = channel
        return channel

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        ring_seconds: int,
        app_args: Sequence[str] = (),
        originator: str | None = None,
        caller_id: CallerId | None = None,
    ) -> Channel:
        self._request(
            "originate",
            channel_id,
            endpoint=endpoint,
            ring_seconds=ring_seconds,
            app_args=tuple(app_args),
            originator=originator,
            caller_id=caller_id,
        )
        channel = Channel(channel_id, name=f"{endpoint}-{len(self.channels):08x}", state="Down")
        self.channels[channel_id] = channel
        return channel

    async def dial(self, channel_id: str, *, ring_seconds: int, caller: str | None = None) -> None:
        self._request("dial", channel_id, ring_seconds=ring_seconds, caller=caller)

    async def continue_in_dialplan(
        self, channel_id: str, *, context: str, extension: str, priority: int = 1
    ) -> None:
        self._request(
            "continue_in_dialplan",
            channel_id,
            context=context,
            extension=extension,
            priority=priority,
        )

    async def claim(self, channel_id: str) -> bool:
        self._request("claim", channel_id)
        return channel_id not in self.claimed_by_others

    async def subscribe_channel(self, channel_id: str) -> None:
        self._request("subscribe_channel", channel_id)

    async def create_bridge(self, bridge_id: str, *, name: str = "") -> Bridge:
        self._request("create_bridge", bridge_id, name=name)
        self.bridges[bridge_id] = Bridge(bridge_id, bridge_type="mixing", name=name)
        return self.bridges[bridge_id]

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._request("destroy_bridge", bridge_id)
        self.bridges.pop(bridge_id, None)

    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        self._request("add_to_bridge", bridge_id, channel_ids=tuple(channel_ids))
        bridge = self._bridge(bridge_id)
        self.bridges[bridge_id] = replace(bridge, channels=(*bridge.channels, *channel_ids))

    async def remove_from_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        self._request("remove_from_bridge", bridge_id, channel_ids=tuple(channel_ids))
        bridge = self._bridge(bridge_id)
        kept = tuple(c for c in bridge.channels if c not in channel_ids)
        self.bridges[bridge_id] = replace(bridge, channels=kept)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self._request("set_variable", channel_id, name=name, value=value)
        self.variables.setdefault(channel_id, {})[name] = value

    async def set_variables(self, channel_id: str, variables: Sequence[tuple[str, str]]) -> None:
        self._request("set_variables", channel_id, variables=tuple(variables))
        self.variables.setdefault(channel_id, {}).update(variables)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        self._request("get_variable", channel_id, name=name)
        return self.variables.get(channel_id, {}).get(name)

    async def get_channel(self, channel_id: str) -> Channel:
        self._request("get_channel", channel_id)
        if channel_id not in self.channels:
            raise ResourceGone("GET", f"/channels/{channel_id}", 404, "Channel not found")
        return self.channels[channel_id]

    async def list_channels(self) -> list[Channel]:
        self._request("list_channels", "")
        return list(self.channels.values())

    async def list_bridges(self) -> list[Bridge]:
        self._request("list_bridges", "")
        return list(self.bridges.values())

    async def application_channel_ids(self, app: str | None = None) -> list[str]:
        self._request("application_channel_ids", app or "")
        if app is not None and app != self._app:
            return list(self.other_apps.get(app, ()))
        return [c for c in self.channels if not any(c in o for o in self.other_apps.values())]

    async def filter_events(self, allowed: Collection[str]) -> None:
        self._request("filter_events", self._app, allowed=frozenset(allowed))

    def _bridge(self, bridge_id: str) -> Bridge:
        if bridge_id not in self.bridges:
            raise ResourceGone("POST", f"/bridges/{bridge_id}", 404, "Bridge not found")
        return self.bridges[bridge_id]


def _is_an_ari(fake: MemoryAri) -> Ari:
    # mypy checks here, once, that MemoryAri implements the whole interface.
    return fake
