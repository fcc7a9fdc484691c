"""What the engine knows it owns: calls in progress, their channels and playbacks, adopted bridges.

The engine's only state besides the calls themselves. `translate` and
`reconcile` read it (they are pure); the coordinator and the call runners
write it: a channel or playback is registered before the request that makes
it, so no event about it can arrive for something unknown.
"""

from __future__ import annotations

from collections.abc import Iterator

from coverage_engine.callflow import Call


class Registry:
    """Calls in progress by id, and which call each channel and playback belongs to."""

    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}
        self._channels: dict[str, str] = {}  # channel id -> call id
        self._playbacks: dict[str, str] = {}  # playback id -> call id
        self._created: dict[str, list[str]] = {}  # call id -> its channels and playbacks
        # Bridges found after a restart with two people talking in them: no
        # call logic, only the duty to end the other side when one hangs up.
        self._adopted: dict[str, str] = {}  # channel id -> bridge id
        self._adopted_bridges: dict[str, tuple[str, ...]] = {}
        # Queued callers no call here carries (their engine is gone): followed
        # only to finish their journeys. Channel id -> the operator, once one took it.
        self._watched: dict[str, str | None] = {}

    # -- reading (translate, reconcile) ---------------------------------------------------

    def call(self, call_id: str) -> Call | None:
        """The call in progress with this id (its caller's channel id)."""
        return self._calls.get(call_id)

    def calls(self) -> Iterator[Call]:
        """Every call in progress."""
        return iter(list(self._calls.values()))

    def legs(self) -> dict[str, str | None]:
        """Every call in progress and the leg it is ringing or talking on (None: none now)."""
        return {call_id: call.state.leg_id for call_id, call in self._calls.items()}

    def __len__(self) -> int:
        return len(self._calls)

    def call_of_channel(self, channel_id: str) -> str | None:
        """The call a channel (its caller's, or a leg it created) belongs to."""
        return self._channels.get(channel_id)

    def call_of_playback(self, playback_id: str) -> str | None:
        """The call a playback was started by."""
        return self._playbacks.get(playback_id)

    def adopted_bridge(self, channel_id: str) -> str | None:
        """The adopted bridge a channel talks in, if any."""
        return self._adopted.get(channel_id)

    def adopted_channels(self, bridge_id: str) -> tuple[str, ...]:
        """The channels of an adopted bridge."""
        return self._adopted_bridges.get(bridge_id, ())

    def knows(self, channel_id: str) -> bool:
        """Whether the channel is part of a call in progress or of an adopted conversation."""
        return channel_id in self._channels or channel_id in self._adopted

    def watched(self, channel_id: str) -> bool:
        """Whether a queued caller is followed for its journey only."""
        return channel_id in self._watched

    def operator_of(self, channel_id: str) -> str | None:
        """The operator a watched caller was put through to, if any."""
        return self._watched.get(channel_id)

    # -- writing (the engine and the call runners) ----------------------------------------

    def add_call(self, call: Call) -> None:
        """A call starts: its caller's channel is its first."""
        self._calls[call.call_id] = call
        self._channels[call.call_id] = call.call_id
        self._created[call.call_id] = []

    def add_channel(self, call_id: str, channel_id: str) -> None:
        """A channel the call is about to create."""
        self._channels[channel_id] = call_id
        self._created.setdefault(call_id, []).append(channel_id)

    def add_playback(self, call_id: str, playback_id: str) -> None:
        """A playback the call is about to start."""
        self._playbacks[playback_id] = call_id
        self._created.setdefault(call_id, []).append(playback_id)

    def remove_call(self, call: Call) -> None:
        """Forget a call and everything it created (the call is over, or handed on)."""
        if self._calls.get(call.call_id) is not call:
            return
        del self._calls[call.call_id]
        for ident in (call.call_id, *self._created.pop(call.call_id, ())):
            self._channels.pop(ident, None)
            self._playbacks.pop(ident, None)

    def legs_of(self, call_id: str) -> list[str]:
        """Every leg the call created, oldest first."""
        return [c for c in self._created.get(call_id, ()) if c in self._channels]

    def watch(self, channel_id: str) -> None:
        """Follow a queued caller for its journey."""
        self._watched.setdefault(channel_id, None)

    def took(self, channel_id: str, member: str) -> None:
        """A watched caller reached an operator."""
        if channel_id in self._watched:
            self._watched[channel_id] = member

    def unwatch(self, channel_id: str) -> None:
        """Stop following a caller (gone, or carried by a call again)."""
        self._watched.pop(channel_id, None)

    def adopt(self, bridge_id: str, channel_ids: tuple[str, ...]) -> None:
        """Watch a bridge of two people nobody here made."""
        self._adopted_bridges[bridge_id] = channel_ids
        for channel in channel_ids:
            self._adopted[channel] = bridge_id

    def end_adoption(self, bridge_id: str) -> None:
        """Stop watching an adopted bridge."""
        for channel in self._adopted_bridges.pop(bridge_id, ()):
            self._adopted.pop(channel, None)

    def clear(self) -> None:
        """Forget everything (the engine stops)."""
        self._calls.clear()
        self._channels.clear()
        self._playbacks.clear()
        self._created.clear()
        self._adopted.clear()
        self._adopted_bridges.clear()
        self._watched.clear()
