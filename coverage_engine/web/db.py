"""The console's connection to the record file, used from the event loop through a thread.

SQLite calls block (an fsync per commit), so each runs in a worker thread;
one lock keeps the connection to one thread at a time. The engine's journey
writer has its own connection: WAL lets them work side by side, and a
`BEGIN IMMEDIATE` here queues behind the writer's commit for milliseconds at
most, never blocking a call.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from coverage_engine.records.handoffs import HandoffStore
from coverage_engine.records.messages import MessageStore
from coverage_engine.records.sqlite import RecordStore, open_database
from coverage_engine.web.access import AccessEntry, AccessLog
from coverage_engine.web.accounts import Accounts

T = TypeVar("T")


class ConsoleDb:
    """The record file as the console uses it: accounts, messages, access log, journeys."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.accounts = Accounts(conn)
        self.messages = MessageStore(conn)
        self.access = AccessLog(conn)
        self.records = RecordStore(conn)
        self.handoffs = HandoffStore(conn)

    @classmethod
    def open(cls, path: Path) -> ConsoleDb:
        """Open (creating and migrating it if needed) the record file at `path` (blocking)."""
        return cls(open_database(path, create=True))

    def sync(self, work: Callable[[ConsoleDb], T]) -> T:
        """Run `work` with the connection held (blocking; for threads and the CLI)."""
        with self._lock:
            return work(self)

    async def run(self, work: Callable[[ConsoleDb], T]) -> T:
        """Run `work` in a worker thread with the connection held."""
        return await asyncio.to_thread(self.sync, work)

    async def audit(self, *entries: AccessEntry) -> None:
        """Append to the access log, durably, before the response goes out."""
        await self.run(lambda db: db.access.write(*entries))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
