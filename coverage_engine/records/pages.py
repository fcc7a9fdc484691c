"""Pending pages in the record file: durable, claimed with a lease, never sent twice in a minute.

A page is one row per message (`pages`), next to the message it pages and
written in the same transaction as the message event that asks for it, so a
crash can never leave an urgent message without its page. The paging
service *claims* due pages: a lease (owner, until) that another engine
sharing the file respects, and that runs out by itself if its owner dies.
The claim also refuses a page last sent less than a minute ago, whatever the
lease says: no page is sent twice within a minute, across restarts and
engines.

An attempt is written before it goes out (`start_attempt`: the rung climbed,
`in_flight`), and its results after (`finish_attempt`). An attempt found in
flight without a live lease was cut off by a crash: `recover` (on start, for
this owner) and a claim of an expired lease (another engine's) take the page
on again from the rung that was cut off.

Acknowledgement is the message's (`messages.acknowledged_at`, whoever gave
it: the console or a voice page); `MessageStore.acknowledge` closes the page
in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from coverage_engine.journey import (
    EventKind,
    PageCancelled,
    PageEvent,
    PageFailed,
    PageRequested,
    PageSent,
    Stamped,
    parse_event,
)
from coverage_engine.message import Urgency
from coverage_engine.paging.policy import MIN_RESEND, pages
from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import _dt, _insert_event, _transaction, _ts

PENDING = "pending"
ACKNOWLEDGED = "acknowledged"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Page:
    """One message's page as stored."""

    call_id: str
    practice: str
    urgency: Urgency
    created_at: datetime
    state: str  # pending / acknowledged / cancelled
    rung: int  # the next rung of the ladder to climb
    attempts: int  # attempts started so far
    next_at: datetime
    last_sent_at: datetime | None
    in_flight: bool  # an attempt has started and has no results yet
    in_flight_rung: int
    alerted_at: datetime | None  # when the operators were first alerted
    lease_owner: str | None
    lease_until: datetime | None
    closed_at: datetime | None

    @property
    def pending(self) -> bool:
        return self.state == PENDING


_COLUMNS = (
    "call_id, practice, urgency, created_at, state, rung, attempts, next_at, last_sent_at, "
    "in_flight, in_flight_rung, alerted_at, lease_owner, lease_until, closed_at"
)


def _opt(text: str | None) -> datetime | None:
    return _dt(text) if text else None


def _page(row: Sequence[Any]) -> Page:
    (call_id, practice, urgency, created, state, rung, attempts, next_at, last_sent, in_flight,
     in_flight_rung, alerted, owner, until, closed) = row  # fmt: skip
    return Page(
        call_id=call_id,
        practice=practice,
        urgency=Urgency(urgency),
        created_at=_dt(created),
        state=state,
        rung=rung,
        attempts=attempts,
        next_at=_dt(next_at),
        last_sent_at=_opt(last_sent),
        in_flight=bool(in_flight),
        in_flight_rung=in_flight_rung,
        alerted_at=_opt(alerted),
        lease_owner=owner,
        lease_until=_opt(until),
        closed_at=_opt(closed),
    )


def write_event(conn: Connection, call_id: str, at: datetime, event: PageEvent) -> None:
    """Append one paging event to the call's journey (inside the caller's transaction)."""
    _insert_event(conn, call_id, Stamped(at, event))


def _get(conn: Connection, call_id: str) -> Page | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM pages WHERE call_id = ?",  # noqa: S608 (constant columns)
        (call_id,),
    ).fetchone()
    return None if row is None else _page(row)


