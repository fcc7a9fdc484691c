"""The shell around the pure call flow: ARI events in, ARI requests out.

    ARI event stream ──> Engine.dispatch ──> (per call) inbox ──> Call.handle
                                                                     │
    ARI REST requests <── Engine._execute <── commands <─────────────┘
                          (a failure goes back into the call as CommandFailed)

Each call has its own asyncio task and inbox, so a slow or failing call never
holds up another. An exception inside one call (a bug) is caught by that
call's supervisor: the call is handed to the dialplan's fallback context (the
operator queue, then a fixed on-call number) and the error is logged with the
call id; no other call notices.

After every (re)connect of the event WebSocket the engine looks at what
Asterisk has (events sent while we were away are lost): calls it knows whose
channels vanished are told so, and channels in the application it does not
know (the engine was restarted) are taken on again from the state kept in
their channel variables, or handed to the dialplan fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from coverage_engine import wire
from coverage_engine.ari import (
    Ari,
    AriError,
    CallerId,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelStateChange,
    ChannelVarset,
    Connected,
    Dial,
    Disconnected,
    HangupReason,
    ResourceConflict,
    ResourceGone,
    StasisStart,
    StreamItem,
)
from coverage_engine.ari import PlaybackFinished as AriPlaybackFinished
from coverage_engine.callflow import Call, CallSettings, LegFailure
from coverage_engine.callflow import commands as cmd
from coverage_engine.callflow.events import (
    CallerEntered,
    CallerGone,
    CommandFailed,
    DtmfReceived,
    Event,
    LegAnswered,
    LegFailed,
    OperatorConnected,
    PlaybackEnded,
    QueueResult,
    TimerFired,
)
from coverage_engine.callflow.resume import format_tried, parse_tried
from coverage_engine.journey import Decided, Ended, JourneyEvent, Outcome, Received
from coverage_engine.journey.sink import JourneySink, NoSink
from coverage_engine.logs import mask_caller
from coverage_engine.plan import Plan, Router
from coverage_engine.presence import OperatorsCheck

log = structlog.get_logger("coverage_engine.engine")

Clock = Callable[[], datetime]
"""Returns the current instant, timezone-aware."""

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
_DIAL_RETRIES = 25
_DIAL_RETRY_SECONDS = 0.02
_HANGUP_REASONS: Mapping[str, HangupReason] = {"normal": "normal", "no_answer": "no_answer"}


def log_fields(event: JourneyEvent) -> dict[str, Any]:
    """A journey event as it may appear in a log line: no patient data in clear, no whole plan."""
    match event:
        case Received(did=did, caller_number=number):
            return {"did": did, "caller": mask_caller(number)}  # the caller's name stays out
        case Decided():
            fields: dict[str, Any] = {
                "practice": event.practice,
                "status": event.status,
                "reason": event.reason,
                "known_did": event.known_did,
                "via": event.via.value,
            }
            return fields | ({"resumed": True} if event.resumed else {})
    return event.details()


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Runs a function after a delay; the event loop in production, a manual one in tests."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...


class LoopScheduler:
    """The production scheduler: `loop.call_later` on the running loop."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclass(eq=False)
class _Live:
    """One call in progress: its pure logic plus what the shell tracks for it."""

    call: Call
    inbox: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    timers: dict[str, Cancellable] = field(default_factory=dict)
    channels: set[str] = field(default_factory=set)  # the caller and every leg created
    playbacks: set[str] = field(default_factory=set)
    legs_in_stasis: set[str] = field(default_factory=set)
    legs_up: set[str] = field(default_factory=set)
    practice: str = ""


