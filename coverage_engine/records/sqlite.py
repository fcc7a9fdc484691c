"""The SQLite journey store: the file, its schema, recovery, reads and the writer thread.

Why these choices:

* WAL journal: the CLI reads (`calls list`, `report`) while the engine writes,
  and neither blocks the other.
* `synchronous=FULL`: in WAL mode every commit fsyncs the log, so a write is
  durable when its transaction commits, even across a power cut. That commit is
  what completes a write's `Ack` (see `recorder.py` for "acknowledged").
* One writer thread owns the write connection: the asyncio loop only puts work
  on a queue, so an fsync never stalls a call. The thread commits whatever has
  queued up in one transaction (group commit), so a burst of events costs one
  fsync, not one each; it lingers a few milliseconds after a write for more
  to come, since a fast disk would otherwise commit (and fsync) nearly every
  event on its own: about 200 us of CPU each, the most expensive thing a call
  did under load.
* The writer thread remembers the rows of the calls in progress as it stored
  them, so a write folds its event into what it knows instead of reading the
  row back and parsing it. `PRAGMA data_version` tells it when another
  connection (the paging service, a purge, another process) has written the
  file since; it then reads the rows afresh.
* The file holds patient phone numbers: it is created 0600 before SQLite ever
  opens it (SQLite gives its -wal and -shm files the same mode), in a directory
  made (or kept) 0700.
* Deleted means gone: `secure_delete` overwrites deleted rows (and the old
  versions of updated ones) with zeros on every connection, and a purge
  checkpoints the write-ahead log and truncates it, so the pages that held
  the purged calls are in neither file afterwards (see `RecordStore.purge`).
* Timestamps are stored as UTC ISO 8601 text of a fixed shape, so text order
  is time order and `since`/`until` are plain comparisons on an index.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from coverage_engine.journey import (
    Decided,
    Ended,
    EngineRestarted,
    Journey,
    JourneyEvent,
    JourneyKind,
    Outcome,
    Stamped,
    Via,
    parse_event,
)
from coverage_engine.records.model import JourneyFilter
from coverage_engine.records.reached import outcome_reached
from coverage_engine.records.recorder import Ack, RecorderBase, RecordError, Write, folded
from coverage_engine.records.sql import Connection, row_lock, transaction

log = structlog.get_logger(__name__)


class StoreError(Exception):
    """The record file cannot be used; the message says what to do."""


# Each migration moves the schema from version i to i+1 (PRAGMA user_version).
# Append new ones; never edit one that has shipped.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE journeys (
            call_id TEXT PRIMARY KEY,
            practice TEXT NOT NULL DEFAULT '',
            did TEXT NOT NULL,
            caller_number TEXT NOT NULL,
            caller_name TEXT NOT NULL DEFAULT '',
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            plan TEXT,
            outcome TEXT,
            answered_by TEXT,
            time_to_person_ms INTEGER,
            talk_ms INTEGER
        )""",
        "CREATE INDEX journeys_started ON journeys (started_at)",
        "CREATE INDEX journeys_practice_started ON journeys (practice, started_at)",
        "CREATE INDEX journeys_open ON journeys (outcome) WHERE outcome IS NULL",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            call_id TEXT NOT NULL REFERENCES journeys (call_id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX events_call ON events (call_id, id)",
        # Who removed which records and when: the retention policy's own trail.
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}'
        )""",
    ),
    # The console: its users and sessions, who saw what (the access log), and
    # the messages inbox. The messages table is a projection of the journey's
    # message events, kept in the same transaction as those events.
    (
        """CREATE TABLE users (
            username TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('operator', 'staff', 'admin')),
            practices TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            password_changed_at TEXT NOT NULL
        )""",
        """CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
            csrf TEXT NOT NULL,
            phone TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )""",
        """CREATE TABLE access_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            username TEXT NOT NULL,
            action TEXT NOT NULL,
            allowed INTEGER NOT NULL,
            call_id TEXT,
            practice TEXT,
            remote TEXT NOT NULL DEFAULT '',
            details TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX access_log_at ON access_log (at)",
        "CREATE INDEX access_log_call ON access_log (call_id)",
        """CREATE TABLE messages (
            call_id TEXT PRIMARY KEY REFERENCES journeys (call_id) ON DELETE CASCADE,
            practice TEXT NOT NULL,
            version INTEGER NOT NULL,
            taken_at TEXT NOT NULL,
            taken_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            urgency TEXT NOT NULL,
            disposition TEXT NOT NULL,
            content TEXT NOT NULL,
            read_at TEXT,
            read_by TEXT,
            acknowledged_at TEXT,
            acknowledged_by TEXT
        )""",
        "CREATE INDEX messages_practice_taken ON messages (practice, taken_at)",
    ),
    # Paging urgent messages: one row per paged message, beside it (records/pages.py).
    (
        """CREATE TABLE pages (
            call_id TEXT PRIMARY KEY REFERENCES messages (call_id) ON DELETE CASCADE,
            practice TEXT NOT NULL,
            urgency TEXT NOT NULL,
            created_at TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'acknowledged', 'cancelled')),
            rung INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT NOT NULL,
            last_sent_at TEXT,
            in_flight INTEGER NOT NULL DEFAULT 0,
            in_flight_rung INTEGER NOT NULL DEFAULT 0,
            alerted_at TEXT,
            lease_owner TEXT,
            lease_until TEXT,
            closed_at TEXT
        )""",
        "CREATE INDEX pages_due ON pages (state, next_at)",
    ),
    # Handoff checks: the engine calls the doctor coming on call. Each check has a
    # journey of its own (kind 'handoff_check') and one row here, keyed by the
    # practice and the instant of the handoff (records/handoffs.py).
    (
        "ALTER TABLE journeys ADD COLUMN kind TEXT NOT NULL DEFAULT 'call'",
        """CREATE TABLE handoff_checks (
            check_id TEXT PRIMARY KEY REFERENCES journeys (call_id) ON DELETE CASCADE,
            practice TEXT NOT NULL,
            doctor TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            until TEXT,
            state TEXT NOT NULL
                CHECK (state IN ('pending', 'confirmed', 'alerting', 'unconfirmed',
                                 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            next_at TEXT NOT NULL,
            last_attempt_at TEXT,
            in_flight INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until TEXT,
            alerted_at TEXT,
            resolved_at TEXT,
            resolved_by TEXT,
            closed_at TEXT
        )""",
        "CREATE INDEX handoff_checks_due ON handoff_checks (state, next_at)",
    ),
    # Each event's own id, when its writer gave one: replaying an engine's
    # buffered writes (after a database outage or a crash) applies each once.
    (
        "ALTER TABLE events ADD COLUMN event_key TEXT",
        "CREATE UNIQUE INDEX events_key ON events (event_key) WHERE event_key IS NOT NULL",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)