def request_page(
    conn: Connection,
    call_id: str,
    practice: str,
    urgency: Urgency,
    *,
    by: str,
    at: datetime,
    why: str,
    restart: bool = False,
) -> Page | None:
    """Make the message's page pending (inside the caller's transaction); None if not paged.

    Called when a message is taken or corrected: an emergency or urgent one
    gets a pending page due now; one corrected down to routine has its page
    cancelled; one raised to emergency keeps its page, now on the shorter
    window. `restart` (a resend) starts the ladder again from its first rung.
    """
    current = _get(conn, call_id)
    if not pages(urgency):
        if current is not None and current.pending:
            conn.execute(
                "UPDATE pages SET state = ?, closed_at = ?, lease_owner = NULL, "
                "lease_until = NULL WHERE call_id = ?",
                (CANCELLED, _ts(at), call_id),
            )
            write_event(conn, call_id, at, PageCancelled(by, f"urgency is now {urgency.value}"))
        return None
    if current is not None and current.pending and not restart:
        conn.execute("UPDATE pages SET urgency = ? WHERE call_id = ?", (urgency.value, call_id))
        return _get(conn, call_id)
    # Never sooner than a minute after the last page went out.
    due = at
    if current is not None and current.last_sent_at is not None:
        due = max(at, current.last_sent_at + MIN_RESEND)
    if current is None:
        conn.execute(
            "INSERT INTO pages (call_id, practice, urgency, created_at, state, next_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (call_id, practice, urgency.value, _ts(at), PENDING, _ts(due)),
        )
    else:
        conn.execute(
            "UPDATE pages SET urgency = ?, state = ?, rung = 0, next_at = ?, closed_at = NULL, "
            "alerted_at = NULL WHERE call_id = ?",
            (urgency.value, PENDING, _ts(due), call_id),
        )
    write_event(conn, call_id, at, PageRequested(urgency.value, by, why))
    return _get(conn, call_id)


def close_acknowledged(conn: Connection, call_id: str, at: datetime) -> None:
    """The message was acknowledged: its page, if pending, is done (caller's transaction)."""
    conn.execute(
        "UPDATE pages SET state = ?, closed_at = ?, lease_owner = NULL, lease_until = NULL "
        "WHERE call_id = ? AND state = ?",
        (ACKNOWLEDGED, _ts(at), call_id, PENDING),
    )


