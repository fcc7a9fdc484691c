"""Where the call records are (a SQLite file, or a PostgreSQL database) and how to open them.

The configuration's `records:` section names one or the other (`path:` or
`url:`); `--db` on the command line takes either a file or a
`postgresql://` URL. Everything that opens the records (the engine, the
FastAGI service, the CLI, the console) comes through here, so they all find
the same store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from coverage_engine.config.model import Records
from coverage_engine.records.postgres import (
    PostgresRecorder,
    connect_records,
    is_postgres_url,
    spool_path,
)
from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import (
    RecordStore,
    SqliteRecorder,
    open_database,
    records_path,
)

log = structlog.get_logger("coverage_engine.records")


@dataclass(frozen=True, slots=True)
class SqliteRecords:
    """The records in one SQLite file."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class PostgresRecords:
    """The records in a PostgreSQL database, written through a local spool."""

    url: str
    spool: Path

    def __str__(self) -> str:
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


RecordsLocation = SqliteRecords | PostgresRecords


def records_location(records: Records | None, config_file: Path) -> RecordsLocation:
    """Where the configuration puts the records (relative paths: the config file's folder)."""
    if records is not None and records.url is not None:
        return PostgresRecords(records.url, spool_path(records.spool, config_file))
    return SqliteRecords(records_path(records.path if records else None, config_file))


def location_of(target: str | Path, config_file: Path | None = None) -> RecordsLocation:
    """`--db`: a record file, or a postgresql:// URL (its spool beside the config, if any)."""
    if isinstance(target, str) and is_postgres_url(target):
        folder = config_file if config_file is not None else Path.cwd() / "coverage.yaml"
        return PostgresRecords(target, spool_path(None, folder))
    return SqliteRecords(Path(target))


def open_connection(location: RecordsLocation, *, create: bool = False) -> Connection:
    """A connection to the records, migrated (blocking). Raises `StoreError`."""
    if isinstance(location, PostgresRecords):
        return connect_records(location.url)
    return open_database(location.path, create=create)


def open_store(location: RecordsLocation) -> RecordStore:
    """The records' reads and maintenance (the CLI); the file must exist already."""
    return RecordStore(open_connection(location))


def open_recorder(
    location: RecordsLocation, *, now: datetime, recover: bool = True
) -> SqliteRecorder | PostgresRecorder:
    """The engine's journey recorder (blocking: creation, migration, recovery).

    Recovery closes journeys a crashed run left open. On PostgreSQL several
    engines share the records and another one may be carrying those calls
    right now, so it is not done at open there: the calls still on the PBX
    are taken on and continue their journeys.
    """
    if isinstance(location, PostgresRecords):
        connect_records(location.url).close()  # reachable and migrated, or StoreError now
        recorder = PostgresRecorder(location.url, location.spool)
        log.info("records.opened", store=str(location), spool=str(location.spool))
        return recorder
    if not recover:
        return SqliteRecorder(open_database(location.path, create=True))
    sqlite_recorder, recovered = SqliteRecorder.open(location.path, now=now)
    log.info("records.opened", store=str(location), recovered_journeys=len(recovered))
    return sqlite_recorder
