"""The console's connection to the record file, used from the event loop through a thread.

SQLite calls block (an fsync per commit), so each runs in a worker thread;
one lock keeps the connection to one thread at a time. The engine's journey
writer has its own connection: WAL lets them work side by side, and a
`BEGIN IMMEDIATE` here queues behind the writer's commit for milliseconds at
most, never blocking a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from coverage_engine.records.handoffs import HandoffStore
from coverage_engine.records.location import (
    PostgresRecords,
    RecordsLocation,
    SqliteRecords,
    open_connection,
)
from coverage_engine.records.messages import MessageStore
from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import RecordStore
from coverage_engine.web.access import AccessEntry, AccessLog
from coverage_engine.web.accounts import Accounts

T = TypeVar("T")


class ConsoleDb:
    """The record file as the console uses it: accounts, messages, access log, journeys."""

    def __init__(self, conn: Connection, location: RecordsLocation | None = None) -> None:
        self._lock = threading.Lock()
        self._location = location
        self._use(conn)

    def _use(self, conn: Connection) -> None:
        self._conn = conn
        self.accounts = Accounts(conn)
        self.messages = MessageStore(conn)
        self.access = AccessLog(conn)
        self.records = RecordStore(conn)
        self.handoffs = HandoffStore(conn)

    @classmethod
    def open(cls, records: RecordsLocation | Path) -> ConsoleDb:
        """Open (creating and migrating it if needed) the records (blocking)."""
        location = SqliteRecords(records) if isinstance(records, Path) else records
        return cls(open_connection(location, create=True), location)

    def sync(self, work: Callable[[ConsoleDb], T]) -> T:
        """Run `work` with the connection held (blocking; for threads and the CLI)."""
        with self._lock:
            try:
                return work(self)
            except sqlite3.Error:
                # The database dropped our connection (a PostgreSQL restart):
                # this request fails, the next one gets a new connection.
                if isinstance(self._location, PostgresRecords):
                    with contextlib.suppress(Exception):
                        self._conn.close()
                    with contextlib.suppress(Exception):
                        self._use(open_connection(self._location))
                raise

    async def run(self, work: Callable[[ConsoleDb], T]) -> T:
        """Run `work` in a worker thread with the connection held."""
        return await asyncio.to_thread(self.sync, work)

    async def audit(self, *entries: AccessEntry) -> None:
        """Append to the access log, durably, before the response goes out."""
        await self.run(lambda db: db.access.write(*entries))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
