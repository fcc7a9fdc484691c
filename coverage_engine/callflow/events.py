"""What can happen to one call: the facts the call flow reacts to.

The engine translates ARI traffic (and its own timers and failed requests)
into these frozen dataclasses; the call flow never sees ARI JSON. Each event
names the channel, playback or timer it is about, so a late event about a leg
that was already given up on can be recognised as stale and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coverage_engine.callflow.commands import Command
    from coverage_engine.plan import Plan


class LegFailure(StrEnum):
    """Why an outbound leg did not reach a person (mapped from the hangup cause)."""

    BUSY = "busy"  # SIP 486 / cause 17
    NO_ANSWER = "no_answer"  # our ring timer, or SIP 408/480 / causes 18-19
    REJECTED = "rejected"  # SIP 603 decline / cause 21: the doctor pressed "decline"
    GONE = "gone"  # the channel disappeared (404, hung up before answering, congestion)


@dataclass(frozen=True, slots=True)
class CallerEntered:
    """A caller's channel entered the application and the routing core decided.

    `resumed` means the call is picked up again part-way, by an engine that
    has no memory of it (it was restarted): the caller was already received
    and heard the announcement. `tried` is what the previous engine left in
    `COVERAGE_TRIED`: the keys of the steps it tried, the current one last;
    it decides where the call continues in the new plan (`callflow.resume`).
    `queue_status` is set when the caller comes back from the dialplan queue
    (`QUEUESTATUS`): the last step tried was that queue, and it is over.
    """

    plan: Plan
    caller_number: str
    caller_name: str
    did: str
    tried: tuple[str, ...] = ()
    queue_status: str | None = None
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class LegEnteredApp:
    """The outbound leg `leg_id` entered the application (it can be played to, bridged)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class LegUp:
    """The outbound leg `leg_id` was answered (by a person, or by a voicemail)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class LegFailed:
    """The outbound leg `leg_id` ended before being bridged, or hung up after."""

    leg_id: str
    cause: LegFailure


@dataclass(frozen=True, slots=True)
class LegHangingUp:
    """The outbound leg `leg_id` asked to hang up (the person's BYE arrived).

    It comes before the leg is gone (`LegFailed`), and before anything the
    leg's hang-up runs: the handler that releases the caller as the person
    leaves a conversation. Only a conversation acts on it; a ringing leg
    waits for its end and the cause that says busy or declined.
    """

    leg_id: str


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A DTMF digit arrived on `channel_id` (the doctor's key press)."""

    channel_id: str
    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackEnded:
    """The playback `playback_id` ended (played to the end, or stopped).

    `failed` is Asterisk's "failed" state: the sound could not be played at
    all (a prompt file missing on this PBX).
    """

    playback_id: str
    failed: bool = False


@dataclass(frozen=True, slots=True)
class QueueResult:
    """The caller came back from the dialplan operator queue with `QUEUESTATUS`.

    TIMEOUT (the practice's maximum wait ran out), JOINEMPTY / LEAVEEMPTY /
    JOINUNAVAIL / LEAVEUNAVAIL (no operator logged in), FULL; an empty status
    after an operator answered means that conversation is over.
    """

    status: str


@dataclass(frozen=True, slots=True)
class OperatorConnected:
    """An operator picked the caller up from the queue (app_queue bridged them)."""

    member: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The timer `name` the call asked for ran out."""

    name: str


@dataclass(frozen=True, slots=True)
class CallerGone:
    """The caller's channel is gone: every other leg, bridge and timer must go too."""


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """The engine could not carry out `command` (an ARI request failed).

    `gone` is True when Asterisk answered 404: the channel the command was
    about no longer exists, which on a phone system is normal, not an error.
    The call flow decides what that means, like h11's `send_failed()`.
    """

    command: Command
    gone: bool
    reason: str = ""


Event = (
    CallerEntered
    | LegEnteredApp
    | LegUp
    | LegFailed
    | LegHangingUp
    | DtmfReceived
    | PlaybackEnded
    | QueueResult
    | OperatorConnected
    | TimerFired
    | CallerGone
    | CommandFailed
)
