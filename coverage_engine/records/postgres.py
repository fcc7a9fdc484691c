"""The PostgreSQL journey store: one database for every engine on a PBX.

Why psycopg 3 (and not asyncpg): the stores are written once, as plain
DB-API SQL run from a writer thread (the engine) or a worker thread (the
CLI, the console), so a crash-safe commit never stalls the event loop.
psycopg 3 is a DB-API driver with the same blocking connection shape as
sqlite3, so the SQLite store's code (`records.sqlite`, `records.messages`,
the console's accounts and access log) runs on it unchanged; asyncpg speaks
only asyncio and its own API, which would have meant a second copy of every
query. psycopg also uses the system's libpq, so TLS, `~/.pgpass` and
`PGPASSFILE` work as every PostgreSQL admin expects: the password never goes
in the configuration file or on a command line.

Writes survive a database outage: `PostgresRecorder` first puts each write
in a local spool (a small SQLite file, fsynced: that is when a write is
acknowledged), and one thread ships the spool to PostgreSQL in order,
deleting what was committed. PostgreSQL down, restarting or unreachable:
the spool grows and is replayed when it is back. Killed between PostgreSQL's
commit and the spool's delete: the replay sends those writes again and each
write's key (unique per event) makes PostgreSQL skip them. Nothing lost,
nothing doubled.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from coverage_engine.journey import JourneyEvent, Received, Stamped, parse_event
from coverage_engine.records.recorder import Ack, RecorderBase, RecordError, Write
from coverage_engine.records.sql import Connection, Cursor, transaction
from coverage_engine.records.sqlite import (
    StoreError,
    _apply_all,
    _create_private,
    _dt,
    _ts,
)

log = structlog.get_logger("coverage_engine.records")

# Each migration moves the schema from version i to i+1 (the `schema_version`
# table). The first one is the SQLite schema of its versions 1 to 5, in
# PostgreSQL's types; append new ones, never edit one that has shipped.
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
            time_to_person_ms BIGINT,
            talk_ms BIGINT,
            kind TEXT NOT NULL DEFAULT 'call'
        )""",
        "CREATE INDEX journeys_started ON journeys (started_at)",
        "CREATE INDEX journeys_practice_started ON journeys (practice, started_at)",
        "CREATE INDEX journeys_open ON journeys (outcome) WHERE outcome IS NULL",
        """CREATE TABLE events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            call_id TEXT NOT NULL REFERENCES journeys (call_id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}',
            event_key TEXT UNIQUE
        )""",
        "CREATE INDEX events_call ON events (call_id, id)",
        """CREATE TABLE audit (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}'
        )""",
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
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
        # SQLite's instr(), which the stores' caller filter uses.
        """CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
            LANGUAGE sql IMMUTABLE AS 'SELECT strpos(haystack, needle)'""",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)
# Any constant: serialises engines migrating the same database at the same moment.
_MIGRATION_LOCK = 0x636F7665


def _psycopg() -> Any:
    """The psycopg module, imported only when PostgreSQL is configured."""
    try:
        import psycopg  # imported here: a SQLite-only install needs no libpq
    except ImportError as exc:
        raise StoreError(
            "records.url points at PostgreSQL, but the PostgreSQL driver cannot load "
            f"({exc}): install libpq (Debian: apt-get install libpq5)"
        ) from exc
    return psycopg


def _translate(sql: str) -> str:
    """sqlite3's `?` parameters as psycopg's `%s` (and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _param(value: Any) -> Any:
    # The shared schema keeps flags as 0/1 integers, as SQLite does.
    return int(value) if isinstance(value, bool) else value


class PgConnection:
    """A psycopg connection speaking the stores' SQL (`?` parameters, sqlite3's errors).

    Driver errors come out as the DB-API classes of `sqlite3` (IntegrityError,
    OperationalError, ...), which the stores already catch: the stores stay
    written once for both databases.
    """

    begin_sql = "BEGIN"
    lock_sql = " FOR UPDATE"

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    @property
    def raw(self) -> Any:
        """The psycopg connection (LISTEN, notifies)."""
        return self._raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        # Rows are fetched here, inside the error mapping: a connection lost
        # while reading must raise sqlite3's errors too, never psycopg's.
        with _sqlite_errors():
            cursor = self._raw.execute(_translate(sql), [_param(p) for p in parameters] or None)
            rows = cursor.fetchall() if cursor.description is not None else []
            return _Rows(rows, cursor.rowcount)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        with _sqlite_errors():
            cursor = self._raw.cursor()
            cursor.executemany(_translate(sql), [[_param(p) for p in row] for row in parameters])
            return _Rows([], cursor.rowcount)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a connection the server dropped may not close
            self._raw.close()


class _Rows:
    """A statement's result, already fetched."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._rowcount = rowcount

    @property
    def rowcount(self) -> int:
        return self._rowcount

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


