"""What the engine does about what Asterisk tells it: the output of `translate` and `reconcile`.

Both pure functions answer with these; the coordinator (`Engine`) carries
them out, and is the only one of the three that does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coverage_engine import wire
from coverage_engine.ari import Channel
from coverage_engine.callflow.events import Event
from coverage_engine.callflow.resume import parse_tried


@dataclass(frozen=True, slots=True)
class CallMemory:
    """What an engine left on a caller's channel (`wire.CALL_MEMORY`): enough to take it on."""

    did: str = ""
    practice: str = ""
    tried: tuple[str, ...] = ()
    engine: str = ""  # the engine that holds the call, when one said so (queue, take-over)
    member: str = ""  # the operator app_queue put a queued caller through to, if any

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> CallMemory:
        """The memory in a channel's variables (missing ones are empty)."""
        return cls(
            did=variables.get(wire.DID, ""),
            practice=variables.get(wire.PRACTICE, ""),
            tried=parse_tried(variables.get(wire.TRIED, "")),
            engine=variables.get(wire.ENGINE, ""),
            member=variables.get(wire.QUEUE_MEMBER, ""),
        )

    @property
    def taken(self) -> bool:
        """Whether an engine had taken the call: it decided it (and so recorded its journey)."""
        return bool(self.practice or self.tried)


@dataclass(frozen=True, slots=True)
class Deliver:
    """Feed `event` to the call `call_id` in progress."""

    call_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class StartCall:
    """A new caller: decide their plan and carry the call."""

    channel: Channel
    did: str


@dataclass(frozen=True, slots=True)
class Claim:
    """`StasisBroadcast()` offers a caller to every engine: ask for it (the first claim wins)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class ResumeCall:
    """Take on a call an engine had started and lost (a restart): continue its journey.

    `memory` is what the channel carries; None when the snapshot did not
    include it (no `channelvars`): the engine reads it first. `queue_status`
    is set for a caller back from the queue.
    """

    channel: Channel
    memory: CallMemory | None
    queue_status: str | None = None


@dataclass(frozen=True, slots=True)
class HangUpChannel:
    """Hang up a channel nobody will bridge (a leg left by a previous engine)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class Fallback:
    """Hand a caller to the dialplan's safety net (queue, then a fixed number)."""

    channel_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Adopt:
    """Two people already talk in a bridge nobody here made: end one side when the other goes."""

    bridge_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EndAdopted:
    """One side of an adopted conversation hung up: hang up `others`, destroy the bridge."""

    bridge_id: str
    others: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WatchQueued:
    """A caller waiting in the operator queue whose engine is gone: follow it for its journey."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class OperatorTook:
    """app_queue put a watched caller through to an operator (`member`)."""

    channel_id: str
    member: str


@dataclass(frozen=True, slots=True)
class WatchedGone:
    """A watched caller's line ended (in the queue, or after talking to an operator)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The event link (re)connected: look at what Asterisk has (`reconcile`)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The event link dropped; events until it is back are lost."""

    reason: str


Action = (
    Deliver
    | Claim
    | StartCall
    | ResumeCall
    | HangUpChannel
    | Fallback
    | Adopt
    | EndAdopted
    | WatchQueued
    | OperatorTook
    | WatchedGone
    | LinkUp
    | LinkDown
)
