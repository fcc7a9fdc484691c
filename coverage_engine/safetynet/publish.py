"""Keeps the PBX's safety-net table current: at every connect, reload and handoff.

Every engine on the PBX publishes; with the same configuration they write
the same version, so two engines never fight. A failed publish is retried
with backoff; the table already in AstDB stays in force meanwhile (it
reaches a week ahead, so a few failed minutes change nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog

from coverage_engine.ari import AriError
from coverage_engine.ari.astdb import AstDb, AstDbError, DeleteTree, Get, Keys, Put
from coverage_engine.config import CoverageConfig
from coverage_engine.safetynet.table import (
    CURRENT_KEY,
    GENERIC_PROMPT,
    HORIZON,
    TABLE_FAMILY,
    SafetyNetTable,
    astdb_entries,
    practice_prompt,
    safety_net_table,
)

log = structlog.get_logger("coverage_engine.safetynet")

#: Published again at least this often, even when nothing changed (an admin
#: may have cleared AstDB, or restored an old copy of it).
REFRESH = timedelta(hours=6)
_RETRY_FIRST, _RETRY_MAX = 2.0, 60.0


class SoundCheck:
    """Which practices' press-1 prompts the PBX has (asked once per prompt, then remembered)."""

    def __init__(self, exists: Callable[[str], Awaitable[bool]]) -> None:
        self._exists = exists
        self._known: dict[str, bool] = {}

    async def prompts(self, config: CoverageConfig) -> dict[str, str]:
        """Each practice's prompt: its own if the PBX has it, else the generic one."""
        chosen: dict[str, str] = {}
        for practice_id in config.practices:
            own = practice_prompt(practice_id)
            if own not in self._known:
                try:
                    self._known[own] = await self._exists(own)
                except AriError:  # the PBX did not answer: ask again next time
                    return {p: practice_prompt(p) for p in config.practices}
            chosen[practice_id] = own if self._known[own] else GENERIC_PROMPT
        return chosen


class SafetyNetPublisher:
    """Writes `safety_net_table` into AstDB whenever it may have changed."""

    def __init__(
        self,
        astdb: AstDb,
        config: Callable[[], CoverageConfig],
        *,
        now: Callable[[], datetime],
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        prompts: Callable[[CoverageConfig], Awaitable[dict[str, str]]] | None = None,
    ) -> None:
        self._astdb = astdb
        self._config = config
        self._now = now
        self._wall = wall
        self._prompts = prompts
        self._wake = asyncio.Event()
        self._published: str | None = None
        self._published_config: CoverageConfig | None = None
        self._published_at: datetime | None = None
        self._table: SafetyNetTable | None = None

    @property
    def version(self) -> str | None:
        """The version this engine last published, if any."""
        return self._published

    @property
    def table(self) -> SafetyNetTable | None:
        """The table this engine last published, if any."""
        return self._table

    def nudge(self) -> None:
        """Publish again soon (the ARI link came up: the PBX may have restarted)."""
        self._published = None
        self._wake.set()

    def _due(self, config: CoverageConfig, now: datetime) -> bool:
        if self._published is None or self._table is None or self._published_at is None:
            return True
        if config is not self._published_config:
            return True  # a reload (or a swap written into the file)
        if now - self._published_at >= REFRESH:
            return True
        # A handoff happened since: move the table's window on.
        return any(len(p.spans) > 1 and p.spans[0].until <= now for p in self._table.practices)

    async def publish(self) -> str:
        """Compute the table for now and write it; returns its version (raises AstDbError)."""
        config = self._config()
        now = self._now()
        prompts = await self._prompts(config) if self._prompts is not None else {}
        table = safety_net_table(
            config,
            now,
            prompt_for=lambda p: prompts.get(p, practice_prompt(p)),
            horizon=_aligned_horizon(now),
        )
        # The engine's clock may run apart from the PBX's (tests and demos
        # start it at another instant): span ends go out in the PBX's time.
        offset = round((now - self._wall()).total_seconds())
        version, entries = astdb_entries(table, epoch=lambda instant: instant.timestamp() - offset)
        ops: list[Put | DeleteTree | Get | Keys] = [Put(k, v) for k, v in entries.items()]
        ops.append(Put(CURRENT_KEY, version))  # last: the switch to the new table
        await self._astdb.run(ops)
        await self._clean(version)
        self._published, self._published_config = version, config
        self._published_at, self._table = now, table
        log.info(
            "safety_net.published",
            version=version,
            oncall={
                p.practice_id: [
                    p.spans[0].primary.doctor_id if p.spans[0].primary else None,
                    p.spans[0].backup.doctor_id if p.spans[0].backup else None,
                ]
                for p in table.practices
            },
            spans=sum(len(p.spans) for p in table.practices),
        )
        return version

    async def _clean(self, version: str) -> None:
        """Remove tables no longer in force (another engine's newer one is kept)."""
        keys, current = await self._astdb.run([Keys(TABLE_FAMILY), Get(CURRENT_KEY)])
        stale = [v for v in (keys or "").split(",") if v and v not in (version, current)]
        if stale:
            await self._astdb.run([DeleteTree(f"{TABLE_FAMILY}/{v}") for v in stale])

    async def run(self) -> None:
        """Publish whenever due, for ever (a task of the running engine)."""
        retry = _RETRY_FIRST
        while True:
            config, now = self._config(), self._now()
            wait = 2.0
            if self._due(config, now):
                try:
                    await self.publish()
                    retry = _RETRY_FIRST
                except AstDbError as exc:
                    log.warning("safety_net.publish_failed", error=str(exc), retry_in=retry)
                    wait, retry = retry, min(retry * 2, _RETRY_MAX)
                except Exception:  # a bug here must never stop the engine carrying calls
                    log.exception("safety_net.publish_failed", retry_in=retry)
                    wait, retry = retry, min(retry * 2, _RETRY_MAX)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)


def _aligned_horizon(now: datetime) -> timedelta:
    """`HORIZON`, stretched to the next UTC midnight: the table stays the same all day."""
    end = (now + HORIZON).astimezone(UTC)
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight - now
