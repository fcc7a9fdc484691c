"""After a (re)connect: what to do about what Asterisk has, `reconcile(...) -> actions` (pure).

Events sent while the link was down are lost, and a restarted engine
remembers nothing; so after every connect the engine lists the channels
and bridges and compares them with what it knows (`Registry`):

* a call in progress whose caller or current leg vanished is told so;
* a caller in our application that no call carries is taken on: resumed
  when its channel says an engine had taken it (`CallMemory.taken`: the call
  continues its journey, no second `received`), started as a new call
  otherwise (it arrived while nobody was listening);
* a caller back from the queue is resumed after the queue step;
* two people talking in a bridge are left talking (adopted: when one hangs
  up, the other is released); a leg nobody will bridge is hung up; a channel
  with Stasis arguments we do not make goes to the dialplan's safety net.

`app` is the application this engine answers for: channels in other
applications are not ours. A surviving engine that takes over another's
calls (two engines on one PBX) decides here which of them are now its own;
`resume_or_start` is where a call found becomes a continued or a new journey.

Reading the channel memory costs one request per channel unless ari.conf's
`channelvars` puts the COVERAGE_* variables in every snapshot:
`needs_memory` says which channels must be read before calling `reconcile`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from coverage_engine import wire
from coverage_engine.ari import Bridge, Channel
from coverage_engine.callflow.events import CallerGone, LegFailed, LegFailure
from coverage_engine.engine.actions import (
    Action,
    Adopt,
    CallMemory,
    Deliver,
    EndAdopted,
    Fallback,
    HangUpChannel,
    OperatorTook,
    ResumeCall,
    StartCall,
    WatchQueued,
)
from coverage_engine.engine.registry import Registry
from coverage_engine.plan import StepKind


def needs_memory(
    app: str,
    channels: Sequence[Channel],
    bridges: Sequence[Bridge],
    registry: Registry,
    claimed: Collection[str] = frozenset(),
) -> list[str]:
    """The callers `reconcile` will take on whose snapshot lacks their memory (to read first)."""
    talking = _talking(bridges)
    return [
        channel.id
        for channel in channels
        if not registry.knows(channel.id)
        and not channel.variables
        and channel.id not in talking
        and (
            isinstance(_entry(app, channel, claimed), wire.Inbound | wire.QueueReturn)
            or (_queued(channel) and not registry.watched(channel.id))
        )
    ]


def reconcile(
    app: str,
    channels: Sequence[Channel],
    bridges: Sequence[Bridge],
    registry: Registry,
    memories: Mapping[str, CallMemory] | None = None,
    claimed: Collection[str] = frozenset(),
    owners: Collection[str] = frozenset(),
    known_before: Mapping[str, str | None] | None = None,
) -> list[Action]:
    """What to do so that what the engine knows and what Asterisk has agree again.

    `known_before` is the registry's calls (call id -> its leg) when the
    snapshot was asked for, given when calls go on while it is read (a
    reconcile in a running engine, a take-over): a call or leg that began
    after the snapshot is missing from it without being gone, and is left alone.

    `memories` holds what was read for the channels `needs_memory` named;
    a channel whose snapshot carries its variables needs none. `claimed`
    are the channels in `app` (`GET /applications/<app>`): a channel that
    entered through `StasisBroadcast` is ours only if we won it. A caller
    whose memory names the engine holding it (COVERAGE_ENGINE) is left alone
    unless that is `app` or one of `owners` (a dead engine being taken over).
    """
    memories = memories or {}
    present = {c.id: c for c in channels}
    actions: list[Action] = []
    for call in registry.calls():
        if known_before is not None and call.call_id not in known_before:
            continue  # arrived after the snapshot
        if call.call_id not in present:
            actions.append(Deliver(call.call_id, CallerGone()))
        elif (
            call.state.leg_id is not None
            and call.state.leg_id not in present
            and (known_before is None or known_before[call.call_id] == call.state.leg_id)
        ):
            actions.append(Deliver(call.call_id, LegFailed(call.state.leg_id, LegFailure.GONE)))
    bridged = _talking(bridges)
    left_alone = {b.channels[0]: b for b in bridges if len(b.channels) == 1}
    adopted: set[str] = set()
    for channel in channels:
        if registry.knows(channel.id):
            continue
        if _queued(channel):
            # Waiting in the operator queue: no application has it. One that
            # this engine (before a restart) or the dead engine sent there is
            # followed, so its journey learns which operator took it.
            memory = memories.get(channel.id) or CallMemory.from_variables(channel.variables)
            if not registry.watched(channel.id) and memory.engine in {app, *owners}:
                actions.append(WatchQueued(channel.id))
                if memory.member:
                    # An operator took them while nobody followed: app_queue's
                    # Dial event is gone, its MEMBERINTERFACE says who.
                    actions.append(OperatorTook(channel.id, memory.member))
            continue
        entry = _entry(app, channel, claimed)
        if entry is None:
            if channel.id in bridged:
                # Talking to someone (a dead engine's doctor, bridged with its
                # caller): never cut off; the caller's bridge is adopted.
                continue
            if wire.is_leg(channel.id) and not _caller_elsewhere(
                app, channel, present, claimed, memories, owners
            ):
                # A leg a previous engine of ours was still dialing (not yet in
                # the application): nobody will bridge it, stop that phone ringing.
                actions.append(HangUpChannel(channel.id))
            continue  # not ours (another application, the queue, the dialplan)
        bridge = bridged.get(channel.id)
        if bridge is not None:
            if bridge.id not in adopted:
                adopted.add(bridge.id)
                actions.append(Adopt(bridge.id, bridge.channels))
            continue
        memory = memories.get(channel.id) or CallMemory.from_variables(channel.variables)
        if memory.engine and memory.engine != app and memory.engine not in owners:
            continue  # another engine took this call over: its own
        done = left_alone.get(channel.id)
        if done is not None and wire.call_of(done.id) == channel.id:
            # Alone in the bridge its call made for a conversation: the person
            # hung up while no engine listened. Over, as if we had heard it
            # (the journey, bridged already, is closed by the sweep).
            actions.append(EndAdopted(done.id, (channel.id,)))
            continue
        actions.append(resume_or_start(channel, entry, memory))
    return actions


def resume_or_start(channel: Channel, entry: wire.StasisEntry, memory: CallMemory) -> Action:
    """What a channel in our application that no call carries becomes."""
    match entry:
        case wire.QueueReturn(status=status) if _still_in_queue_step(memory):
            return ResumeCall(channel, memory, queue_status=status)
        case wire.QueueReturn():
            # A snapshot shows how the channel last entered the application,
            # not where the call is now: back from the queue, it went on to
            # ring someone (TRIED says who). That step is tried again.
            return ResumeCall(channel, memory)
        case wire.Inbound(did=did) if memory.taken:
            # An engine decided this call (and so wrote its journey): it goes
            # on from where it was, in the same journey.
            return ResumeCall(channel, memory)
        case wire.Inbound(did=did):
            # Never touched: it arrived while nobody listened (or during this
            # very recovery). An ordinary new call.
            return StartCall(channel, did)
        case wire.LegEntry():
            return HangUpChannel(channel.id)  # a leg whose call is gone, not talking to anyone
        case wire.UnknownEntry():
            return Fallback(channel.id, "unknown channel in the application")
    raise AssertionError(entry)  # pragma: no cover - the match is exhaustive


def _queued(channel: Channel) -> bool:
    """Whether the channel waits in (or talks through) app_queue's Queue()."""
    return channel.dialplan.app_name.lower() == "queue"


