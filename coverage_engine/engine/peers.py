"""Which other engines on the PBX are alive, from their heartbeats (pure).

Every engine writes a counter into a dialplan global a few times a second
while it can act (`liveness.Heartbeat`); every engine reads the others'. An
engine whose counter has not moved for `dead_after` seconds, by the reader's
own monotonic clock (so the machines' clocks never have to agree), is dead:
a killed process, a frozen one (SIGSTOP, swapped out), one whose event link
stalled (it stops beating when it cannot hear Asterisk). Its calls are then
taken over by one survivor (`Engine.take_over`).

An engine only acts while its own last beat is younger than `fence_after`,
which is shorter than `dead_after`: by the time anyone may decide it is
dead, it has already stopped touching its calls (`Lease`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: Seconds between beats.
BEAT_EVERY = 0.4
#: An engine whose last successful beat is older than this stops acting on its calls.
FENCE_AFTER = 1.2
#: Another engine whose beat has not moved for this long is dead: take its calls over.
DEAD_AFTER = 2.0


@dataclass(slots=True)
class Lease:
    """This engine's right to act: renewed by each successful beat, lost by silence."""

    fence_after: float = FENCE_AFTER
    renewed_at: float | None = None

    def renew(self, now: float) -> None:
        """A beat was written at monotonic time `now`."""
        self.renewed_at = now

    def valid(self, now: float) -> bool:
        """Whether the engine may act at monotonic time `now`."""
        return self.renewed_at is not None and now - self.renewed_at < self.fence_after

    def lapsed(self, now: float) -> bool:
        """Whether a lease once held has run out (the engine must let go before beating again)."""
        return self.renewed_at is not None and not self.valid(now)


@dataclass(slots=True)
class _Seen:
    value: str
    since: float  # when the value was first seen as it is


@dataclass(slots=True)
class PeerTracker:
    """The other engines' beats as this engine saw them, and which of them are dead."""

    me: str
    dead_after: float = DEAD_AFTER
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _dead: set[str] = field(default_factory=set)

    def observe(self, app: str, beat: str, now: float) -> None:
        """`app`'s beat read at monotonic time `now` ("" when it has never beaten)."""
        if app == self.me:
            return
        seen = self._seen.get(app)
        if seen is None and not beat:
            return  # never beaten: not an engine (the paging service's application, say)
        if seen is None or seen.value != beat:
            self._seen[app] = _Seen(beat, now)
            self._dead.discard(app)  # beating again: alive (a restart, a thaw)

    def forget(self, apps: Iterable[str]) -> None:
        """Stop tracking engines the PBX no longer has."""
        for app in apps:
            self._seen.pop(app, None)
            self._dead.discard(app)

    def newly_dead(self, now: float) -> list[str]:
        """The engines found dead at `now` that were alive before (each is reported once)."""
        found = sorted(
            app
            for app, seen in self._seen.items()
            if app not in self._dead and now - seen.since >= self.dead_after
        )
        self._dead.update(found)
        return found

    def alive(self, now: float) -> list[str]:
        """The other engines beating now."""
        return sorted(a for a, s in self._seen.items() if now - s.since < self.dead_after)

    def last_beat(self, app: str) -> str:
        """The beat last read from `app` ("" if none)."""
        seen = self._seen.get(app)
        return seen.value if seen is not None else ""

    def silent_for(self, app: str, now: float) -> float | None:
        """Seconds since `app`'s beat last moved, or None if it is not tracked."""
        seen = self._seen.get(app)
        return None if seen is None else now - seen.since
