"""Engines on one PBX watch each other: heartbeats in dialplan globals, take-over of the dead.

Every `BEAT_EVERY` seconds this engine writes a beat into its own dialplan
global (`beat_variable`), but only while its ARI event link is up: an engine
that cannot hear Asterisk must not look alive. A beat is
`<incarnation>.<count>`, unique to this process and this round, so what a
survivor saw can be named later. Each successful beat renews its `Lease`;
with the lease run out (a frozen process, a stalled link, Asterisk
unreachable) it lets go of its calls before anything else.

It also reads the other engines' beats (the applications the PBX lists
whose names start like ours). One silent for `DEAD_AFTER` seconds is dead:
this engine takes over its calls, after winning a short arbitration in a
global (`takeover_variable`) so that two survivors never both take the same
engine's calls. The claim names the beat the survivor judged dead, and it
says when the take-over is done (or given up: the beat moved after all).

After a start or a lapse the engine takes its own calls on again only when
no survivor can be taking them: it reads its beat as it was (the last one
anybody may have seen), beats anew, then reads its take-over global. A
survivor checks the beat once more after its arbitration and gives up if it
moved, so a claim naming the old beat that is not there yet never comes;
one that is there is waited out until it says done (at most
`TAKEN_OVER_WAIT`). Its calls are then the survivor's (it marked them in
COVERAGE_ENGINE) and the rest are this engine's again.

The rounds never wait for a take-over or a reconcile: those run as tasks of
their own, so that slow requests there cannot stop the beats (and lapse the
lease of the very engine doing the take-over).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import structlog

from coverage_engine import wire
from coverage_engine.ari import AriError
from coverage_engine.engine.peers import BEAT_EVERY, Lease, PeerTracker

log = structlog.get_logger("coverage_engine.engine")

#: How long a claim on our previous beat is waited out at most while its survivor
#: beats (its marks can wait out an announcement we had started: Asterisk runs a
#: channel's requests after its playback). A survivor that stops beating is not
#: waited for.
TAKEN_OVER_WAIT = 30.0
#: How long a take-over claim must stand unchallenged before acting on it.
ARBITRATION = 0.2
#: Suffixes of a claim: the take-over is over, or was given up (the engine is alive).
DONE, ALIVE = "done", "alive"


@runtime_checkable
class LivenessPort(Protocol):
    """What the liveness task needs from the ARI client."""

    @property
    def app(self) -> str: ...

    @property
    def is_connected(self) -> bool: ...

    async def get_global(self, name: str) -> str: ...

    async def set_global(self, name: str, value: str) -> None: ...

    async def application_names(self) -> list[str]: ...


class Carrier(Protocol):
    """What the liveness task asks of the engine."""

    async def let_go(self) -> None: ...

    async def reconcile_now(self) -> None: ...

    async def take_over(self, dead: str) -> int: ...


def _tag(app: str) -> str:
    return hashlib.sha256(app.encode()).hexdigest()[:8].upper()


def beat_variable(app: str) -> str:
    """The dialplan global an engine beats in (a plain name, whatever the application's)."""
    return f"COVERAGE_BEAT_{_tag(app)}"


def takeover_variable(dead: str) -> str:
    """The dialplan global survivors arbitrate the take-over of `dead` in."""
    return f"COVERAGE_TAKEOVER_{_tag(dead)}"


def claim_names(claim: str, beat: str) -> bool:
    """Whether a take-over claim (`<survivor>|<beat judged dead>[|<state>]`) is about `beat`."""
    parts = claim.split("|")
    return bool(beat) and len(parts) >= 2 and parts[1] == beat


def claim_over(claim: str) -> bool:
    """Whether a take-over claim says the take-over is done or was given up."""
    return claim.rsplit("|", 1)[-1] in (DONE, ALIVE) and claim.count("|") >= 2


class Own(Enum):
    """Where this engine stands with its own calls (after a start or a lapse)."""

    UNREAD = "unread"  # its beat as it was must be read before the first new beat
    CHECK = "check"  # beaten anew: look for a survivor's claim on the old beat
    WAIT = "wait"  # a survivor claimed them: wait until its take-over is over
    SETTLED = "settled"  # the calls in our application are ours


class Liveness:
    """Beats, watches the other engines, lets go and takes over (a task of the running engine)."""

    def __init__(
        self,
        ari: LivenessPort,
        engine: Carrier,
        *,
        clock: Callable[[], float] = time.monotonic,
        beat_every: float = BEAT_EVERY,
        on_takeover: Callable[[str, int], None] | None = None,
    ) -> None:
        self._ari = ari
        self._engine = engine
        self._clock = clock
        self._beat_every = beat_every
        self._on_takeover = on_takeover
        # Held from the start: nobody can have declared a process dead that
        # has only just begun (its first beat follows within a round). New
        # callers may be claimed at once; the calls already in our application
        # wait until `own` is settled.
        self.lease = Lease()
        self.lease.renew(clock())
        self.peers = PeerTracker(ari.app)
        self._incarnation = secrets.token_hex(4)
        self._count = 0
        self._written = ""  # our last beat that got through
        self._previous = ""  # our beat before this start or lapse (what a survivor saw)
        self.own = Own.UNREAD
        self._wait_until = 0.0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def may_act(self) -> bool:
        """Whether this engine may touch calls now (its lease is valid)."""
        return self.lease.valid(self._clock())

    def settled(self) -> bool:
        """Whether the calls in our application are ours to take on (no survivor may hold them)."""
        return self.own is Own.SETTLED and self.may_act()

    def link(self, up: bool) -> None:
        """The event link came up (beat at once: no claim waits for the next round) or down."""
        if up:
            self._wake.set()

    async def run(self) -> None:
        """Beat and watch until cancelled."""
        try:
            while True:
                started = self._clock()
                self._wake.clear()
                try:
                    await self.tick()
                except Exception:
                    # Beating must go on whatever one round met; a round that
                    # failed simply does not renew the lease.
                    log.exception("liveness_round_failed")
                wait = max(0.0, self._beat_every - (self._clock() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
        finally:
            await self._stop_work()

    async def tick(self) -> None:
        """One round: let go if the lease lapsed, beat, settle our own calls, watch the rest."""
        if self.lease.lapsed(self._clock()):
            # Before beating again: the calls may be someone else's by now.
            await self._stop_work()
            await self._engine.let_go()
            self.lease = Lease()
            self.own = Own.UNREAD
            log.warning("lease_lapsed")
        await self._beat()
        if self.own is not Own.SETTLED and self.may_act():
            await self._settle()
        await self._watch()

    async def settle_work(self) -> None:
        """Wait for the take-overs and reconciles in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("liveness_work_failed", task=task.get_name(), error=repr(task.exception()))

    async def _stop_work(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _beat(self) -> None:
        if not self._ari.is_connected:
            return  # deaf to Asterisk: do not look alive
        try:
            if self.own is Own.UNREAD:
                # The last beat anybody may have judged us dead by: our
                # previous process's, or ours before the lapse.
                self._previous = await self._ari.get_global(beat_variable(self._ari.app))
            self._count += 1
            beat = f"{self._incarnation}.{self._count}"
            await self._ari.set_global(beat_variable(self._ari.app), beat)
        except AriError as exc:
            log.debug("beat_failed", error=str(exc))
            return
        self._written = beat
        self.lease.renew(self._clock())
        if self.own is Own.UNREAD:
            self.own = Own.CHECK

    async def _settle(self) -> None:
        """After the first beat of a start or a lapse: are our calls still ours?"""
        if self.own is Own.UNREAD:
            return  # not beaten anew yet
        try:
            claim = await self._ari.get_global(takeover_variable(self._ari.app))
        except AriError as exc:
            log.debug("settle_failed", error=str(exc))
            return
        if self.own is Own.CHECK:
            if claim_names(claim, self._previous) and not claim_over(claim):
                self.own = Own.WAIT
                self._wait_until = self._clock() + TAKEN_OVER_WAIT
                log.warning("own_calls_being_taken_over", by=claim.split("|")[0])
                return
        elif (
            not claim_over(claim)
            and self._clock() < self._wait_until
            and not self._claimant_dead(claim)
        ):
            return  # a survivor is still taking them over
        self.own = Own.SETTLED
        self._spawn(self._engine.reconcile_now(), "reconcile")

    def _claimant_dead(self, claim: str) -> bool:
        """Whether the survivor that made `claim` (`<app>:<beat>|...`) has stopped beating."""
        claimant = claim.split("|", 1)[0].rsplit(":", 1)[0]
        silent = self.peers.silent_for(claimant, self._clock())
        return silent is not None and silent >= self.peers.dead_after

    async def _watch(self) -> None:
        if not self.may_act():
            return
        try:
            apps = [
                a
                for a in await self._ari.application_names()
                if a.startswith(wire.APP_PREFIX) and a != self._ari.app
            ]
            for app in apps:
                beat = await self._ari.get_global(beat_variable(app))
                self.peers.observe(app, beat, self._clock())
        except AriError as exc:
            log.debug("watch_failed", error=str(exc))
            return
        for dead in self.peers.newly_dead(self._clock()):
            self._spawn(self._take_over(dead, self.peers.last_beat(dead)), f"takeover {dead}")

    async def _take_over(self, dead: str, beat: str) -> None:
        """Win the right to take `dead`'s calls (another survivor may try too), then take them."""
        claim = f"{self._ari.app}:{self._written}|{beat}"
        name = takeover_variable(dead)
        try:
            await self._ari.set_global(name, claim)
            await asyncio.sleep(ARBITRATION)
            if await self._ari.get_global(name) != claim:
                log.info("takeover_left_to_another", engine=dead)
                return
            if await self._ari.get_global(beat_variable(dead)) != beat:
                # It beat again meanwhile: alive after all (and maybe waiting on us).
                await self._ari.set_global(name, f"{claim}|{ALIVE}")
                log.info("takeover_given_up", engine=dead, reason="it beats again")
                return
        except AriError as exc:
            log.warning("takeover_failed", engine=dead, error=str(exc))
            return
        silent = self.peers.silent_for(dead, self._clock())
        log.warning("engine_dead", engine=dead, silent_s=round(silent or 0.0, 2))
        try:
            taken = await self._engine.take_over(dead)
        finally:
            # Briefly: a lapse waits for this before letting go.
            with contextlib.suppress(AriError, TimeoutError):
                await asyncio.wait_for(self._ari.set_global(name, f"{claim}|{DONE}"), 1.0)
        if self._on_takeover is not None:
            self._on_takeover(dead, taken)