#: The record file when the config has no `records:` section: next to the config.
DEFAULT_RECORDS_FILE = "calls.db"


def records_path(configured: str | None, config_file: Path) -> Path:
    """Where the records are: `records.path`, relative to the config file's folder.

    Relative to the config file, not to the working directory, so the engine
    (started by systemd) and an admin's `calls list --config` find the same file.
    """
    path = Path(configured or DEFAULT_RECORDS_FILE).expanduser()
    return path if path.is_absolute() else config_file.parent / path


def _ts(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("record timestamps must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ms(delta: timedelta | None) -> int | None:
    return None if delta is None else round(delta / timedelta(milliseconds=1))


def _delta(ms: int | None) -> timedelta | None:
    return None if ms is None else timedelta(milliseconds=ms)


def _private_directory(directory: Path) -> None:
    """Make (or keep) the records' directory owner-only: 0700.

    Write access for others would let them replace the file or plant its
    -wal/-shm companions; read access lists what is there. A directory of ours
    is tightened. One we cannot change (someone else's, or a shared sticky
    one like /tmp) is refused if others may write to it, and only warned
    about if they may merely look in (the file itself is 0600).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if not info.st_mode & 0o077:
        return
    mode = f"{stat.S_IMODE(info.st_mode):04o}"
    if info.st_uid == os.geteuid() and not info.st_mode & stat.S_ISVTX:
        directory.chmod(0o700)
        log.warning("records.directory_tightened", directory=str(directory), was=mode)
        return
    if info.st_mode & 0o022:
        raise StoreError(
            f"the call records' directory {directory} can be written by other users "
            f"(mode {mode}); put records.path in a directory of its own, owned by the user "
            "the engine runs as (mode 0700)"
        )
    log.warning("records.directory_not_private", directory=str(directory), mode=mode)


def _create_private(path: Path) -> None:
    """Create the record file owner-only before SQLite opens it; tighten an existing one."""
    _private_directory(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        # The -wal and -shm files come and go: the last connection to close
        # (an admin's `calls list`, say) checkpoints the log and removes them,
        # at any moment between our looking and our changing them.
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT),
    # so a commit happens exactly where the code says, which is what an Ack means.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Zeros over deleted and superseded content, whatever the build's default
    # (python.org's and macOS's SQLite leave it off).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


# The stores' one transaction, whichever database (the console's modules import it by this name).
_transaction = transaction


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the call records in {path} were written by a newer coverage-engine "
            f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade coverage-engine"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with _transaction(conn):
            for statement in _MIGRATIONS[target - 1]:
                conn.execute(statement)
            # user_version lives in the file header and is part of the transaction:
            # a crash mid-migration leaves the old version and the old schema.
            conn.execute(f"PRAGMA user_version = {target}")


def open_database(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (creating it owner-only if allowed) and migrate the record file at `path`."""
    if not create and not path.exists():
        raise StoreError(
            f"there are no call records at {path}: check records.path in the config "
            "(or --db), and that the engine has run with it"
        )
    try:
        if create:
            _create_private(path)
        conn = _connect(path)
        _migrate(conn, path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot use the call records at {path}: {exc}") from exc
    except PermissionError as exc:
        raise StoreError(
            f"cannot open the call records at {path}: permission denied "
            "(run as the user the engine runs as)"
        ) from exc
    return conn


# -- the read side (CLI, tests) and maintenance ------------------------------------------


class _Stored(NamedTuple):
    """A `journeys` row as `SELECT {_JOURNEY_COLUMNS}` returns it: one list of names for both."""

    call_id: str
    practice: str
    did: str
    caller_number: str
    caller_name: str
    started_at: str
    ended_at: str | None
    status: str
    reason: str
    plan: str | None
    outcome: str | None
    answered_by: str | None
    time_to_person_ms: int | None
    talk_ms: int | None
    kind: str


_JOURNEY_COLUMNS = ", ".join(_Stored._fields)


def _journey(row: Sequence[Any], events: tuple[Stamped, ...] = ()) -> Journey:
    stored = _Stored(*row)
    return Journey(
        kind=JourneyKind(stored.kind),
        call_id=stored.call_id,
        did=stored.did,
        caller_number=stored.caller_number,
        caller_name=stored.caller_name,
        started_at=_dt(stored.started_at),
        practice=stored.practice,
        status=stored.status,
        reason=stored.reason,
        plan=json.loads(stored.plan) if stored.plan else None,
        ended_at=_dt(stored.ended_at) if stored.ended_at else None,
        outcome=Outcome(stored.outcome) if stored.outcome else None,
        answered_by=stored.answered_by,
        time_to_person=_delta(stored.time_to_person_ms),
        talk_time=_delta(stored.talk_ms),
        events=events,
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One maintenance action on the records (a purge), itself kept as a record."""

    at: datetime
    action: str
    details: Mapping[str, Any]


class RecordStore:
    """Reads and maintenance on the records (SQLite or PostgreSQL): what the CLI and tests use."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> RecordStore:
        """Open the record file at `path` (by default it must already exist)."""
        return cls(open_database(path, create=create))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _events(self, call_id: str) -> tuple[Stamped, ...]:
        return _read_events(self._conn, call_id)

    def get(self, call_id: str) -> Journey | None:
        """The journey of `call_id` with its events, or None."""
        row = self._conn.execute(
            f"SELECT {_JOURNEY_COLUMNS} FROM journeys WHERE call_id = ?",  # noqa: S608 (constant)
            (call_id,),
        ).fetchone()
        return None if row is None else _journey(row, self._events(call_id))

    def journeys(
        self, where: JourneyFilter | None = None, *, events: bool = False
    ) -> list[Journey]:
        """The journeys matching `where`, oldest first (with their events if asked)."""
        where = where or JourneyFilter()
        clauses: list[str] = []
        params: list[str] = []
        if where.since is not None:
            clauses.append("started_at >= ?")
            params.append(_ts(where.since))
        if where.until is not None:
            clauses.append("started_at < ?")
            params.append(_ts(where.until))
        if where.practice is not None:
            clauses.append("practice = ?")
            params.append(where.practice)
        if where.outcome is not None:
            clauses.append("outcome = ?")
            params.append(where.outcome.value)
        if where.caller is not None:
            clauses.append("instr(caller_number, ?) > 0")
            params.append(where.caller)
        if where.kind is not None:
            clauses.append("kind = ?")
            params.append(where.kind.value)
        sql = f"SELECT {_JOURNEY_COLUMNS} FROM journeys"  # noqa: S608 (constant columns)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY started_at, call_id"
        rows = self._conn.execute(sql, params).fetchall()
        return [_journey(r, self._events(r[0]) if events else ()) for r in rows]

    def purge(self, before: datetime, *, now: datetime, by: str, vacuum: bool = False) -> int:
        """Delete journeys started before `before`, and record the purge; return how many.

        Deleted means unreadable afterwards, in every file: `secure_delete`
        zeroes the rows in the pages that held them, and the write-ahead log,
        which still holds copies of those pages from before, is checkpointed
        and truncated to nothing. `vacuum` also rewrites the whole file: it
        drops what an older coverage-engine (or another SQLite build) left in
        free space, and gives the space back; the engine's writes wait for it
        (seconds for a year of calls), so the scheduled retention does not.
        """
        details = {"before": _ts(before), "by": by, "vacuum": vacuum}
        with _transaction(self._conn):
            cur = self._conn.execute("DELETE FROM journeys WHERE started_at < ?", (_ts(before),))
            removed = cur.rowcount
            self._conn.execute(
                "INSERT INTO audit (at, action, details) VALUES (?, 'purge', ?)",
                (_ts(now), json.dumps({**details, "journeys": removed})),
            )
        try:
            if vacuum:
                self._conn.execute("VACUUM")
            # PostgreSQL has no log of ours to empty: the rows are gone for
            # every reader at the commit, and the pages that held them are the
            # server's to reclaim (autovacuum, or VACUUM FULL by its
            # administrator, see docs/security.md).
            if isinstance(self._conn, sqlite3.Connection):
                self._truncate_log()
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"{removed} calls were deleted, but the file could not be compacted ({exc}); "
                "run the purge again at a quieter moment (it is harmless)"
            ) from exc
        return removed

    def _truncate_log(self, attempts: int = 5) -> None:
        """Copy the write-ahead log into the file and empty it (waiting out busy readers)."""
        for _ in range(attempts):
            # Waits (the connection's busy timeout) for writers; `busy` is 1 if
            # a reader still needed the old pages and the log could not be emptied.
            (busy, _log, _done) = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
        raise StoreError(
            "the calls were deleted, but another process kept reading the records, so copies "
            "of their pages remain in the -wal file; run the purge again (it is harmless)"
        )

    def audit(self) -> list[AuditEntry]:
        """Every maintenance action ever done on these records, oldest first."""
        rows = self._conn.execute("SELECT at, action, details FROM audit ORDER BY id")
        return [AuditEntry(_dt(at), action, json.loads(d)) for at, action, d in rows]

    def recover(self, *, now: datetime) -> list[str]:
        """Close every journey a previous process left open; return their call ids.

        Run once on start, before any new call is recorded: a journey still open
        then was cut off by a crash. It is closed with the outcome it had reached
        (see `outcome_reached`) and an `engine_restarted` event, so nothing in
        it is lost and the report counts it.
        """
        # Calls only: a handoff check in progress is taken on again by the paging service.
        open_ids = [
            r[0]
            for r in self._conn.execute(
                "SELECT call_id FROM journeys WHERE outcome IS NULL AND kind = ?",
                (JourneyKind.CALL.value,),
            )
        ]
        # One transaction for all of them: after a crash under load there can be
        # thousands, and the engine must not wait for one fsync each to start.
        with _transaction(self._conn):
            for call_id in open_ids:
                self._close_after_restart(call_id, now)
        for call_id in open_ids:
            log.warning("journey closed after restart", call_id=call_id)
        return open_ids

    def close_gone(
        self, present: Collection[str], *, now: datetime, older_than: timedelta
    ) -> list[str]:
        """Close the open journeys whose caller is no longer on the PBX; their call ids.

        With several engines sharing the records nobody closes everything at
        start (another engine may be carrying those calls): instead each
        engine, now and then, closes the journeys whose caller's channel is
        gone, with the outcome they had reached. A journey younger than
        `older_than` is left alone (its first writes may precede the
        channel's listing). Each is re-checked under its row lock, so two
        engines sweeping at once close it once.
        """
        cutoff = _ts(now - older_than)
        # Calls only: a handoff check has no caller channel; the paging service
        # that owns it ends it (or takes it on again after a restart).
        candidates = [
            r[0]
            for r in self._conn.execute(
                "SELECT call_id FROM journeys"
                " WHERE outcome IS NULL AND kind = ? AND started_at < ?",
                (JourneyKind.CALL.value, cutoff),
            )
            if r[0] not in present
        ]
        closed = []
        for call_id in candidates:
            with _transaction(self._conn):
                current = _load_all(self._conn, [call_id]).get(call_id)
                if current is None or current.journey.outcome is not None:
                    continue  # closed meanwhile (the engine's own end, or another sweep)
                if any(
                    isinstance(s.event, Decided) and s.event.via is Via.FASTAGI
                    for s in self._events(call_id)
                ):
                    continue  # the FastAGI service's: the dialplan carried it, out of our sight
                self._close_after_restart(call_id, now)
            closed.append(call_id)
            log.warning("journey closed, the caller is gone", call_id=call_id)
        return closed

    def _close_after_restart(self, call_id: str, now: datetime) -> None:
        journey = self.get(call_id)
        if journey is None:  # pragma: no cover - removed between the two reads
            return
        reached = outcome_reached(journey.events)
        last = journey.events[-1] if journey.events else None
        restarted = EngineRestarted(
            reached.outcome, last.name if last else None, last.at if last else None
        )
        writes = [
            Write(call_id, Stamped(now, event))
            for event in (restarted, Ended(reached.outcome, reached.answered_by))
        ]
        _apply_all(self._conn, writes, {call_id: _Row.of(journey)})


# -- the write side ---------------------------------------------------------------------


# Parameters bound in one statement at most: well under SQLite's limit (32,766
# since 3.32) and PostgreSQL's (65,535), and enough rows for a large batch.
_PARAMETERS_MAX = 2000


def _insert_rows(
    conn: Connection, head: str, rows: Sequence[tuple[Any, ...]], tail: str = ""
) -> None:
    """`head VALUES (...), (...) tail`: many rows in one statement (one trip into the database).

    One statement for a whole batch, not one (or an `executemany` step) per
    row: Python's sqlite3 gives the GIL up around every step into SQLite and
    must win it back from the event loop, and those handoffs, not SQLite's own
    work, were most of what the writer thread cost under load.
    """
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, _PARAMETERS_MAX // width)
    mark = "(" + ", ".join("?" * width) + ")"
    for first in range(0, len(rows), per_statement):
        chunk = rows[first : first + per_statement]
        values = ", ".join([mark] * len(chunk))
        conn.execute(f"{head} VALUES {values}{tail}", [v for row in chunk for v in row])


def _event_values(call_id: str, stamped: Stamped, key: str | None) -> tuple[Any, ...]:
    details = json.dumps(stamped.event.details(), default=str)
    return (call_id, _ts(stamped.at), stamped.name, details, key)


_INSERT_EVENTS = "INSERT INTO events (call_id, at, kind, details, event_key)"


def _insert_event(conn: Connection, call_id: str, stamped: Stamped, key: str | None = None) -> None:
    _insert_rows(conn, _INSERT_EVENTS, [_event_values(call_id, stamped, key)])


class _Identity(NamedTuple):
    """The columns that say whose call it is (set by its Received)."""

    did: str
    caller_number: str
    caller_name: str
    started_at: str


class _Columns(NamedTuple):
    """The columns a journey's later events change, in the order the row's statements bind them."""

    practice: str
    status: str
    reason: str
    plan: str | None
    ended_at: str | None
    outcome: str | None
    answered_by: str | None
    time_to_person_ms: int | None
    talk_ms: int | None


def _columns(journey: Journey, plan: str | None = None) -> _Columns:
    """The journey's folded state as its row's columns (after the call id).

    `plan`: the plan already encoded, when the journey's is the one stored.
    """
    if plan is None and journey.plan is not None:
        plan = json.dumps(journey.plan)
    return _Columns(
        journey.practice,
        journey.status,
        journey.reason,
        plan,
        _ts(journey.ended_at) if journey.ended_at else None,
        journey.outcome.value if journey.outcome else None,
        journey.answered_by,
        _ms(journey.time_to_person),
        _ms(journey.talk_time),
    )


def _identity(journey: Journey) -> _Identity:
    return _Identity(
        journey.did, journey.caller_number, journey.caller_name, _ts(journey.started_at)
    )


@dataclass(frozen=True, slots=True)
class _Row:
    """A journey's row: the journey folded so far, and the values its columns hold.

    The stored values are kept so that a write compares against them and
    encodes only what changed (the plan, a kilobyte of JSON, once per call).
    """

    journey: Journey
    identity: _Identity
    columns: _Columns

    @classmethod
    def of(cls, journey: Journey) -> _Row:
        """The row that stores `journey`."""
        return cls(journey, _identity(journey), _columns(journey))

    def as_read(self) -> _Row:
        """This row as `_load_all` would read it back: no events, times to the millisecond."""
        journey = replace(
            self.journey,
            events=(),
            time_to_person=_delta(self.columns.time_to_person_ms),
            talk_time=_delta(self.columns.talk_ms),
        )
        return _Row(journey, self.identity, self.columns)


def _row_of(stored: _Stored) -> _Row:
    """The row as read back: the journey it holds (no events) and its stored values."""
    return _Row(
        _journey(stored),
        _Identity._make(getattr(stored, name) for name in _Identity._fields),
        _Columns._make(getattr(stored, name) for name in _Columns._fields),
    )


def _load_all(conn: Connection, call_ids: Collection[str]) -> dict[str, _Row]:
    """The rows of those of `call_ids` that have one (without their events)."""
    rows: dict[str, _Row] = {}
    ordered = sorted(call_ids)
    # Chunks well under any database's limit of parameters per statement.
    for first in range(0, len(ordered), 500):
        chunk = ordered[first : first + 500]
        marks = ", ".join("?" * len(chunk))
        found = conn.execute(
            # Locked until the transaction ends: two engines writing one call
            # queue here. In call id order, so two batches lock theirs in one order.
            f"SELECT {_JOURNEY_COLUMNS} FROM journeys WHERE call_id IN ({marks})"  # noqa: S608
            f" ORDER BY call_id{row_lock(conn)}",
            chunk,
        )
        for row in found:
            stored = _Stored(*row)
            rows[stored.call_id] = _row_of(stored)
    return rows


def _applied_keys(conn: Connection, keys: Collection[str]) -> set[str]:
    """Those of `keys` that events already stored carry."""
    applied: set[str] = set()
    ordered = sorted(keys)
    for first in range(0, len(ordered), 500):
        chunk = ordered[first : first + 500]
        marks = ", ".join("?" * len(chunk))
        found = conn.execute(
            f"SELECT event_key FROM events WHERE event_key IN ({marks})",  # noqa: S608
            chunk,
        )
        applied.update(key for (key,) in found)
    return applied


def _new_row(before: _Row | None, after: Journey) -> _Row:
    """The row that stores `after`, its call's row having held `before` (None: none yet).

    The plan (a kilobyte of JSON) is encoded again only if the journey has a new one.
    """
    if before is None:
        return _Row.of(after)
    plan = before.columns.plan if after.plan is before.journey.plan else None
    return _Row(after, _identity(after), _columns(after, plan))


_INSERT_JOURNEYS = (
    f"INSERT INTO journeys (call_id, kind, {', '.join((*_Identity._fields, *_Columns._fields))})"
)
# An existing row takes every column a write can change (not its kind).
_UPDATE_JOURNEYS = " ON CONFLICT (call_id) DO UPDATE SET " + ", ".join(
    f"{name} = excluded.{name}" for name in (*_Identity._fields, *_Columns._fields)
)


def _write_rows(conn: Connection, changes: Sequence[tuple[_Row | None, _Row]]) -> None:
    """Store each changed row, given what its call's row held before (None: no row yet).

    New rows go in with a plain insert: if another engine has just made the
    same call's row, that fails (and the batch is redone a write at a time,
    folding onto the other's row) instead of overwriting it. Rows that exist
    (read, and locked, in this transaction) are updated by an upsert, the
    one statement that updates many rows with values of their own.
    """
    inserted: list[tuple[Any, ...]] = []
    updated: list[tuple[Any, ...]] = []
    for before, row in changes:
        if before is not None and row.identity == before.identity and row.columns == before.columns:
            continue  # nothing to write
        values = (row.journey.call_id, row.journey.kind.value, *row.identity, *row.columns)
        (inserted if before is None else updated).append(values)
    _insert_rows(conn, _INSERT_JOURNEYS, inserted)
    _insert_rows(conn, _INSERT_JOURNEYS, updated, _UPDATE_JOURNEYS)


def _apply_all(
    conn: Connection, writes: Sequence[Write], known: Mapping[str, _Row] | None = None
) -> dict[str, _Row]:
    """Apply `writes` in order inside the caller's transaction; the rows they changed, as stored.

    A write whose key an event already stored (or an earlier one of `writes`)
    carries is skipped: a replayed write is applied once. `known`: rows as
    this connection stored them last, when it is sure nobody changed them
    since; the others are read.

    A batch costs a handful of statements, however many writes it holds
    (see `_insert_rows` for why that matters): the rows not known are read
    in one, the keys looked up in one, each call's row is written once, with
    the state its last write left it in, and the events go in together.
    """
    known = known or {}
    before: dict[str, _Row | None] = {}
    for write in writes:
        before.setdefault(write.call_id, known.get(write.call_id))
    unknown = [call_id for call_id, row in before.items() if row is None]
    if unknown:
        before.update(_load_all(conn, unknown))
    keys = [write.key for write in writes if write.key is not None]
    seen = _applied_keys(conn, keys) if keys else set()
    journeys = {call_id: row.journey if row else None for call_id, row in before.items()}
    events: list[tuple[Any, ...]] = []
    for write in writes:
        if write.key is not None:
            if write.key in seen:
                continue  # already applied: a replayed write
            seen.add(write.key)
        journeys[write.call_id] = folded(journeys[write.call_id], write)
        events.append(_event_values(write.call_id, write.stamped, write.key))
    changes: list[tuple[_Row | None, _Row]] = []
    for call_id, journey in journeys.items():
        prior = before[call_id]
        if journey is None or (prior is not None and journey is prior.journey):
            continue  # each of the call's writes had been applied before
        changes.append((prior, _new_row(prior, journey)))
    _write_rows(conn, changes)
    # After the rows: an event refers to its journey's row.
    _insert_rows(conn, _INSERT_EVENTS, events)
    return {row.journey.call_id: row for _before, row in changes}


def append(conn: Connection, call_id: str, at: datetime, event: JourneyEvent) -> Journey:
    """Fold one event into a journey and store it, inside the caller's transaction.

    For writers beside the engine's recorder (the paging service) whose events
    change the journey's row (a handoff check opening and ending its journey),
    in the same transaction as their own state.
    """
    return _apply_all(conn, [Write(call_id, Stamped(at, event))])[call_id].journey


def _read_events(conn: Connection, call_id: str) -> tuple[Stamped, ...]:
    rows = conn.execute(
        "SELECT at, kind, details FROM events WHERE call_id = ? ORDER BY id", (call_id,)
    )
    return tuple(Stamped(_dt(at), parse_event(kind, json.loads(d))) for at, kind, d in rows)


class _Stop:
    """Queued by `close`: the writer thread ends after what was queued before it."""


_Item = tuple[Write | None, Ack] | _Stop

# Calls in progress whose rows the writer keeps: well above the most a box
# carries at once (a row is a few kilobytes, the plan included).
_ROWS_KEPT = 4096


class SqliteRecorder(RecorderBase):
    """The production `JourneyRecorder`: SQLite in WAL mode, written by one thread."""

    def __init__(
        self, conn: sqlite3.Connection, *, batch_max: int = 500, linger: float = 0.005
    ) -> None:
        self._conn = conn
        self._batch_max = batch_max
        # How long a transaction waits for more writes after its first one: an
        # Ack is that much later at most, and a commit carries a burst of calls.
        self._linger = linger
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._closed = False
        # The rows of the calls in progress as this writer stored them, so a
        # write need not read its row back (the writer thread's alone). Good
        # only while no other connection writes: `data_version` says when one did.
        self._rows: dict[str, _Row] = {}
        self._data_version = -1
        self._thread = threading.Thread(target=self._run, name="journey-writer", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: Path, *, now: datetime) -> tuple[SqliteRecorder, list[str]]:
        """Open (create, migrate) the record file, recover cut-off journeys, start writing.

        Blocking (file creation, migration, recovery): the composition root calls
        it before the engine takes calls. Returns the recorder and the call ids
        recovery closed.
        """
        conn = open_database(path, create=True)
        recovered = RecordStore(conn).recover(now=now)
        return cls(conn), recovered

    def _submit(self, write: Write | None) -> Ack:
        ack: Ack = Future()
        if self._closed:
            ack.set_exception(RecordError("the journey recorder is closed"))
            return ack
        self._queue.put((write, ack))
        return ack

    def writer_cpu_seconds(self) -> float | None:
        """The CPU time the writer thread has used so far; None once it has ended.

        For the benchmarks: what the records cost, apart from the event loop.
        """
        ident = self._thread.ident
        if ident is None or not self._thread.is_alive():
            return None
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(ident))
        except OSError:  # ended between the check and the read
            return None

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer thread and close the file (blocking)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Stop())
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._conn.close()

    # The writer thread.

    def _run(self) -> None:
        full = False
        while True:
            first = self._queue.get()
            if isinstance(first, _Stop):
                return
            if not full:
                # Linger by sleeping, not by waiting on the queue: the writes of
                # the next few milliseconds then wake this thread (and make it
                # take the GIL from the event loop) once, not once each.
                time.sleep(self._linger)
            batch = [first]
            stop = False
            while len(batch) < self._batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Stop):
                    stop = True
                    break
                batch.append(item)
            full = len(batch) >= self._batch_max
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Write | None, Ack]]) -> None:
        """Apply a batch in one transaction; if one write fails, redo them one by one.

        Redoing singly keeps one bad write (an event for an unknown call) from
        costing the good writes queued with it.
        """
        writes = [write for write, _ack in batch if write is not None]
        try:
            with _transaction(self._conn):
                self._forget_rows_if_changed()
                stored = _apply_all(self._conn, writes, self._rows)
        except Exception as exc:
            self._rows.clear()  # whatever failed, read the rows afresh
            if len(batch) > 1:
                for one in batch:
                    self._commit([one])
                return
            error = exc if isinstance(exc, RecordError) else RecordError(f"write failed: {exc}")
            log.error("call record write failed", error=str(error))
            batch[0][1].set_exception(error)
            return
        self._remember(stored)
        for _write, ack in batch:
            ack.set_result(None)

    def _forget_rows_if_changed(self) -> None:
        """Forget the remembered rows if another connection wrote since (in the transaction)."""
        (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._rows.clear()
            self._data_version = version

    def _remember(self, stored: dict[str, _Row]) -> None:
        """Keep the rows of the calls still in progress; an ended call's row is read if needed."""
        rows = self._rows
        for call_id, row in stored.items():
            rows.pop(call_id, None)
            if row.journey.outcome is None:
                rows[call_id] = row.as_read()
        while len(rows) > _ROWS_KEPT:
            del rows[next(iter(rows))]  # the least recently written