class PageStore:
    """The paging service's reads and writes on one connection to the record file."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, call_id: str) -> Page | None:
        """The page of a message, or None."""
        return _get(self._conn, call_id)

    def claim_due(
        self, *, now: datetime, owner: str, lease: timedelta, limit: int = 20
    ) -> list[Page]:
        """Lease the pending pages that are due (at most `limit`), oldest due first.

        Skipped: pages another owner holds a live lease on, and pages last
        sent less than a minute ago.
        """
        with _transaction(self._conn):
            rows = self._conn.execute(
                f"UPDATE pages SET lease_owner = ?, lease_until = ? WHERE call_id IN ("  # noqa: S608
                "  SELECT call_id FROM pages WHERE state = ? AND next_at <= ? "
                "  AND (lease_until IS NULL OR lease_until <= ?) "
                "  AND (last_sent_at IS NULL OR last_sent_at <= ?) "
                "  ORDER BY next_at LIMIT ?) "
                f"RETURNING {_COLUMNS}",
                (
                    owner,
                    _ts(now + lease),
                    PENDING,
                    _ts(now),
                    _ts(now),
                    _ts(now - MIN_RESEND),
                    limit,
                ),
            ).fetchall()
        return sorted((_page(r) for r in rows), key=lambda p: p.next_at)

    def next_due(self) -> datetime | None:
        """When the earliest pending page is due (the service sleeps until then)."""
        row = self._conn.execute(
            "SELECT MIN(next_at) FROM pages WHERE state = ?", (PENDING,)
        ).fetchone()
        return _opt(row[0])

    def start_attempt(
        self,
        page: Page,
        *,
        owner: str,
        at: datetime,
        rung: int,
        next_rung: int,
        next_at: datetime,
        alerts_operators: bool,
        events: Sequence[PageEvent],
    ) -> bool:
        """Write that an attempt goes out now, before it does; False if the page is no longer ours.

        A page acknowledged (or cancelled, or taken by another owner) since
        it was claimed is left alone.
        """
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE pages SET attempts = attempts + 1, rung = ?, in_flight = 1, "
                "in_flight_rung = ?, last_sent_at = ?, next_at = ?, "
                "alerted_at = CASE WHEN ? THEN COALESCE(alerted_at, ?) ELSE alerted_at END "
                "WHERE call_id = ? AND state = ? AND lease_owner = ?",
                (
                    next_rung,
                    rung,
                    _ts(at),
                    _ts(next_at),
                    alerts_operators,
                    _ts(at),
                    page.call_id,
                    PENDING,
                    owner,
                ),
            )
            if cur.rowcount != 1:
                return False
            for event in events:
                write_event(self._conn, page.call_id, at, event)
        return True

    def finish_attempt(
        self,
        call_id: str,
        *,
        owner: str,
        at: datetime,
        events: Sequence[PageEvent],
        sooner: datetime | None = None,
    ) -> None:
        """Write an attempt's results and let the page go (the next rung waits for `next_at`,
        or for `sooner` when that is earlier: the attempt reached nobody)."""
        with _transaction(self._conn):
            for event in events:
                write_event(self._conn, call_id, at, event)
            self._conn.execute(
                "UPDATE pages SET in_flight = 0, lease_owner = NULL, lease_until = NULL, "
                "next_at = CASE WHEN ? IS NOT NULL AND ? < next_at THEN ? ELSE next_at END "
                "WHERE call_id = ? AND lease_owner = ?",
                (*([_ts(sooner)] * 3 if sooner else [None] * 3), call_id, owner),
            )

    def record(self, call_id: str, at: datetime, events: Sequence[PageEvent]) -> None:
        """Append paging events that change no page state (a voice page's later steps)."""
        with _transaction(self._conn):
            for event in events:
                write_event(self._conn, call_id, at, event)

    def reached(self, call_id: str, attempt: int) -> bool:
        """Whether any channel of that attempt went out (a `page_sent` of it is on the record)."""
        rows = self._conn.execute(
            "SELECT kind, details FROM events WHERE call_id = ? AND kind = ?",
            (call_id, EventKind.PAGE_SENT.value),
        )
        sent = (parse_event(kind, json.loads(details)) for kind, details in rows)
        return any(isinstance(e, PageSent) and e.attempt == attempt for e in sent)

    def interrupted(self, page: Page, *, at: datetime) -> Page:
        """Take on a page whose attempt a crash cut off: that rung is climbed again.

        Written as a failed attempt ("cut off by an engine restart"); the
        rung is due again a minute after it went out, never sooner.
        """
        due = max(at, (page.last_sent_at or at) + MIN_RESEND)
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE pages SET in_flight = 0, rung = in_flight_rung, next_at = ? "
                "WHERE call_id = ? AND in_flight = 1",
                (_ts(due), page.call_id),
            )
            failed = PageFailed(page.attempts, "all", "cut off by an engine restart")
            write_event(self._conn, page.call_id, at, failed)
        found = _get(self._conn, page.call_id)
        assert found is not None
        return found

    def recover(self, *, owner: str, now: datetime) -> list[str]:
        """On start: release this owner's leases, and take its cut-off attempts on again."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM pages WHERE state = ? AND lease_owner = ?",  # noqa: S608
            (PENDING, owner),
        ).fetchall()
        for row in rows:
            page = _page(row)
            if page.in_flight:
                self.interrupted(page, at=now)
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE pages SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
                (owner,),
            )
        return [r[0] for r in rows]

    def alerts(self, practices: Collection[str] | None = None) -> list[Page]:
        """Pages the operators were alerted about and nobody has acknowledged yet, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM pages WHERE state = ? AND alerted_at IS NOT NULL "  # noqa: S608
            "ORDER BY alerted_at",
            (PENDING,),
        ).fetchall()
        found = [_page(r) for r in rows]
        return [p for p in found if practices is None or p.practice in practices]

    def pending(self) -> list[Page]:
        """Every pending page, soonest due first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM pages WHERE state = ? ORDER BY next_at",  # noqa: S608
            (PENDING,),
        ).fetchall()
        return [_page(r) for r in rows]
