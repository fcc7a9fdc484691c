"""The engine: ARI events in, calls carried, in three parts and a coordinator.

    ARI event stream ──> translate (pure) ──> actions ──> Engine (this coordinator)
                                                            │  Deliver ─> CallRunner (per call:
    (re)connect ──> list channels/bridges ──> reconcile ────┘            inbox, timers, executor)
                                              (pure)         StartCall / ResumeCall ─> route, spawn

`translate` (ARI item -> actions) and `reconcile` (what Asterisk has vs what
we know -> actions) decide; `CallRunner` runs one call; `Engine` only does
the I/O they ask for: routing a new caller, reading a channel's memory,
listing channels after a connect, the few requests that belong to no call.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

import structlog

from coverage_engine import wire
from coverage_engine.ari import (
    Ari,
    AriError,
    AriTimeout,
    Channel,
    ResourceConflict,
    ResourceGone,
    StreamItem,
)
from coverage_engine.callflow import Call, CallSettings
from coverage_engine.callflow.events import CallerEntered
from coverage_engine.clock import Clock
from coverage_engine.engine.actions import (
    Action,
    Adopt,
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
    WatchQueued,
)
from coverage_engine.engine.executor import quietly
from coverage_engine.engine.reconcile import needs_memory, reconcile
from coverage_engine.engine.registry import Registry
from coverage_engine.engine.runner import CallRunner, LoopScheduler, Scheduler
from coverage_engine.engine.translate import EVENTS, translate
from coverage_engine.journey import (
    Bridged,
    CallerHungUp,
    Ended,
    JourneyEvent,
    OperatorAnswered,
    Outcome,
)
from coverage_engine.journey.sink import JourneySink, NoSink
from coverage_engine.plan import Plan, Router, StepKind
from coverage_engine.presence import OperatorsCheck

log = structlog.get_logger("coverage_engine.engine")

#: How long a take-over keeps asking to mark a caller as its own (see `Engine._mark`).
MARK_WITHIN = 25.0

#: How long a caller found back from the queue is watched before it is carried
#: (see `Engine._really_ours`): the engine that claimed it says so in
#: COVERAGE_ENGINE within milliseconds; this is many times that, and short
#: next to the take-over it delays.
QUEUE_RETURN_SETTLE = 0.3

__all__ = ["Engine", "LoopScheduler", "Scheduler"]


class Engine:
    """Carries every call in the ARI application from its arrival to a person."""

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
        on_claim: Callable[[bool], None] | None = None,
        may_act: Callable[[], bool] | None = None,
        settled: Callable[[], bool] | None = None,
        operators_check: OperatorsCheck | None = None,
        queue_return_settle: float = QUEUE_RETURN_SETTLE,
    ) -> None:
        self._ari = ari
        self._queue_return_settle = queue_return_settle
        self._router = router
        self._clock = clock
        self._sink = sink or NoSink()
        # The application name goes on each caller (COVERAGE_ENGINE), see CallSettings.
        self._settings = replace(settings or CallSettings(), engine=ari.app)
        self._scheduler = scheduler or LoopScheduler()
        # Told True/False as the ARI event link comes up and goes down (metrics).
        self._on_link = on_link
        # Told whether each claim of a broadcast caller was won (metrics).
        self._on_claim = on_claim
        # False while this engine may not touch calls: its heartbeat lease ran
        # out and another engine may be taking them over (`engine.peers`).
        self._may_act = may_act or (lambda: True)
        # False after a start or a lapse until no survivor can be taking our
        # calls over (`engine.liveness`): until then a (re)connect leaves the
        # calls in our application alone, and the liveness task takes them on.
        self._settled = settled or self._may_act
        # Operator presence, asked by each call as an operators step is about
        # to start (None: presence unknown, no step is skipped).
        self._operators_check = operators_check
        self._registry = Registry()
        self._runners: dict[str, CallRunner] = {}
        self._claims: set[asyncio.Future[None]] = set()

    def set_router(self, router: Router) -> None:
        """Decide calls that arrive from now on with `router` (a reloaded config)."""
        self._router = router

    @property
    def calls_in_progress(self) -> int:
        """How many calls the engine is carrying."""
        return len(self._registry)

    def call(self, call_id: str) -> Call | None:
        """The call logic of a call in progress (tests and diagnostics)."""
        return self._registry.call(call_id)

    async def run(self) -> None:
        """Consume the ARI event stream until it ends or the task is cancelled."""
        try:
            async for item in self._ari.events():
                await self.dispatch(item)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop every call's task and timers, leaving the calls connected in Asterisk.

        A stopping engine must not hang anyone up: bridged calls go on, and
        the next engine (or the dialplan, when a queued caller comes back)
        takes the rest on.
        """
        runners = list(self._runners.values())
        self._runners.clear()
        claims = list(self._claims)
        for claim in claims:
            claim.cancel()
        await asyncio.gather(
            *(runner.stop() for runner in runners), *claims, return_exceptions=True
        )
        self._registry.clear()

    async def let_go(self) -> None:
        """Forget every call without touching any (the lease ran out: another may hold them)."""
        if self._runners:
            log.warning("engine_let_go", calls=len(self._runners))
        await self.close()

    async def reconcile_now(self) -> None:
        """Look at what Asterisk has and take on what is ours (after letting go, say)."""
        await self._reconcile()

    async def take_over(self, dead: str) -> int:
        """Carry on the calls of `dead`, an engine that stopped beating; how many were taken.

        Its callers are still in its application: they stay there (moving them
        would cut their music), this engine subscribes to each and resumes it
        from the memory on the channel, like a restarted engine; each says so
        in COVERAGE_ENGINE first, so `dead` leaves them alone should it come
        back. The doctors' phones it was ringing are hung up before any step
        rings again: never two people rung at once for one step.
        """
        app = self._ari.app
        before = self._registry.legs()
        try:
            theirs = frozenset(await self._ari.application_channel_ids(dead))
            if not theirs:
                return 0
            channels = await self._ari.list_channels()
            bridges = await self._ari.list_bridges()
            unread = needs_memory(app, channels, bridges, self._registry, theirs)
            read = await asyncio.gather(*map(self._memory, unread))
            memories = dict(zip(unread, read, strict=True))
        except AriError as exc:
            log.warning("takeover_failed", engine=dead, error=str(exc))
            return 0
        actions = [
            a
            for a in reconcile(
                app, channels, bridges, self._registry, memories, theirs, {dead}, before
            )
            if not isinstance(a, Deliver | LinkUp | LinkDown)
        ]
        hangups = [a for a in actions if isinstance(a, HangUpChannel)]
        others: list[Action] = [a for a in actions if not isinstance(a, HangUpChannel)]
        if not self._may_act():
            return 0
        ours = [channel_id for action in others for channel_id in _channels_of(action)]
        await asyncio.gather(*(quietly(self._ari.subscribe_channel(c)) for c in ours))
        # Each call says it is ours (the dead engine, back later, leaves it
        # alone). Not waited for before acting: Asterisk runs a channel's
        # requests in order, so a variable waits out the announcement the dead
        # engine started; the take-over is only over once they are all set.
        marks = [asyncio.ensure_future(self._mark(c)) for c in ours]
        # No wait for a caller back from the queue here: the dead engine
        # cannot be claiming anything.
        checks = self._queue_returns_last(others, {dead}, settle=0.0)
        try:
            for hangup in hangups:
                await self._perform(hangup)
            taken = 0
            for n, action in enumerate(others):
                if not self._may_act():
                    break
                if n in checks and not await checks[n]:
                    continue
                await self._perform(action)
                taken += isinstance(action, ResumeCall | StartCall)
            # The calls are carried on from here (what the take-over time measures).
            log.info("takeover", engine=dead, calls=taken, legs_hung_up=len(hangups))
        finally:
            await _dropped(checks)
            await asyncio.gather(*marks, return_exceptions=True)
        return taken

    async def dispatch(self, item: StreamItem) -> None:
        """Act on one item of the event stream."""
        for action in translate(self._registry, item):
            await self._perform(action)

    async def _perform(self, action: Action) -> None:
        match action:
            case Deliver(call_id, event):
                runner = self._runners.get(call_id)
                if runner is not None:
                    runner.deliver(event)
            case Claim(channel_id):
                # Not awaited here: the claim must go out within the broadcast's
                # window (0.5 s, then the safety net takes the caller) whatever
                # the events before it still wait for (a reconcile after a
                # reconnect, a slow request under load).
                claiming = asyncio.ensure_future(self._claim(channel_id))
                self._claims.add(claiming)
                claiming.add_done_callback(self._claims.discard)
            case StartCall(channel, did):
                await self._start(channel, did)
            case ResumeCall(channel, memory, queue_status):
                await self._resume(channel, memory, queue_status)
            case HangUpChannel(channel_id):
                log.info("recovery_hangup_leg", channel=channel_id)
                await quietly(self._ari.hangup(channel_id, "normal"))
            case Fallback(channel_id, reason):
                await self._fallback(channel_id, reason)
            case WatchQueued(channel_id):
                await quietly(self._ari.subscribe_channel(channel_id))
                self._registry.watch(channel_id)
            case OperatorTook(channel_id, member):
                self._registry.took(channel_id, member)
                self._record(channel_id, OperatorAnswered(member))
                self._record(channel_id, Bridged(StepKind.OPERATORS, member))
            case WatchedGone(channel_id):
                operator = self._registry.operator_of(channel_id)
                self._registry.unwatch(channel_id)
                if operator is not None:
                    self._record(channel_id, CallerHungUp())
                    self._record(channel_id, Ended(Outcome.ANSWERED_BY_OPERATOR, operator))
                # Not answered: the caller left the queue, or came back to an
                # engine (which carries the journey on); the sweep closes the rest.
            case Adopt(bridge_id, channel_ids):
                log.info("recovery_adopt_bridge", bridge=bridge_id, channels=len(channel_ids))
                self._registry.adopt(bridge_id, channel_ids)
            case EndAdopted(bridge_id, others):
                self._registry.end_adoption(bridge_id)
                for other in others:
                    await quietly(self._ari.hangup(other, "normal"))
                await quietly(self._ari.destroy_bridge(bridge_id))
            case LinkUp(attempt):
                log.info("ari_connected", attempt=attempt)
                if self._on_link is not None:
                    self._on_link(True)
                await self._filter_events()
                if self._settled():
                    # A reconnect: the calls are ours. (After a start or a lapse
                    # the liveness task does this, once no survivor can be
                    # taking them.)
                    await self._reconcile()
            case LinkDown(reason):
                log.warning("ari_disconnected", reason=reason, calls=len(self._registry))
                if self._on_link is not None:
                    self._on_link(False)

    async def _filter_events(self) -> None:
        """Ask Asterisk for the events the engine acts on only (about 1 in 6 of a call's).

        Without it (a refused filter) every event still comes and means what
        it meant: slower, never wrong.
        """
        try:
            await self._ari.filter_events(EVENTS)
        except AriError as exc:
            log.warning("ari_event_filter_failed", error=str(exc))

    async def _reconcile(self) -> None:
        """After a (re)connect: read what Asterisk has, and act on the difference."""
        app = self._ari.app
        # Calls go on while the snapshot is read: what began after it is not gone.
        before = self._registry.legs()
        try:
            channels = await self._ari.list_channels()
            bridges = await self._ari.list_bridges()
            claimed = frozenset(await self._ari.application_channel_ids())
            unread = needs_memory(app, channels, bridges, self._registry, claimed)
            read = await asyncio.gather(*map(self._memory, unread))
            memories = dict(zip(unread, read, strict=True))
        except AriError as exc:
            log.warning("recovery_failed", error=str(exc))
            return
        actions = reconcile(
            app, channels, bridges, self._registry, memories, claimed, known_before=before
        )
        checks = self._queue_returns_last(actions, settle=self._queue_return_settle)
        try:
            for n, action in enumerate(actions):
                if n in checks and not await checks[n]:
                    continue
                await self._perform(action)
        finally:
            await _dropped(checks)

    async def _mark(self, channel_id: str) -> None:
        """Say on a taken-over caller that this engine holds it, however long Asterisk waits.

        The request waits in Asterisk behind a playback the dead engine
        started (an announcement can outlast our request timeout): it is
        asked again until it is through, the caller is gone, or
        `MARK_WITHIN` has passed. The take-over is declared done after this.
        """
        give_up = asyncio.get_running_loop().time() + MARK_WITHIN
        while True:
            try:
                await self._ari.set_variable(channel_id, wire.ENGINE, self._ari.app)
                return
            except AriTimeout:
                if asyncio.get_running_loop().time() >= give_up:
                    log.warning("takeover_mark_failed", call_id=channel_id)
                    return
            except ResourceGone:
                return
            except AriError as exc:
                # A caller in no application (waiting in the queue) takes no
                # variable: it goes to whichever engine claims it back.
                log.debug("takeover_mark_refused", call_id=channel_id, error=str(exc))
                return

    def _queue_return(self, action: Action) -> ResumeCall | None:
        """`action` if it carries on a caller found back from the queue (see `_really_ours`)."""
        if not isinstance(action, ResumeCall):
            return None
        entry = wire.snapshot_entry(
            self._ari.app,
            action.channel.dialplan.app_name,
            action.channel.dialplan.app_data,
            claimed=True,
        )
        return action if isinstance(entry, wire.QueueReturn) else None

    def _queue_returns_last(
        self, actions: list[Action], owners: Collection[str] = frozenset(), *, settle: float
    ) -> dict[int, asyncio.Future[bool]]:
        """Move the callers back from the queue to the end of `actions`, and start
        `_really_ours` for each (by their new index): the other actions are
        carried on at once, each of these only once its own check is through."""
        # Parsed once per action: a stable sort on the flag keeps the rest in order.
        flagged = sorted(
            ((self._queue_return(a), a) for a in actions), key=lambda p: p[0] is not None
        )
        actions[:] = [action for _back, action in flagged]
        return {
            n: asyncio.ensure_future(self._really_ours(back.channel.id, owners, settle))
            for n, (back, _action) in enumerate(flagged)
            if back is not None
        }

    async def _really_ours(
        self, channel_id: str, owners: Collection[str] = frozenset(), settle: float = 0.0
    ) -> bool:
        """Whether a caller found back from the queue is this engine's to carry.

        Its snapshot says `StasisBroadcast` both while it waits to be claimed
        and once an engine claimed it, and an application's channel list
        keeps the channels it once followed (a dead engine's, a restarted
        one's); so a caller another engine just claimed, or one still
        waiting, looks like ours. A restarted engine watches it for `settle`
        first (`QUEUE_RETURN_SETTLE`): an engine that claimed it has named
        itself in COVERAGE_ENGINE by then (the snapshot's value can be older
        than the claim). Then Asterisk refuses a variable to a caller in no
        application (409): that one is the broadcast's to give, and the
        engine that claims it carries it. Setting COVERAGE_ENGINE is what a
        take-over does anyway.
        """
        await asyncio.sleep(settle)
        try:
            holder = await self._ari.get_variable(channel_id, wire.ENGINE) or ""
        except ResourceGone:
            return False
        except AriError as exc:
            log.debug("queue_return_check_failed", call_id=channel_id, error=str(exc))
            holder = ""
        if holder and holder != self._ari.app and holder not in owners:
            log.info("queue_return_held_elsewhere", call_id=channel_id, engine=holder)
            return False
        try:
            await self._ari.set_variable(channel_id, wire.ENGINE, self._ari.app)
        except ResourceConflict:
            log.info("queue_return_unclaimed", call_id=channel_id)
            return False
        except AriError as exc:
            log.debug("queue_return_check_failed", call_id=channel_id, error=str(exc))
        return True

    async def _claim(self, channel_id: str) -> None:
        """Ask for a broadcast caller; losing to another engine is normal, and quiet."""
        if not self._may_act():
            return  # not now: a healthy engine claims it, or the safety net takes it
        try:
            won = await self._ari.claim(channel_id)
        except AriError as exc:
            log.warning("claim_failed", call_id=channel_id, error=str(exc))
            return
        if self._on_claim is not None:
            self._on_claim(won)
        if not won:
            log.debug("claim_lost", call_id=channel_id)

    async def _memory(self, channel_id: str) -> CallMemory:
        """What an engine left on a channel, read variable by variable (no `channelvars`)."""
        values = await asyncio.gather(*(self._variable(channel_id, n) for n in wire.CALL_MEMORY))
        return CallMemory.from_variables(dict(zip(wire.CALL_MEMORY, values, strict=True)))

    async def _variable(self, channel_id: str, name: str) -> str:
        try:
            return await self._ari.get_variable(channel_id, name) or ""
        except AriError:
            return ""

    async def _start(self, channel: Channel, did: str) -> None:
        plan = self._route(channel, did)
        if plan is None:
            await self._fallback(channel.id, "routing failed")
            return
        entered = CallerEntered(plan, channel.caller.number, channel.caller.name, did)
        self._spawn(channel.id, None, plan, entered)

    async def _resume(
        self, channel: Channel, memory: CallMemory | None, queue_status: str | None
    ) -> None:
        """Take on a caller this engine has no memory of: the channel says where it was."""
        if memory is None:
            memory = await self._memory(channel.id)
        plan = self._route(channel, memory.did)
        if plan is None:
            await self._fallback(channel.id, "routing failed on resume")
            return
        log.info(
            "call_resumed",
            call_id=channel.id,
            tried=",".join(memory.tried) or None,
            queue_status=queue_status,
        )
        entered = CallerEntered(
            plan,
            channel.caller.number,
            channel.caller.name,
            memory.did,
            tried=memory.tried,
            queue_status=queue_status,
            resumed=True,
        )
        # A fresh id prefix: legs of the previous engine may still exist.
        prefix = wire.resumed_prefix(channel.id, secrets.token_hex(3))
        self._spawn(channel.id, prefix, plan, entered)

    def _route(self, channel: Channel, did: str) -> Plan | None:
        try:
            return self._router(self._clock.now(), did, channel.caller.number)
        except Exception:
            log.exception("routing_failed", call_id=channel.id, did=did)
            return None

    def _record(self, call_id: str, event: JourneyEvent) -> None:
        """A journey event of a call no runner carries (a watched queued caller)."""
        try:
            self._sink.record(call_id, self._clock.now(), event)
        except Exception:
            log.exception("journey_record_failed", call_id=call_id)

    def _spawn(self, call_id: str, prefix: str | None, plan: Plan, entered: CallerEntered) -> None:
        self._registry.unwatch(call_id)  # back from the queue: a call carries it again
        call = Call(
            call_id,
            id_prefix=prefix,
            settings=self._settings,
            operators_check=self._operators_check,
        )
        runner = CallRunner(
            call,
            ari=self._ari,
            registry=self._registry,
            scheduler=self._scheduler,
            sink=self._sink,
            now=self._clock.now,
            may_act=self._may_act,
        )
        self._runners[call_id] = runner
        runner.start(entered, practice=plan.practice_id, on_done=self._forget)

    def _forget(self, runner: CallRunner) -> None:
        if self._runners.get(runner.call.call_id) is runner:
            del self._runners[runner.call.call_id]

    async def _fallback(self, channel_id: str, reason: str) -> None:
        """Hand a caller to the dialplan's safety net (queue, then a fixed on-call number)."""
        log.warning("dialplan_fallback", call_id=channel_id, reason=reason)
        await quietly(
            self._ari.continue_in_dialplan(
                channel_id, context=self._settings.fallback_context, extension="s", priority=1
            )
        )


async def _dropped(checks: Mapping[int, asyncio.Future[bool]]) -> None:
    """Stop the checks still running (`Engine._queue_returns_last`) and wait for them to end."""
    for check in checks.values():
        check.cancel()
    await asyncio.gather(*checks.values(), return_exceptions=True)


def _channels_of(action: Action) -> tuple[str, ...]:
    """The channels a take-over action is about (to subscribe to before acting)."""
    match action:
        case ResumeCall(channel=channel) | StartCall(channel=channel):
            return (channel.id,)
        case Adopt(channel_ids=channel_ids):
            return channel_ids
    return ()
