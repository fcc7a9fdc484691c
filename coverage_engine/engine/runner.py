"""One call in progress: its own task, inbox and timers, running the call flow's commands.

    inbox ──> Call.handle(event) ──> commands ──> timers / journey records (here)
                    ^                          └─> ARI requests (`executor.execute`)
                    └──── CommandFailed ───────────┘   (fed back in the same turn)

Each call has its own task, so a slow or failing call never holds up another.
An exception inside one call (a bug) is caught here: the caller is handed to
the dialplan's safety net (the operator queue, then a fixed on-call number),
the journey ends as an engine error, and no other call notices.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import structlog

from coverage_engine.ari import AriOperations
from coverage_engine.callflow import Call
from coverage_engine.callflow import commands as cmd
from coverage_engine.callflow.events import Event, TimerFired
from coverage_engine.engine.executor import execute, quietly
from coverage_engine.engine.registry import Registry
from coverage_engine.journey import Decided, Ended, JourneyEvent, Outcome, Received
from coverage_engine.journey.sink import JourneySink
from coverage_engine.logs import mask_caller

log = structlog.get_logger("coverage_engine.engine")


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Runs a function after a delay; the event loop in production, a manual one in tests."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...


class LoopScheduler:
    """The production scheduler: `loop.call_later` on the running loop."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)


class LetGo(Exception):
    """This engine may no longer act on its calls (its lease ran out): stop, touch nothing."""


class CallRunner:
    """Carries one call from its first event to its end (or to the safety net)."""

    def __init__(
        self,
        call: Call,
        *,
        ari: AriOperations,
        registry: Registry,
        scheduler: Scheduler,
        sink: JourneySink,
        now: Callable[[], datetime],
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        self.call = call
        # Asked before every command: False once this engine may have been
        # declared dead and its calls taken over by another (`engine.peers`).
        self._may_act = may_act
        self._ari = ari
        self._registry = registry
        self._scheduler = scheduler
        self._sink = sink
        self._now = now
        self._inbox: asyncio.Queue[Event] = asyncio.Queue()
        self._timers: dict[str, Cancellable] = {}
        self._task: asyncio.Task[None] | None = None

    def start(
        self, first: Event, *, practice: str, on_done: Callable[[CallRunner], None]
    ) -> None:
        """Begin the call with its first event, on a task of its own; `on_done` when it ends."""
        self._registry.add_call(self.call)
        self._inbox.put_nowait(first)
        self._task = asyncio.create_task(
            self._run(practice, on_done), name=f"call-{self.call.call_id}"
        )

    def deliver(self, event: Event) -> None:
        """Queue an event for the call (never blocks)."""
        self._inbox.put_nowait(event)

    async def stop(self) -> None:
        """Stop the task and timers, leaving the call itself connected in Asterisk."""
        self._cancel_timers()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self, practice: str, on_done: Callable[[CallRunner], None]) -> None:
        call = self.call
        with structlog.contextvars.bound_contextvars(call_id=call.call_id, practice=practice):
            try:
                while not call.finished:
                    await self._apply(await self._inbox.get())
            except asyncio.CancelledError:
                raise
            except LetGo:
                # Another engine may hold the call now: leave it exactly as it is.
                log.warning("call_let_go", call_id=call.call_id)
            except Exception:
                # The caller first, the log line second: even a logging
                # failure must not keep them from a person.
                await self._rescue()
                log.exception("call_failed", call_id=call.call_id)
            finally:
                self._cancel_timers()
                self._registry.remove_call(call)
                on_done(self)

    async def _apply(self, event: Event) -> None:
        """Feed the event, carry out the commands, feed failures back in the same turn."""
        pending: list[Event] = [event]
        if not self._may_act():
            raise LetGo
        while pending:
            for command in self.call.handle(pending.pop(0)):
                failure = await self._carry_out(command)
                if failure is not None:
                    pending.append(failure)

    async def _carry_out(self, command: cmd.Command) -> Event | None:
        if not self._may_act():
            raise LetGo
        match command:
            case cmd.StartTimer(name, seconds):
                self._start_timer(name, seconds)
            case cmd.CancelTimer(name):
                timer = self._timers.pop(name, None)
                if timer is not None:
                    timer.cancel()
            case cmd.Record(event):
                self._record(event)
            case _:
                # Known before Asterisk is asked, so no event about what the
                # request makes can arrive for something we do not recognise.
                if isinstance(command, cmd.CreateLeg):
                    self._registry.add_channel(self.call.call_id, command.leg_id)
                elif isinstance(command, cmd.Play):
                    self._registry.add_playback(self.call.call_id, command.playback_id)
                return await execute(self._ari, command, call_id=self.call.call_id)
        return None

    async def _rescue(self) -> None:
        """After a bug in the call: free its legs and bridge, give the caller to the safety net."""
        call = self.call
        for leg in self._registry.legs_of(call.call_id):
            await quietly(self._ari.hangup(leg, "normal"))
        if call.state.bridge_id:
            await quietly(self._ari.destroy_bridge(call.state.bridge_id))
        await quietly(
            self._ari.continue_in_dialplan(
                call.call_id, context=call.settings.fallback_context, extension="s"
            )
        )
        self._record(Ended(Outcome.ENGINE_ERROR, reason="engine error"))

    def _start_timer(self, name: str, seconds: float) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            if self._timers.pop(name, None) is not None:
                self._inbox.put_nowait(TimerFired(name))

        self._timers[name] = self._scheduler.call_later(seconds, fire)

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _record(self, event: JourneyEvent) -> None:
        call_id = self.call.call_id
        # Every journey event is also a log line ("journey"): what an admin
        # reads in the journal, and what the demo tells its story from.
        log.info("journey", call_id=call_id, journey_event=event.name, **log_fields(event))
        try:
            self._sink.record(call_id, self._now(), event)
        except Exception:
            # A record that cannot be written must never stop the call itself.
            log.exception("journey_record_failed", call_id=call_id, journey_event=event.name)


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
