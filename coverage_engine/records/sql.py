"""The SQL the record stores speak, on SQLite or PostgreSQL: one connection shape, one transaction.

The stores (journeys, messages, the console's accounts and access log) are
written once, with `?` parameters and standard SQL, against `Connection`:
Python's `sqlite3.Connection` is one as it is; `records.postgres` wraps a
psycopg connection into one. What differs between the two is said here and
nowhere else: how a write transaction begins (SQLite's `BEGIN IMMEDIATE`
takes the write lock at once, so two writers queue instead of failing on
upgrade), and how a row is locked for a read-modify-write (PostgreSQL's
`FOR UPDATE`; SQLite's write lock already covers it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Cursor(Protocol):
    """What the stores read from a statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A DB-API connection taking `?` parameters, in autocommit mode (transactions are explicit)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...


def begin_statement(conn: Connection) -> str:
    """How a write transaction begins on this connection."""
    return str(getattr(conn, "begin_sql", "BEGIN IMMEDIATE"))


def row_lock(conn: Connection) -> str:
    """What makes a SELECT lock the rows it reads until the transaction ends ("" on SQLite)."""
    return str(getattr(conn, "lock_sql", ""))


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """One explicit write transaction: committed when the block ends, rolled back if it raises."""
    conn.execute(begin_statement(conn))
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
