"""Engines on one PBX watch each other: heartbeats in dialplan globals, take-over of the dead.

Every `BEAT_EVERY` seconds this engine writes a counter into its own
dialplan global (`beat_variable`), but only while its ARI event link is up:
an engine that cannot hear Asterisk must not look alive. Each successful
beat renews its `Lease`; with the lease run out (a frozen process, a
stalled link, Asterisk unreachable) it lets go of its calls before anything
else, and only takes its own calls on again once another engine has had
time to take them over (`DEAD_AFTER` and a margin).

It also reads the other engines' beats (the applications the PBX lists
whose names start like ours). One silent for `DEAD_AFTER` seconds is dead:
this engine takes over its calls, after winning a short arbitration in a
global so that two survivors never both take the same engine's calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import structlog

from coverage_engine import wire
from coverage_engine.ari import AriError
from coverage_engine.engine.peers import BEAT_EVERY, DEAD_AFTER, Lease, PeerTracker

log = structlog.get_logger("coverage_engine.engine")

#: After starting or letting go, wait this long before taking our own calls on
#: (again): another engine may be taking them over meanwhile (it marks them as
#: its own, and gives up if our beat moves again).
RESUME_AFTER_LAPSE = DEAD_AFTER + 1.0
#: How long a take-over claim must stand unchallenged before acting on it.
ARBITRATION = 0.2


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
        # has only just begun (its first beat follows within a round).
        self.lease = Lease()
        self.lease.renew(clock())
        self.peers = PeerTracker(ari.app)
        self._count = 0
        self._wake = asyncio.Event()
        # When to take our own calls on: not at once after a start or a lapse,
        # since a survivor may be taking them over (it marks them as its own).
        self._resume_at: float | None = clock() + RESUME_AFTER_LAPSE

    def may_act(self) -> bool:
        """Whether this engine may touch calls now (its lease is valid)."""
        return self.lease.valid(self._clock())

    def link(self, up: bool) -> None:
        """The event link came up (beat at once: no claim waits for the next round) or down."""
        if up:
            self._wake.set()

    async def run(self) -> None:
        """Beat and watch until cancelled."""
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

    async def tick(self) -> None:
        """One round: let go if the lease lapsed, beat, resume our calls if due, watch the rest."""
        if self.lease.lapsed(self._clock()):
            # Before beating again: the calls may be someone else's by now.
            await self._engine.let_go()
            self.lease = Lease()
            self._resume_at = self._clock() + RESUME_AFTER_LAPSE
            log.warning("lease_lapsed", resume_in=RESUME_AFTER_LAPSE)
        await self._beat()
        if self._resume_at is not None and self._clock() >= self._resume_at and self.may_act():
            self._resume_at = None
            await self._engine.reconcile_now()
        await self._watch()

    async def _beat(self) -> None:
        if not self._ari.is_connected:
            return  # deaf to Asterisk: do not look alive
        self._count += 1
        try:
            await self._ari.set_global(beat_variable(self._ari.app), str(self._count))
        except AriError as exc:
            log.debug("beat_failed", error=str(exc))
            return
        self.lease.renew(self._clock())

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
            await self._take_over(dead)

    async def _take_over(self, dead: str) -> None:
        """Win the right to take `dead`'s calls (another survivor may try too), then take them."""
        me = f"{self._ari.app}:{self._count}"
        name = takeover_variable(dead)
        try:
            await self._ari.set_global(name, me)
            await asyncio.sleep(ARBITRATION)
            if await self._ari.get_global(name) != me:
                log.info("takeover_left_to_another", engine=dead)
                return
            if await self._ari.get_global(beat_variable(dead)) != self.peers.last_beat(dead):
                return  # it beat again meanwhile: alive after all
        except AriError as exc:
            log.warning("takeover_failed", engine=dead, error=str(exc))
            return
        silent = self.peers.silent_for(dead, self._clock())
        log.warning("engine_dead", engine=dead, silent_s=round(silent or 0.0, 2))
        taken = await self._engine.take_over(dead)
        if self._on_takeover is not None:
            self._on_takeover(dead, taken)
