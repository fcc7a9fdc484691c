"""Retention: calls older than `records.keep_days` are deleted once a day, and audited.

The engine (and the FastAGI service, which may be the only writer on a
FreePBX system) runs `keep_records` beside its calls. Each run is one
`RecordStore.purge` on its own connection, in a worker thread: secure delete,
the log emptied, an `audit` row naming the policy. The file is not vacuumed
here (that would make the engine's own writes wait); `calls purge` does that.
The records may be a SQLite file or the PostgreSQL database several engines
share; on PostgreSQL each engine's run deletes what is due, and a second run
the same day finds nothing left to delete.
A run that fails is logged and tried again at the next one: retention never
stops the calls.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from coverage_engine.records.location import RecordsLocation, open_store
from coverage_engine.records.sqlite import StoreError

log = structlog.get_logger(__name__)

#: How often the retention policy runs (it also runs once at start).
EVERY = timedelta(days=1)


def purge_expired(records: RecordsLocation, keep_days: int, now: datetime) -> int:
    """Delete the calls started more than `keep_days` before `now`; return how many."""
    with open_store(records) as store:
        return store.purge(
            now - timedelta(days=keep_days),
            now=now,
            by=f"retention: records.keep_days = {keep_days}",
        )


async def keep_records(
    records: RecordsLocation,
    keep_days: Callable[[], int | None],
    now: Callable[[], datetime],
    *,
    every: timedelta = EVERY,
) -> None:
    """Apply `keep_days()` (read each time: a reload may change it) now and every `every`."""
    while True:
        days = keep_days()
        if days is not None:
            try:
                removed = await asyncio.to_thread(purge_expired, records, days, now())
            except (StoreError, sqlite3.Error, OSError) as exc:
                log.error("records.retention_failed", error=str(exc), keep_days=days)
            else:
                log.info("records.retention", removed_journeys=removed, keep_days=days)
        await asyncio.sleep(every.total_seconds())