class Engine:
    """Carries every call in the ARI application from StasisStart to a person."""

    def __init__(
        self,
        ari: Ari,
        router: Router,
        *,
        clock: Clock,
        sink: JourneySink | None = None,
        settings: CallSettings | None = None,
        scheduler: Scheduler | None = None,
        on_link: Callable[[bool], None] | None = None,
        operators_check: OperatorsCheck | None = None,
    ) -> None:
        self._ari = ari
        # Operator presence, asked by each call as an operators step is about
        # to start (None: presence unknown, no step is skipped).
        self._operators_check = operators_check
        # Told True/False as the ARI event link comes up and goes down (metrics).
        self._on_link = on_link
        self._router = router
        self._clock = clock
        self._sink = sink or NoSink()
        self._settings = settings or CallSettings()
        self._scheduler = scheduler or LoopScheduler()
        self._calls: dict[str, _Live] = {}  # by call id (the caller's channel id)
        self._by_channel: dict[str, _Live] = {}
        self._by_playback: dict[str, _Live] = {}
        # Bridges found after a restart with two people talking in them: we
        # have no call logic for them, only the duty to end the other side
        # when one hangs up. channel id -> bridge id.
        self._adopted: dict[str, str] = {}
        self._adopted_bridges: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------ public

    def set_router(self, router: Router) -> None:
        """Use a new routing decision (a reloaded config) for calls that arrive from now on."""
        self._router = router

    @property
    def calls_in_progress(self) -> int:
        """How many calls the engine is carrying."""
        return len(self._calls)

    def call(self, call_id: str) -> Call | None:
        """The call logic of a call in progress (tests and diagnostics)."""
        live = self._calls.get(call_id)
        return live.call if live else None

    async def run(self) -> None:
        """Consume the ARI event stream until it ends or the task is cancelled."""
        try:
            async for item in self._ari.events():
                await self.dispatch(item)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop every call task and timer, leaving the calls themselves connected in Asterisk.

        A stopping engine must not hang anyone up: bridged calls go on, and
        the next engine (or the dialplan, when a queued caller comes back)
        takes the rest on.
        """
        tasks = [live.task for live in self._calls.values() if live.task is not None]
        for live in self._calls.values():
            self._cancel_timers(live)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._calls.clear()
        self._by_channel.clear()
        self._by_playback.clear()

    async def dispatch(self, item: StreamItem) -> None:
        """Route one item of the event stream to the call it is about."""
        channel = getattr(item, "channel", None)
        log.debug(
            "ari_event",
            type=getattr(item, "type", type(item).__name__),
            channel=getattr(channel, "id", None),
        )
        if isinstance(item, Connected):
            log.info("ari_connected", attempt=item.attempt)
            if self._on_link is not None:
                self._on_link(True)
            await self._recover()
        elif isinstance(item, Disconnected):
            log.warning("ari_disconnected", reason=item.reason, calls=len(self._calls))
            if self._on_link is not None:
                self._on_link(False)
        elif isinstance(item, StasisStart):
            await self._on_stasis_start(item)
        elif isinstance(item, ChannelStateChange):
            self._on_state_change(item.channel)
        elif isinstance(item, Dial):
            self._on_dial(item)
        elif isinstance(item, ChannelDestroyed):
            await self._on_channel_gone(item.channel.id, item.cause)
        elif isinstance(item, ChannelHangupRequest):
            self._on_hangup_request(item.channel.id)
        elif isinstance(item, ChannelDtmfReceived):
            live = self._by_channel.get(item.channel.id)
            if live is not None:
                self._deliver(live, DtmfReceived(item.channel.id, item.digit))
        elif isinstance(item, AriPlaybackFinished):
            live = self._by_playback.pop(item.playback.id, None)
            if live is not None:
                live.playbacks.discard(item.playback.id)
                failed = item.playback.state == "failed"
                self._deliver(live, PlaybackEnded(item.playback.id, failed=failed))
        elif isinstance(item, ChannelVarset):
            self._on_varset(item)

    # ------------------------------------------------------------ events

    async def _on_stasis_start(self, event: StasisStart) -> None:
        channel = event.channel
        match wire.parse_entry(event.args):
            case wire.LegEntry():
                live = self._by_channel.get(channel.id)
                if live is None:
                    # A leg of a call this engine does not know (created before a
                    # restart): nobody will bridge it, so do not let it ring on.
                    await self._quietly(self._ari.hangup(channel.id, "normal"))
                    return
                live.legs_in_stasis.add(channel.id)
                if channel.is_up:
                    live.legs_up.add(channel.id)
                self._maybe_answered(live, channel.id)
            case wire.QueueReturn(status):
                live = self._calls.get(channel.id)
                if live is not None:
                    self._deliver(live, QueueResult(status))
                else:
                    await self._resume(channel, queue_status=status)
            case wire.Inbound(did):
                if channel.id not in self._calls:
                    await self._start_call(channel, did)
            case wire.UnknownEntry(args):
                log.warning("stasis_unexpected_args", channel=channel.id, args=list(args))
                await self._fallback(channel.id, reason="unexpected Stasis arguments")

    def _on_state_change(self, channel: Channel) -> None:
        live = self._by_channel.get(channel.id)
        if live is None or channel.id == live.call.call_id or not channel.is_up:
            return
        live.legs_up.add(channel.id)
        self._maybe_answered(live, channel.id)

    def _maybe_answered(self, live: _Live, leg: str) -> None:
        # A leg can be bridged or played to only once it is both answered and
        # in the application; the two events come in either order.
        if leg in live.legs_in_stasis and leg in live.legs_up:
            self._deliver(live, LegAnswered(leg))

    def _on_dial(self, event: Dial) -> None:
        live = self._by_channel.get(event.peer.id)
        failure = _DIALSTATUS.get(event.dialstatus)
        if live is not None and failure is not None:
            self._deliver(live, LegFailed(event.peer.id, failure))

    async def _on_channel_gone(self, channel_id: str, cause: int) -> None:
        if channel_id in self._adopted:
            await self._end_adopted(channel_id)
            return
        live = self._by_channel.get(channel_id)
        if live is None:
            return
        if channel_id == live.call.call_id:
            self._deliver(live, CallerGone())
        else:
            self._deliver(live, LegFailed(channel_id, _CAUSES.get(cause, LegFailure.GONE)))

    def _on_hangup_request(self, channel_id: str) -> None:
        # The caller asked to hang up: tear the other legs down now rather
        # than after Asterisk finished destroying the channel.
        live = self._by_channel.get(channel_id)
        if live is not None and channel_id == live.call.call_id:
            self._deliver(live, CallerGone())

    def _on_varset(self, event: ChannelVarset) -> None:
        if event.channel is None or event.variable != wire.QUEUE_MEMBER or not event.value:
            return
        live = self._calls.get(event.channel.id)
        if live is not None:
            self._deliver(live, OperatorConnected(event.value))

    # ------------------------------------------------------------ calls

    async def _start_call(self, channel: Channel, did: str) -> None:
        number = channel.caller.number
        try:
            plan = self._router(self._clock(), did, number)
        except Exception:
            log.exception("routing_failed", call_id=channel.id, did=did)
            await self._fallback(channel.id, reason="routing failed")
            return
        self._spawn(channel.id, None, plan).inbox.put_nowait(
            CallerEntered(plan, number, channel.caller.name, did)
        )

    async def _resume(self, channel: Channel, *, queue_status: str | None) -> None:
        """Take on a caller this engine has no memory of (it was restarted).

        The DID and the steps the call had tried are on the caller's channel
        (set by the call flow as it went); the routing decision is made again
        for the current instant, and the call finds its place in it by the
        steps tried (`callflow.resume`).
        """
        did = await self._variable(channel.id, wire.DID)
        tried = parse_tried(await self._variable(channel.id, wire.TRIED))
        number = channel.caller.number
        try:
            plan = self._router(self._clock(), did, number)
        except Exception:
            log.exception("routing_failed", call_id=channel.id, did=did)
            await self._fallback(channel.id, reason="routing failed on resume")
            return
        log.info(
            "call_resumed",
            call_id=channel.id,
            tried=format_tried(tried) if tried else None,
            queue_status=queue_status,
        )
        # A fresh id prefix: legs of the previous engine may still exist.
        prefix = wire.resumed_prefix(channel.id, secrets.token_hex(3))
        self._spawn(channel.id, prefix, plan).inbox.put_nowait(
            CallerEntered(
                plan,
                number,
                channel.caller.name,
                did,
                tried=tried,
                queue_status=queue_status,
                resumed=True,
            )
        )

    def _spawn(self, call_id: str, id_prefix: str | None, plan: Plan) -> _Live:
        live = _Live(
            Call(
                call_id,
                id_prefix=id_prefix,
                settings=self._settings,
                operators_check=self._operators_check,
            )
        )
        live.practice = plan.practice_id
        live.channels.add(call_id)
        self._calls[call_id] = live
        self._by_channel[call_id] = live
        live.task = asyncio.create_task(self._supervise(live), name=f"call-{call_id}")
        return live

    def _deliver(self, live: _Live, event: Event) -> None:
        live.inbox.put_nowait(event)

    async def _supervise(self, live: _Live) -> None:
        """Run one call to its end; a bug in it hands the caller to the dialplan fallback."""
        call = live.call
        with structlog.contextvars.bound_contextvars(call_id=call.call_id, practice=live.practice):
            try:
                while not call.finished:
                    event = await live.inbox.get()
                    await self._apply(live, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The caller first, the log line second: even a logging
                # failure must not keep them from a person.
                await self._rescue(live)
                log.exception("call_failed", call_id=call.call_id)
            finally:
                self._forget(live)

    async def _apply(self, live: _Live, event: Event) -> None:
        """Feed the event, carry out the commands, feed failures back in the same turn."""
        pending: list[Event] = [event]
        while pending:
            commands = live.call.handle(pending.pop(0))
            for command in commands:
                failure = await self._execute(live, command)
                if failure is not None:
                    pending.append(failure)

    async def _rescue(self, live: _Live) -> None:
        """After a bug in a call: free its legs and bridge, give the caller to the dialplan."""
        call = live.call
        for channel in live.channels - {call.call_id}:
            await self._quietly(self._ari.hangup(channel, "normal"))
        if call.state.bridge_id:
            await self._quietly(self._ari.destroy_bridge(call.state.bridge_id))
        await self._fallback(call.call_id, reason="engine error")
        self._record(call.call_id, Ended(Outcome.ENGINE_ERROR))

    def _forget(self, live: _Live) -> None:
        self._cancel_timers(live)
        if self._calls.get(live.call.call_id) is live:
            del self._calls[live.call.call_id]
        for channel in live.channels:
            if self._by_channel.get(channel) is live:
                del self._by_channel[channel]
        for playback in live.playbacks:
            self._by_playback.pop(playback, None)

    # ------------------------------------------------------------ commands

    async def _execute(self, live: _Live, command: cmd.Command) -> CommandFailed | None:
        """Carry out one command; a failed ARI request becomes a `CommandFailed` event."""
        try:
            await self._perform(live, command)
        except ResourceGone as exc:
            log.debug("resource_gone", command=type(command).__name__, message=exc.message)
            return CommandFailed(command, gone=True, reason=exc.message)
        except AriError as exc:
            log.warning("ari_request_failed", command=type(command).__name__, error=str(exc))
            return CommandFailed(command, gone=False, reason=str(exc))
        return None

    async def _perform(self, live: _Live, command: cmd.Command) -> None:
        ari = self._ari
        match command:
            case cmd.Answer(channel_id):
                await ari.answer(channel_id)
            case cmd.StartRinging(channel_id):
                await ari.ring(channel_id)
            case cmd.StopRinging(channel_id):
                await ari.ring_stop(channel_id)
            case cmd.StartMoh(channel_id):
                await ari.start_moh(channel_id)
            case cmd.StopMoh(channel_id):
                await ari.stop_moh(channel_id)
            case cmd.Play(channel_id, media, playback_id):
                live.playbacks.add(playback_id)
                self._by_playback[playback_id] = live
                await ari.play(channel_id, media, playback_id=playback_id)
            case cmd.StopPlayback(playback_id):
                await ari.stop_playback(playback_id)
            case cmd.CreateLeg():
                await self._create_leg(live, command)
            case cmd.HangUp(channel_id, reason):
                await ari.hangup(channel_id, _HANGUP_REASONS.get(reason, "normal"))
            case cmd.Bridge(bridge_id, channel_ids):
                await ari.create_bridge(bridge_id, name=f"coverage {live.call.call_id}")
                await ari.add_to_bridge(bridge_id, channel_ids)
            case cmd.DestroyBridge(bridge_id):
                await ari.destroy_bridge(bridge_id)
            case cmd.SetVariables(channel_id, variables):
                for name, value in variables:
                    await ari.set_variable(channel_id, name, value)
            case cmd.ContinueInDialplan(channel_id, context, extension, priority, watch):
                if watch:
                    # Keep hearing about the caller while app_queue has them:
                    # their hang-up, and which operator answered. Best effort:
                    # without it the record is poorer, but the caller must
                    # still reach the queue.
                    await self._quietly(ari.subscribe_channel(channel_id))
                await ari.continue_in_dialplan(
                    channel_id, context=context, extension=extension, priority=priority
                )
            case cmd.StartTimer(name, seconds):
                self._start_timer(live, name, seconds)
            case cmd.CancelTimer(name):
                timer = live.timers.pop(name, None)
                if timer is not None:
                    timer.cancel()
            case cmd.Record(event):
                self._record(live.call.call_id, event)

    async def _create_leg(self, live: _Live, command: cmd.CreateLeg) -> None:
        # Known before Asterisk is asked, so no event about the leg can arrive
        # for a channel the engine does not recognise yet.
        live.channels.add(command.leg_id)
        self._by_channel[command.leg_id] = live
        await self._ari.create_channel(
            command.dial,
            channel_id=command.leg_id,
            app_args=wire.leg_args(command.caller_channel_id),
            originator=command.caller_channel_id,
            caller_id=CallerId(name=command.caller_name, number=command.caller_number),
            # What the callee's phone shows comes from the new channel's
            # *connected line* (chan_pjsip builds the From header from it),
            # which Dial() would copy from the caller; ARI's create does not.
            variables={
                wire.CONNECTED_NUMBER: command.caller_number,
                wire.CONNECTED_NAME: command.caller_name,
            },
        )
        # Asterisk puts a created channel into the application asynchronously:
        # a dial sent right after the create can meet 409 "Channel not in
        # Stasis application" for a few milliseconds. Retry briefly.
        for attempt in range(_DIAL_RETRIES):
            try:
                await self._ari.dial(command.leg_id, ring_seconds=command.timeout)
                return
            except ResourceConflict:
                if attempt == _DIAL_RETRIES - 1:
                    raise
                await asyncio.sleep(_DIAL_RETRY_SECONDS)

    def _start_timer(self, live: _Live, name: str, seconds: float) -> None:
        old = live.timers.pop(name, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            if live.timers.pop(name, None) is not None:
                live.inbox.put_nowait(TimerFired(name))

        live.timers[name] = self._scheduler.call_later(seconds, fire)

    def _cancel_timers(self, live: _Live) -> None:
        for timer in live.timers.values():
            timer.cancel()
        live.timers.clear()

    def _record(self, call_id: str, event: JourneyEvent) -> None:
        # Every journey event is also a log line ("journey"): what an admin
        # reads in the journal, and what the demo tells its story from.
        log.info("journey", call_id=call_id, journey_event=event.name, **log_fields(event))
        try:
            self._sink.record(call_id, self._clock(), event)
        except Exception:
            # A record that cannot be written must never stop the call itself.
            log.exception("journey_record_failed", call_id=call_id, journey_event=event.name)

    # ------------------------------------------------------------ recovery

    async def _recover(self) -> None:
        """After a (re)connect: reconcile what we know with what Asterisk has."""
        try:
            channels = await self._ari.list_channels()
            bridges = await self._ari.list_bridges()
        except AriError as exc:
            log.warning("recovery_failed", error=str(exc))
            return
        present = {c.id for c in channels}
        for live in list(self._calls.values()):
            call = live.call
            if call.call_id not in present:
                self._deliver(live, CallerGone())
            elif call.state.leg_id and call.state.leg_id not in present:
                self._deliver(live, LegFailed(call.state.leg_id, LegFailure.GONE))
        in_bridge = {ch: b for b in bridges for ch in b.channels}
        for channel in channels:
            if channel.id in self._by_channel or channel.id in self._adopted:
                continue
            entry = wire.snapshot_entry(
                self._ari.app, channel.dialplan.app_name, channel.dialplan.app_data
            )
            if entry is None and wire.is_leg(channel.id):
                # A leg a previous engine was still dialing (not yet in the
                # application): nobody will bridge it, stop that phone ringing.
                log.info("recovery_hangup_leg", channel=channel.id)
                await self._quietly(self._ari.hangup(channel.id, "normal"))
                continue
            if entry is None:
                continue  # not in our application (e.g. waiting in the queue)
            bridge = in_bridge.get(channel.id)
            if bridge is not None and len(bridge.channels) >= 2:
                self._adopt(bridge.id, bridge.channels)
                continue
            match entry:
                case wire.LegEntry():
                    log.info("recovery_hangup_leg", channel=channel.id)
                    await self._quietly(self._ari.hangup(channel.id, "normal"))
                case wire.QueueReturn(status):
                    await self._resume(channel, queue_status=status)
                case wire.Inbound(did):
                    # Touched by an engine before (it set COVERAGE_TRIED): resume
                    # at that step. Never touched (it arrived while we were away,
                    # or during this very recovery): an ordinary new call.
                    if await self._variable(channel.id, wire.TRIED):
                        await self._resume(channel, queue_status=None)
                    else:
                        await self._start_call(channel, did)
                case wire.UnknownEntry():
                    await self._fallback(channel.id, reason="unknown channel in the application")

    def _adopt(self, bridge_id: str, channels: tuple[str, ...]) -> None:
        log.info("recovery_adopt_bridge", bridge=bridge_id, channels=len(channels))
        self._adopted_bridges[bridge_id] = channels
        for channel in channels:
            self._adopted[channel] = bridge_id

    async def _end_adopted(self, channel_id: str) -> None:
        """One side of an adopted conversation hung up: end the other side too."""
        bridge_id = self._adopted.pop(channel_id)
        others = self._adopted_bridges.pop(bridge_id, ())
        for other in others:
            if other != channel_id:
                self._adopted.pop(other, None)
                await self._quietly(self._ari.hangup(other, "normal"))
        await self._quietly(self._ari.destroy_bridge(bridge_id))

    # ------------------------------------------------------------ helpers

    async def _fallback(self, channel_id: str, *, reason: str) -> None:
        """Hand a caller to the dialplan's safety net (queue, then a fixed on-call number)."""
        log.warning("dialplan_fallback", call_id=channel_id, reason=reason)
        await self._quietly(
            self._ari.continue_in_dialplan(
                channel_id, context=self._settings.fallback_context, extension="s", priority=1
            )
        )

    async def _variable(self, channel_id: str, name: str) -> str:
        try:
            return await self._ari.get_variable(channel_id, name) or ""
        except AriError:
            return ""

    async def _quietly(self, request: Any) -> None:
        """Await a best-effort request: gone is fine, other failures are logged."""
        try:
            await request
        except ResourceGone:
            pass
        except AriError as exc:
            log.warning("ari_request_failed", error=str(exc))
