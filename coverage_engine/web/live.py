"""The live board's source: journey events read back from the record file as they land.

Why from the record file and not from the engine's memory: every engine
sharing the store writes its calls' events there, so a console reading them
shows every call, whichever engine carries it, and a console restarted in the
middle of the night rebuilds the board from the open journeys. Events are
committed within milliseconds of happening; reading new ones by `events.id`
every 200 ms keeps the board well under a second behind, at the cost of one
indexed query per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from coverage_engine.journey import (
    Ended,
    EngineRestarted,
    HandoffEvent,
    JourneyKind,
    MessageAcknowledged,
    MessageEvent,
    PageEvent,
    Received,
    Stamped,
    parse_event,
)
from coverage_engine.records.handoffs import HandoffCheck, HandoffStore
from coverage_engine.records.location import RecordsLocation, SqliteRecords, open_connection
from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import _dt, _ts
from coverage_engine.web.board import LiveCall, Paging, start

log = structlog.get_logger("coverage_engine.web")

# An open journey older than this is a leftover (its engine died and none has
# recovered it yet), not a caller still on the line.
STALE_AFTER = timedelta(hours=12)
# Paging of a message older than this is no longer followed on the board.
PAGING_WINDOW = timedelta(days=2)
# Unconfirmed handoffs are read from the store when a handoff event lands, and at
# least this often (a doctor's turn ends, and its alert with it, without an event).
HANDOFFS_REFRESH = 5.0


class LiveSource:
    """Folds new journey events into the calls in progress; wakes waiters on change."""

    def __init__(
        self,
        records: RecordsLocation | Path,
        now: Callable[[], datetime],
        *,
        poll_seconds: float = 0.2,
    ) -> None:
        self._records = SqliteRecords(records) if isinstance(records, Path) else records
        self._now = now
        self._poll_seconds = poll_seconds
        self._conn: Connection | None = None
        self._last_id = 0
        self.calls: dict[str, LiveCall] = {}
        # The paging of urgent messages (calls long ended): the board's alerts.
        self.paging: dict[str, Paging] = {}
        # Doctors coming on call who did not confirm: the board's other alerts.
        self.handoffs: list[HandoffCheck] = []
        self._handoffs_read_at = -HANDOFFS_REFRESH
        self.version = 0
        self._changed = asyncio.Condition()
        self._lock = threading.Lock()  # the connection, between poll threads and closing

    async def run(self) -> None:
        """Load the open journeys, then follow new events until cancelled."""
        try:
            while True:
                try:
                    changed = await asyncio.to_thread(self._poll)
                except sqlite3.Error as exc:
                    log.warning("console.board_read_failed", error=str(exc))
                    changed = False
                    # A database that restarted closed our connection: the
                    # next poll opens a new one (and reloads the open calls).
                    await asyncio.to_thread(self._drop_connection)
                if changed:
                    async with self._changed:
                        self.version += 1
                        self._changed.notify_all()
                await asyncio.sleep(self._poll_seconds)
        finally:
            # A cancelled `to_thread` leaves its thread running: close only once
            # the poll in flight is done with the connection.
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    async def wait_newer(self, version: int, *, within: float) -> int:
        """The board version once it is newer than `version` (or after `within` seconds)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version != version), within
                )
            return self.version

    # -- in the worker thread -------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = open_connection(self._records, create=True)
            self._load_open()
        return self._conn

    def _load_open(self) -> None:
        conn = self._conn
        assert conn is not None
        (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        cutoff = _ts(self._now() - STALE_AFTER)
        rows = conn.execute(
            "SELECT call_id, caller_number, caller_name, did, started_at FROM journeys "
            "WHERE outcome IS NULL AND started_at >= ? AND kind = ?",
            (cutoff, JourneyKind.CALL.value),
        ).fetchall()
        for call_id, number, name, did, started in rows:
            call = start(
                call_id, caller_number=number, caller_name=name, did=did, started_at=_dt(started)
            )
            for at, kind, details in conn.execute(
                "SELECT at, kind, details FROM events WHERE call_id = ? AND id <= ? ORDER BY id",
                (call_id, last),
            ):
                call = call.apply(_event(at, kind, details))
            self.calls[call_id] = call
        since = _ts(self._now() - PAGING_WINDOW)
        for call_id, practice in conn.execute(
            "SELECT call_id, practice FROM messages "
            "WHERE acknowledged_at IS NULL AND taken_at >= ?",
            (since,),
        ).fetchall():
            paging = Paging(call_id, practice)
            for at, kind, details in conn.execute(
                "SELECT at, kind, details FROM events WHERE call_id = ? AND id <= ? "
                "AND (kind LIKE 'page%' OR kind = 'message_acknowledged') ORDER BY id",
                (call_id, last),
            ):
                paging = paging.apply(_event(at, kind, details))
            if paging.urgency and not paging.done:
                self.paging[call_id] = paging
        self._last_id = last

    def _drop_connection(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
                self.calls.clear()
                self._last_id = 0

    def _poll(self) -> bool:
        with self._lock:
            return self._poll_locked()

    def _poll_locked(self) -> bool:
        first = self._conn is None
        conn = self._connection()
        rows = conn.execute(
            "SELECT id, call_id, at, kind, details FROM events WHERE id > ? ORDER BY id LIMIT 5000",
            (self._last_id,),
        ).fetchall()
        changed = first
        handoffs = first or time.monotonic() - self._handoffs_read_at >= HANDOFFS_REFRESH
        for event_id, call_id, at, kind, details in rows:
            self._last_id = event_id
            event = _event(at, kind, details)
            if isinstance(event.event, HandoffEvent):
                handoffs = True
                continue  # a handoff check is no call on the board
            changed = self._apply(conn, call_id, event) or changed
        if handoffs:
            changed = self._read_handoffs(conn) or changed
        return changed

    def _read_handoffs(self, conn: Connection) -> bool:
        self._handoffs_read_at = time.monotonic()
        found = HandoffStore(conn).alerts(self._now())
        if found == self.handoffs:
            return False
        self.handoffs = found
        return True

    def _apply(self, conn: Connection, call_id: str, event: Stamped) -> bool:
        if isinstance(event.event, PageEvent | MessageAcknowledged):
            return self._page(conn, call_id, event)
        call = self.calls.get(call_id)
        if call is None:
            # An end, or what the console writes after it, opens no call on the board.
            if isinstance(event.event, Ended | EngineRestarted | MessageEvent):
                return False
            row = conn.execute(
                "SELECT caller_number, caller_name, did, started_at, outcome FROM journeys "
                "WHERE call_id = ? AND kind = ?",
                (call_id, JourneyKind.CALL.value),
            ).fetchone()
            # A journey that has ended stays off the board, whatever is added to it
            # later (a resumed call's journey is reopened before its next event).
            if row is None or row[4] is not None:
                return False
            number, name, did, started, _outcome = row
            call = start(
                call_id, caller_number=number, caller_name=name, did=did, started_at=_dt(started)
            )
            if not isinstance(event.event, Received):
                # Resumed by another engine (or we started in the middle): replay its events.
                call = self._replay(conn, call)
        call = call.apply(event)
        if call.ended:
            del self.calls[call_id]
        else:
            self.calls[call_id] = call
        return True

    def _page(self, conn: Connection, call_id: str, event: Stamped) -> bool:
        paging = self.paging.get(call_id)
        if paging is None:
            row = conn.execute("SELECT practice FROM journeys WHERE call_id = ?", (call_id,))
            found = row.fetchone()
            if found is None:
                return False
            paging = Paging(call_id, found[0])
        after = paging.apply(event)
        if after.done:
            self.paging.pop(call_id, None)
        else:
            self.paging[call_id] = after
        return after.alerting or after.alerting != paging.alerting

    def _replay(self, conn: Connection, call: LiveCall) -> LiveCall:
        for at, kind, details in conn.execute(
            "SELECT at, kind, details FROM events WHERE call_id = ? AND id < ? ORDER BY id",
            (call.call_id, self._last_id),
        ):
            event = _event(at, kind, details)
            if isinstance(event.event, Ended):
                call = replace(call, ended=False)  # reopened: a restarted engine took it on
                continue
            call = call.apply(event)
        return call


def _event(at: str, kind: str, details: str) -> Stamped:
    return Stamped(_dt(at), parse_event(kind, json.loads(details)))