def _talking(bridges: Sequence[Bridge]) -> dict[str, Bridge]:
    """The channels talking to someone: in a bridge with at least one other."""
    return {c: b for b in bridges if len(b.channels) >= 2 for c in b.channels}


def _still_in_queue_step(memory: CallMemory) -> bool:
    """Whether the last step an engine started for this caller is the operator queue."""
    return not memory.tried or memory.tried[-1].startswith(f"{StepKind.OPERATORS.value}/")


def _entry(app: str, channel: Channel, claimed: Collection[str]) -> wire.StasisEntry | None:
    return wire.snapshot_entry(
        app, channel.dialplan.app_name, channel.dialplan.app_data, claimed=channel.id in claimed
    )


def _caller_elsewhere(
    app: str,
    leg: Channel,
    present: Mapping[str, Channel],
    claimed: Collection[str],
    memories: Mapping[str, CallMemory],
    owners: Collection[str],
) -> bool:
    """Whether a stray leg's caller is another engine's (the leg is that one's).

    In another ARI application, or held by another engine by its memory: an
    application's channel list keeps the channels it once had, so a caller
    a survivor took over still looks like ours to the engine that had it.
    """
    caller = present.get(wire.call_of(leg.id))
    if caller is None or caller.dialplan.app_name.lower() not in ("stasis", "stasisbroadcast"):
        return False
    memory = memories.get(caller.id) or CallMemory.from_variables(caller.variables)
    if memory.engine and memory.engine != app and memory.engine not in owners:
        return True
    return _entry(app, caller, claimed) is None