@contextlib.contextmanager
def _sqlite_errors() -> Iterator[None]:
    """Re-raise psycopg's DB-API errors as sqlite3's of the same name."""
    psycopg = _psycopg()
    try:
        yield
    except psycopg.Error as exc:
        for name in ("IntegrityError", "OperationalError", "ProgrammingError", "DataError"):
            if isinstance(exc, getattr(psycopg, name)):
                raise getattr(sqlite3, name)(str(exc).strip()) from exc
        raise sqlite3.DatabaseError(str(exc).strip()) from exc


def is_postgres_url(target: str) -> bool:
    """Whether `records.url` (or `--db`) names a PostgreSQL database rather than a file."""
    return target.startswith(("postgresql://", "postgres://"))


def check_url(url: str) -> str:
    """The URL if it may be used: PostgreSQL, and no password in it (use ~/.pgpass)."""
    if not is_postgres_url(url):
        raise StoreError(f"{url!r} is not a postgresql:// URL")
    psycopg = _psycopg()
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"records.url is not a PostgreSQL URL: {exc}") from exc
    if params.get("password"):
        raise StoreError(
            "records.url holds a password: remove it and put it in the engine user's "
            "~/.pgpass (or the file PGPASSFILE names), mode 0600"
        )
    return url


def connect_records(url: str, *, timeout: float = 5.0) -> PgConnection:
    """Connect (autocommit: transactions are explicit, as on SQLite) and migrate."""
    psycopg = _psycopg()
    try:
        raw = psycopg.connect(
            check_url(url),
            autocommit=True,
            connect_timeout=max(1, round(timeout)),
            application_name="coverage-engine",
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot reach the call records at {_safe(url)}: {exc}") from exc
    conn = PgConnection(raw)
    try:
        _migrate(conn, url)
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot use the call records at {_safe(url)}: {exc}") from exc
    return conn


def _safe(url: str) -> str:
    """The URL without any user info, for messages and logs."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _migrate(conn: PgConnection, url: str) -> None:
    with transaction(conn):
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the call records at {_safe(url)} were written by a newer coverage-engine "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade coverage-engine"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (target,))


# -- the spool and the recorder --------------------------------------------------------------


def spool_path(configured: str | None, config_file: Path) -> Path:
    """Where the local spool lives: `records.spool`, relative to the config file's folder."""
    path = Path(configured or "records-spool.db").expanduser()
    return path if path.is_absolute() else config_file.parent / path


class Spool:
    """Writes waiting for PostgreSQL, in order, on local disk (SQLite, WAL, fsynced commits)."""

    def __init__(self, path: Path) -> None:
        _create_private(path)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL, "
            "at TEXT NOT NULL, kind TEXT NOT NULL, details TEXT NOT NULL, key TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    def add(self, writes: Sequence[Write]) -> int:
        """Keep `writes` (one fsynced commit); the sequence number of the last one."""
        rows = [
            (
                w.call_id,
                _ts(w.stamped.at),
                w.stamped.name,
                json.dumps(_whole(w.stamped.event), default=str),
                w.key or uuid.uuid4().hex,
            )
            for w in writes
        ]
        with self._lock, transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO pending (call_id, at, kind, details, key) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            (last,) = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM pending").fetchone()
        return int(last)

    def oldest(self, limit: int) -> list[tuple[int, Write]]:
        """The oldest waiting writes, with their spool sequence numbers."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, call_id, at, kind, details, key FROM pending ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            (seq, Write(call_id, Stamped(_dt(at), parse_event(kind, json.loads(d))), key))
            for seq, call_id, at, kind, d, key in rows
        ]

    def drop(self, up_to: int) -> None:
        """Forget the writes up to `up_to` (they are in PostgreSQL)."""
        with self._lock, transaction(self._conn):
            self._conn.execute("DELETE FROM pending WHERE seq <= ?", (up_to,))

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM pending").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _whole(event: JourneyEvent) -> dict[str, Any]:
    """Everything of an event, for the spool: a store keeps a received's caller on the journey."""
    details = event.details()
    if isinstance(event, Received):
        details["caller_number"] = event.caller_number
    return details


@dataclass
class _Flush:
    ack: Ack
    seq: int  # done once the spool is shipped up to this sequence number


class PostgresRecorder(RecorderBase):
    """The `JourneyRecorder` on PostgreSQL, with a local spool for when the database is away.

    A write's Ack completes when it is in the spool (on local disk, fsynced):
    from then on it survives the engine being killed and PostgreSQL being
    down. `flush()` completes once everything written before it has reached
    PostgreSQL.
    """

    def __init__(
        self,
        url: str,
        spool: Path,
        *,
        connect: Callable[[str], Connection] | None = None,
        batch_max: int = 500,
        retry_max: float = 5.0,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._url = url
        self._connect = connect or connect_records
        self._spool = Spool(spool)
        self._batch_max = batch_max
        self._retry_max = retry_max
        self._on_state = on_state
        self._lock = threading.Condition()
        self._incoming: list[tuple[Write | None, Ack]] = []
        self._flushes: list[_Flush] = []
        self._spooled_upto = 0  # the spool's last sequence number
        self._shipped_upto = 0  # shipped to PostgreSQL up to here
        self._closing = False
        self._conn: Connection | None = None
        self._up: bool | None = None
        self._spooler = threading.Thread(target=self._spool_loop, name="journey-spool", daemon=True)
        self._shipper = threading.Thread(target=self._ship_loop, name="journey-ship", daemon=True)
        self._wake_shipper = threading.Event()
        self._stop = threading.Event()  # the shipper gives up (what is left stays spooled)
        self._spooler.start()
        self._shipper.start()

    @property
    def waiting(self) -> int:
        """Writes in the spool not yet in PostgreSQL."""
        return len(self._spool)

    def _submit(self, write: Write | None) -> Ack:
        ack: Ack = Future()
        with self._lock:
            if self._closing:
                ack.set_exception(RecordError("the journey recorder is closed"))
                return ack
            self._incoming.append((write, ack))
            self._lock.notify_all()
        return ack

    def close(self, timeout: float = 10.0) -> None:
        """Spool what is queued, ship what PostgreSQL takes within `timeout`, stop (blocking).

        What could not be shipped stays in the spool for the next start.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        self._spooler.join(timeout)
        while self._shipped_upto < self._spooled_upto and time.monotonic() < deadline:
            if not self._shipper.is_alive():
                break
            self._wake_shipper.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake_shipper.set()
        self._shipper.join(timeout)
        left = len(self._spool)
        if left:
            log.warning("records.spool_kept", writes=left)
        self._spool.close()
        self._drop_connection()

    # -- the spooler thread: incoming writes to local disk ------------------------------------

    def _spool_loop(self) -> None:
        while True:
            with self._lock:
                while not self._incoming and not self._closing:
                    self._lock.wait()
                batch, self._incoming = (
                    self._incoming[: self._batch_max],
                    self._incoming[self._batch_max :],
                )
                if not batch and self._closing:
                    return
            writes = [
                Write(w.call_id, w.stamped, w.key or uuid.uuid4().hex)
                for w, _ in batch
                if w is not None
            ]
            try:
                last = self._spool.add(writes) if writes else None
            except sqlite3.Error as exc:
                error = RecordError(f"the local spool refused the write: {exc}")
                log.error("records.spool_failed", error=str(exc))
                for _, ack in batch:
                    ack.set_exception(error)
                continue
            with self._lock:
                if last is not None:
                    self._spooled_upto = max(self._spooled_upto, last)
                for write, ack in batch:
                    if write is None:
                        self._flushes.append(_Flush(ack, self._spooled_upto))
                    else:
                        ack.set_result(None)
            self._wake_shipper.set()

    # -- the shipper thread: the spool to PostgreSQL, in order ---------------------------------

    def _ship_loop(self) -> None:
        # Writes left by a previous run go first: their order is the spool's.
        left = len(self._spool)
        if left:
            log.info("records.spool_replay", writes=left)
        delay = 0.2
        while not self._stop.is_set():
            self._wake_shipper.wait(timeout=1.0)
            self._wake_shipper.clear()
            while not self._stop.is_set():
                batch = self._spool.oldest(self._batch_max)
                if not batch:
                    self._finish_flushes(everything=True)
                    break
                try:
                    self._ship(batch)
                except Exception as exc:  # whatever the database did: keep the spool, retry
                    if not isinstance(exc, sqlite3.Error | StoreError | OSError):
                        log.exception("records.ship_failed")
                    self._state(False, str(exc))
                    self._drop_connection()
                    self._stop.wait(delay)
                    delay = min(delay * 2, self._retry_max)
                    continue
                delay = 0.2
                self._state(True)
                self._spool.drop(batch[-1][0])
                with self._lock:
                    self._shipped_upto = batch[-1][0]
                self._finish_flushes(everything=False)

    def _ship(self, batch: list[tuple[int, Write]]) -> None:
        conn = self._conn or self._open()
        try:
            with transaction(conn):
                _apply_all(conn, [write for _, write in batch])
        except sqlite3.IntegrityError:
            # Two engines opened the same call's journey at once: the other
            # won the insert. Once more, one write at a time, now finding it.
            for _, write in batch:
                with transaction(conn):
                    _apply_all(conn, [write])

    def _open(self) -> Connection:
        self._conn = self._connect(self._url)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may refuse to close
                self._conn.close()
            self._conn = None

    def _state(self, up: bool, error: str = "") -> None:
        if up == self._up:
            return
        self._up = up
        if up:
            log.info("records.database_up", waiting=len(self._spool))
        else:
            log.warning("records.database_down", error=error, waiting=len(self._spool))
        if self._on_state is not None:
            self._on_state(up)

    def _finish_flushes(self, *, everything: bool) -> None:
        with self._lock:
            keep: list[_Flush] = []
            for flush in self._flushes:
                if everything or flush.seq <= self._shipped_upto:
                    flush.ack.set_result(None)
                else:
                    keep.append(flush)
            self._flushes = keep


def open_postgres(url: str, spool: Path) -> PostgresRecorder:
    """Check the database answers (and migrate it), then start recording (blocking)."""
    connect_records(url).close()
    return PostgresRecorder(url, spool)
