"""What the call flow asks the engine to do: one ARI request (or timer) each.

Every command carries the ids it is about; ids of things the call creates
(legs, bridges, playbacks) are chosen by the call flow itself, so that ARI
events about them can be matched back without a round trip, and so that the
ids are deterministic in tests. The engine executes commands in order and
reports a failure back as `CommandFailed(command, gone=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from coverage_engine.journey import JourneyEvent


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the caller's channel (so prompts, ringback and MOH reach them)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class StartRinging:
    """Play ringback to the channel: on an answered channel Asterisk generates it in-band."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class StopRinging:
    """Stop the ringback started by `StartRinging`."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class StartMoh:
    """Start music on hold on the channel (the default class)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class StopMoh:
    """Stop music on hold on the channel."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class Play:
    """Play `media` (an ARI media URI such as `sound:...`) to the channel."""

    channel_id: str
    media: str
    playback_id: str


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Stop the playback `playback_id` (404 if it already ended is fine)."""

    playback_id: str


@dataclass(frozen=True, slots=True)
class CreateLeg:
    """Create an outbound channel into the application and dial it.

    `dial` comes from the validated plan only (`PJSIP/frontdesk-maple`, or an
    external number through the configured trunk). `caller_channel_id` is given
    to Asterisk as the dialing channel so the callee's phone shows the caller;
    `caller_name` / `caller_number` are what the callee's display shows: the
    practice's short name before the caller's name, so a doctor or the front
    desk knows at a glance which practice the call is for.
    `timeout` is Asterisk's own ring limit, a little longer than the call
    flow's ring timer, as a backstop if a timer were ever lost.
    """

    leg_id: str
    dial: str
    caller_channel_id: str
    caller_name: str
    caller_number: str
    timeout: int


@dataclass(frozen=True, slots=True)
class HangUp:
    """Hang up the channel (a leg we give up on, or the caller at the end)."""

    channel_id: str
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class MakeBridge:
    """Create the mixing bridge `bridge_id` and put the channels into it."""

    bridge_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    """Destroy the bridge (the channels in it are not hung up by this)."""

    bridge_id: str


@dataclass(frozen=True, slots=True)
class SetVariables:
    """Set channel variables: the call's state that a restarted engine must find."""

    channel_id: str
    variables: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ContinueInDialplan:
    """Hand the channel back to the dialplan at `context,extension,priority`.

    `watch` asks the engine to keep receiving the channel's events after it
    leaves the application (queue: to learn that the caller hung up or that an
    operator answered); the fallback hand-off does not need it.
    """

    channel_id: str
    context: str
    extension: str = "s"
    priority: int = 1
    watch: bool = False


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Start (or restart) the timer `name`; `TimerFired(name)` comes back."""

    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Cancel the timer `name` if it is running."""

    name: str


@dataclass(frozen=True, slots=True)
class Record:
    """Add `event` to the call's journey; the engine stamps it with its clock."""

    event: JourneyEvent


Command = (
    Answer
    | StartRinging
    | StopRinging
    | StartMoh
    | StopMoh
    | Play
    | StopPlayback
    | CreateLeg
    | HangUp
    | MakeBridge
    | DestroyBridge
    | SetVariables
    | ContinueInDialplan
    | StartTimer
    | CancelTimer
    | Record
)
