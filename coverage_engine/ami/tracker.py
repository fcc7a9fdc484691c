"""Keeps a `Presence` current from an `Ami`'s notices: the thin I/O shell of the fold.

One long-running coroutine (`run`), meant to live in the engine's task group
next to the ARI event loop. Everything it decides is in `presence.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from coverage_engine.ami.client import (
    Ami,
    AmiConnected,
    AmiDisconnected,
    AmiError,
    AmiMessage,
    AmiNotice,
)
from coverage_engine.ami.presence import Presence, apply, disconnected, snapshot

log = structlog.get_logger("coverage_engine.ami")


class PresenceTracker:
    """Folds AMI notices into `presence`; resyncs from QueueStatus on every login."""

    def __init__(self, ami: Ami, *, resync_retry_seconds: float = 2.0) -> None:
        self._ami = ami
        self._retry = resync_retry_seconds
        self.presence = Presence()
        self._synced = asyncio.Event()
        self._changed = asyncio.Condition()

    async def wait_synced(self) -> None:
        """Return once a snapshot is in (callers bound the wait with `asyncio.timeout`)."""
        await self._synced.wait()

    async def wait_until(self, predicate: Callable[[Presence], bool]) -> Presence:
        """Return the first presence (current or future) for which `predicate` holds."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self.presence))
            return self.presence

    async def run(self) -> None:
        """Consume notices until cancelled."""
        while True:
            notice = await self._ami.notices.get()
            await self._handle(notice)
            async with self._changed:
                self._changed.notify_all()

    async def _handle(self, notice: AmiNotice) -> None:
        if isinstance(notice, AmiConnected):
            await self._resync()
        elif isinstance(notice, AmiDisconnected):
            # Events are being missed from now on: say "unknown", not "zero".
            self.presence = disconnected(self.presence)
            self._synced.clear()
            log.warning("ami.disconnected", message="operator presence unknown until reconnected")
        elif isinstance(notice, AmiMessage):
            self.presence = apply(self.presence, notice.headers)

    async def _resync(self) -> None:
        # Events keep arriving on the queue while QueueStatus is in flight; they
        # are applied after the snapshot. Each is a full member record or an
        # idempotent caller join/leave, so replaying one the snapshot already
        # reflects changes nothing.
        while True:
            try:
                events = await self._ami.queue_status()
            except AmiError as exc:
                log.warning("ami.queue_status_failed", error=str(exc), retry_in_s=self._retry)
                await asyncio.sleep(self._retry)
                continue
            self.presence = snapshot(events)
            self._synced.set()
            log.info(
                "ami.presence_synced",
                queues=sorted(self.presence.queues),
                members=len(self.presence.members),
            )
            return
