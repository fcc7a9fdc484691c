"""ARI events into what they mean for the calls: `translate(registry, item) -> actions` (pure).

Each item of the event stream becomes zero or more actions: most often an
event of the call flow delivered to the call it is about (`Deliver`), found
by the channel or playback id through the registry. A caller nobody carries
yet becomes `StartCall` or `ResumeCall`, a leg nobody will bridge is hung
up, the link's ups and downs start recovery. Whatever means nothing to us
(events about channels we do not own, event types we do not act on) is [].

The Asterisk facts this relies on are named where they are used: hangup
causes and DIALSTATUS words, the Stasis arguments (`wire`), app_queue's Dial
events. `EVENTS` names every event type it acts on: the engine asks Asterisk
for those only (the application's event filter), so a new case here must
add its type there (a unit test checks that every other type means nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

from coverage_engine import wire
from coverage_engine.ari import (
    CallBroadcast,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Connected,
    Dial,
    Disconnected,
    PlaybackFinished,
    StasisStart,
    StreamItem,
)
from coverage_engine.callflow.events import (
    CallerGone,
    DtmfReceived,
    LegEnteredApp,
    LegFailed,
    LegFailure,
    LegHangingUp,
    LegUp,
    OperatorConnected,
    PlaybackEnded,
    QueueResult,
)
from coverage_engine.engine.actions import (
    Action,
    CallMemory,
    Claim,
    Deliver,
    EndAdopted,
    Fallback,
    HangUpChannel,
    LinkDown,
    LinkUp,
    OperatorTook,
    ResumeCall,
    StartCall,
    WatchedGone,
)
from coverage_engine.engine.registry import Registry

# Q.850 hangup causes of a leg that never reached a person.
_CAUSES: Mapping[int, LegFailure] = {
    17: LegFailure.BUSY,  # user busy (SIP 486)
    18: LegFailure.NO_ANSWER,  # no user responding (SIP 408)
    19: LegFailure.NO_ANSWER,  # no answer (SIP 480)
    21: LegFailure.REJECTED,  # call rejected (SIP 603 decline)
}
# DIALSTATUS words of a failed dial attempt.
_DIALSTATUS: Mapping[str, LegFailure] = {
    "BUSY": LegFailure.BUSY,
    "NOANSWER": LegFailure.NO_ANSWER,
    "CHANUNAVAIL": LegFailure.GONE,
    "CONGESTION": LegFailure.GONE,
    "CANCEL": LegFailure.GONE,
}


#: The ARI event types `translate` acts on: what the engine asks Asterisk to send.
#: A real call brings about 50 events, most of them ChannelVarsets (RTP
#: statistics, bridge peers, app_queue's bookkeeping) that mean nothing here.
EVENTS: frozenset[str] = frozenset(
    {
        "StasisStart",
        "CallBroadcast",
        "Dial",
        "ChannelDestroyed",
        "ChannelHangupRequest",
        "ChannelDtmfReceived",
        "PlaybackFinished",
    }
)


def translate(registry: Registry, item: StreamItem) -> list[Action]:
    """What one item of the event stream means for the calls the registry knows."""
    match item:
        case Connected(attempt=attempt):
            return [LinkUp(attempt)]
        case Disconnected(reason=reason):
            return [LinkDown(reason)]
        case CallBroadcast(channel=channel):
            # Every engine connected to the PBX is offered every caller (a new
            # one, or one back from the queue: first to the engine that sent
            # them there); the first claim wins and gets the StasisStart.
            return [Claim(channel.id)]
        case StasisStart():
            return _stasis_start(registry, item)
        case Dial(peer=peer, dialstatus=status) if status in _DIALSTATUS:
            call = registry.call_of_channel(peer.id)
            return [] if call is None else [Deliver(call, LegFailed(peer.id, _DIALSTATUS[status]))]
        case Dial(caller=caller, dialstatus="ANSWER", dialstring=member) if (
            caller is not None and member and registry.watched(caller.id)
        ):
            # An operator took a queued caller this engine only follows (its
            # engine died): the journey learns who.
            return [OperatorTook(caller.id, member)]
        case Dial(caller=caller, peer=peer, dialstatus="ANSWER", dialstring=member) if (
            caller is not None
            and member
            and registry.call(caller.id) is not None
            and registry.call_of_channel(peer.id) is None
        ):
            # app_queue dialing an operator for our queued caller (the caller
            # the engine subscribed to): the one who answered, by the queue
            # member's interface (what MEMBERINTERFACE would say).
            return [Deliver(caller.id, OperatorConnected(member))]
        case ChannelDestroyed(channel=channel, cause=cause):
            return _destroyed(registry, channel, cause)
        case ChannelHangupRequest(channel=channel) if registry.watched(channel.id):
            return _watched_gone(registry, channel)
        case ChannelHangupRequest(channel=channel):
            # The caller asked to hang up: tear the other legs down now rather
            # than after Asterisk finished destroying the channel. A leg's
            # request comes before its hang-up handler releases the caller, so
            # a conversation ends as the person's, not the caller's.
            call = registry.call_of_channel(channel.id)
            if call is None:
                return []
            if call == channel.id:
                return [Deliver(call, CallerGone())]
            return [Deliver(call, LegHangingUp(channel.id))]
        case ChannelDtmfReceived(channel=channel, digit=digit):
            call = registry.call_of_channel(channel.id)
            return [] if call is None else [Deliver(call, DtmfReceived(channel.id, digit))]
        case PlaybackFinished(playback=playback):
            call = registry.call_of_playback(playback.id)
            # "failed": the sound could not be played at all (missing on this PBX).
            ended = PlaybackEnded(playback.id, failed=playback.state == "failed")
            return [] if call is None else [Deliver(call, ended)]
    return []


def _stasis_start(registry: Registry, event: StasisStart) -> list[Action]:
    channel = event.channel
    match wire.parse_entry(event.args):
        case wire.LegEntry():
            call = registry.call_of_channel(channel.id)
            if call is None:
                # A leg of a call this engine does not know (created before a
                # restart): nobody will bridge it, so do not let it ring on.
                return [HangUpChannel(channel.id)]
            # An originated leg enters the application as it is answered: Up.
            entered: list[Action] = [Deliver(call, LegEnteredApp(channel.id))]
            return entered + ([Deliver(call, LegUp(channel.id))] if channel.is_up else [])
        case wire.QueueReturn(status=status):
            if registry.call(channel.id) is not None:
                return [Deliver(channel.id, QueueResult(status))]
            # Back from the queue with no call in memory: an engine restarted
            # while the caller waited. The channel's memory says where it was.
            memory = CallMemory.from_variables(channel.variables) if channel.variables else None
            return [ResumeCall(channel, memory, queue_status=status)]
        case wire.Inbound(did=did):
            return [] if registry.call(channel.id) is not None else [StartCall(channel, did)]
        case wire.UnknownEntry():
            return [Fallback(channel.id, "unexpected Stasis arguments")]
    return []  # pragma: no cover - the match is exhaustive


def _watched_gone(registry: Registry, channel: Channel) -> list[Action]:
    """A followed queued caller's line ended; who took them, if the Dial event was missed."""
    member = channel.variables.get(wire.QUEUE_MEMBER, "")
    if member and registry.operator_of(channel.id) is None:
        # Put through while nobody followed (between an engine's death and the
        # take-over): the snapshot carries app_queue's MEMBERINTERFACE when
        # ari.conf's channelvars name it.
        return [OperatorTook(channel.id, member), WatchedGone(channel.id)]
    return [WatchedGone(channel.id)]


def _destroyed(registry: Registry, channel: Channel, cause: int) -> list[Action]:
    channel_id = channel.id
    if registry.watched(channel_id):
        return _watched_gone(registry, channel)
    bridge = registry.adopted_bridge(channel_id)
    if bridge is not None:
        others = tuple(c for c in registry.adopted_channels(bridge) if c != channel_id)
        return [EndAdopted(bridge, others)]
    call = registry.call_of_channel(channel_id)
    if call is None:
        return []
    if call == channel_id:
        return [Deliver(call, CallerGone())]
    return [Deliver(call, LegFailed(channel_id, _CAUSES.get(cause, LegFailure.GONE)))]
