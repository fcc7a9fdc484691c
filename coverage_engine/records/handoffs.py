"""Handoff checks in the record file: one row and one journey per handoff, claimed with a lease.

A check is opened (`open_check`) when its handoff comes due: the row and the
journey's first event (`handoff_check_started`) in one transaction, keyed by
the practice and the handoff instant, so two engines sharing the file, or an
engine before and after a restart, open it once. The paging service then
*claims* due checks with a lease (owner, until) another engine respects and
that runs out by itself if its owner dies.

    pending ──call──> confirmed                               (journey ends)
       │ └─not confirmed, attempts left: pending again, retry_seconds later
       └─not confirmed, none left──> alerting ──notified──> unconfirmed (journey ends;
    pending ──configuration changed──> cancelled                alert open until resolved
                                                                or the doctor's turn ends)

A call is written as started (`in_flight`) before it goes out, and its
result after. A call found in flight without a live lease was cut off by a
crash: it counts as a failed attempt ("cut off by an engine restart") and
the check goes on from there, never sooner than `retry_seconds` after it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from coverage_engine.journey import (
    Ended,
    HandoffAlertRaised,
    HandoffAlertResolved,
    HandoffAttemptFailed,
    HandoffCheckCancelled,
    HandoffCheckStarted,
    HandoffDoctorConfirmed,
    HandoffEvent,
    Outcome,
)
from coverage_engine.paging.handoff import Handoff
from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import _dt, _transaction, _ts, append

PENDING = "pending"
CONFIRMED = "confirmed"
ALERTING = "alerting"  # not confirmed: the alert is being sent
UNCONFIRMED = "unconfirmed"  # not confirmed, alert sent
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class HandoffCheck:
    """One handoff check as stored."""

    check_id: str
    practice: str
    doctor: str
    starts_at: datetime
    until: datetime | None
    state: str
    attempts: int  # calls started so far
    max_attempts: int
    next_at: datetime
    last_attempt_at: datetime | None
    in_flight: bool  # a call has started and has no result yet
    lease_owner: str | None
    lease_until: datetime | None
    alerted_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    closed_at: datetime | None

    def alert_open(self, now: datetime) -> bool:
        """Whether the operators' alert stands: not confirmed, not resolved, turn not over."""
        if self.state not in (ALERTING, UNCONFIRMED) or self.resolved_at is not None:
            return False
        return self.until is None or now < self.until


_COLUMNS = (
    "check_id, practice, doctor, starts_at, until, state, attempts, max_attempts, next_at, "
    "last_attempt_at, in_flight, lease_owner, lease_until, alerted_at, resolved_at, "
    "resolved_by, closed_at"
)


def _opt(text: str | None) -> datetime | None:
    return _dt(text) if text else None


def _check(row: Sequence[Any]) -> HandoffCheck:
    (check_id, practice, doctor, starts, until, state, attempts, max_attempts, next_at, last,
     in_flight, owner, lease_until, alerted, resolved, resolved_by, closed) = row  # fmt: skip
    return HandoffCheck(
        check_id=check_id,
        practice=practice,
        doctor=doctor,
        starts_at=_dt(starts),
        until=_opt(until),
        state=state,
        attempts=attempts,
        max_attempts=max_attempts,
        next_at=_dt(next_at),
        last_attempt_at=_opt(last),
        in_flight=bool(in_flight),
        lease_owner=owner,
        lease_until=_opt(lease_until),
        alerted_at=_opt(alerted),
        resolved_at=_opt(resolved),
        resolved_by=resolved_by,
        closed_at=_opt(closed),
    )


class HandoffStore:
    """The handoff checks' reads and writes on one connection to the record file."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, check_id: str) -> HandoffCheck | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM handoff_checks WHERE check_id = ?",  # noqa: S608 (constant)
            (check_id,),
        ).fetchone()
        return None if row is None else _check(row)

    def open_check(self, handoff: Handoff, *, attempts: int, at: datetime) -> HandoffCheck | None:
        """Open the check of `handoff` (its row and journey), due now; None if it exists."""
        with _transaction(self._conn):
            if self.get(handoff.check_id) is not None:
                return None
            started = HandoffCheckStarted(
                practice=handoff.practice,
                doctor=handoff.doctor,
                starts_at=handoff.at,
                until=handoff.until,
                previous=handoff.previous,
                source=handoff.source,
                attempts=attempts,
            )
            append(self._conn, handoff.check_id, at, started)
            self._conn.execute(
                "INSERT INTO handoff_checks (check_id, practice, doctor, starts_at, until, state, "
                "max_attempts, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    handoff.check_id,
                    handoff.practice,
                    handoff.doctor,
                    _ts(handoff.at),
                    _ts(handoff.until) if handoff.until else None,
                    PENDING,
                    attempts,
                    _ts(at),
                ),
            )
        return self.get(handoff.check_id)

    def claim_due(
        self, *, now: datetime, owner: str, lease: timedelta, limit: int = 20
    ) -> list[HandoffCheck]:
        """Lease the checks with a call or an alert due (at most `limit`), soonest first."""
        with _transaction(self._conn):
            rows = self._conn.execute(
                "UPDATE handoff_checks SET lease_owner = ?, lease_until = ? WHERE check_id IN ("  # noqa: S608
                "  SELECT check_id FROM handoff_checks WHERE state IN (?, ?) AND next_at <= ? "
                "  AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_at LIMIT ?) "
                f"RETURNING {_COLUMNS}",
                (owner, _ts(now + lease), PENDING, ALERTING, _ts(now), _ts(now), limit),
            ).fetchall()
        return sorted((_check(r) for r in rows), key=lambda c: c.next_at)

    def start_attempt(self, check: HandoffCheck, *, owner: str, at: datetime) -> bool:
        """Write that a call goes out now, before it does; False if the check is not ours."""
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE handoff_checks SET attempts = attempts + 1, in_flight = 1, "
                "last_attempt_at = ? WHERE check_id = ? AND state = ? AND lease_owner = ?",
                (_ts(at), check.check_id, PENDING, owner),
            )
        return cur.rowcount == 1

    def record(self, check_id: str, at: datetime, events: Sequence[HandoffEvent]) -> None:
        """Append events of a call in progress (dialing, answered)."""
        with _transaction(self._conn):
            for event in events:
                append(self._conn, check_id, at, event)

    def confirmed(self, check: HandoffCheck, *, owner: str, at: datetime, attempt: int) -> None:
        """The doctor pressed 1: the check is done and its journey ends."""
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE handoff_checks SET state = ?, in_flight = 0, closed_at = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE check_id = ? AND lease_owner = ?",
                (CONFIRMED, _ts(at), check.check_id, owner),
            )
            if cur.rowcount != 1:
                return
            append(self._conn, check.check_id, at, HandoffDoctorConfirmed(attempt, check.doctor))
            append(self._conn, check.check_id, at, Ended(Outcome.HANDOFF_CONFIRMED, check.doctor))

    def failed(
        self,
        check: HandoffCheck,
        *,
        owner: str,
        at: datetime,
        failure: HandoffAttemptFailed,
        retry: timedelta,
    ) -> HandoffCheck:
        """A call reached nobody who pressed 1: call again `retry` after it ended, or raise the
        alert once every attempt is spent (the check is then due at once, to send it)."""
        with _transaction(self._conn):
            self._fail(check, owner=owner, at=at, failure=failure, next_at=at + retry)
        found = self.get(check.check_id)
        assert found is not None
        return found

    def _fail(
        self,
        check: HandoffCheck,
        *,
        owner: str | None,
        at: datetime,
        failure: HandoffAttemptFailed,
        next_at: datetime,
    ) -> None:
        append(self._conn, check.check_id, at, failure)
        current = self.get(check.check_id)
        assert current is not None
        if current.attempts < current.max_attempts:
            self._conn.execute(
                "UPDATE handoff_checks SET in_flight = 0, next_at = ?, lease_owner = NULL, "
                "lease_until = NULL WHERE check_id = ? AND (? IS NULL OR lease_owner = ?)",
                (_ts(next_at), check.check_id, owner, owner),
            )
            return
        self._conn.execute(
            "UPDATE handoff_checks SET state = ?, in_flight = 0, next_at = ?, alerted_at = ? "
            "WHERE check_id = ?",
            (ALERTING, _ts(at), _ts(at), check.check_id),
        )
        raised = HandoffAlertRaised(check.doctor, current.attempts)
        append(self._conn, check.check_id, at, raised)

    def interrupted(self, check: HandoffCheck, *, at: datetime, retry: timedelta) -> HandoffCheck:
        """Take on a check whose call a crash cut off: a failed attempt, then as `failed`, the
        next call `retry` after the cut-off one started (when it ended is not known)."""
        cut = HandoffAttemptFailed(check.attempts, check.doctor, "cut off by an engine restart")
        next_at = max(at, (check.last_attempt_at or at) + retry)
        with _transaction(self._conn):
            self._fail(check, owner=None, at=at, failure=cut, next_at=next_at)
        found = self.get(check.check_id)
        assert found is not None
        return found

    def alerted(
        self, check: HandoffCheck, *, owner: str, at: datetime, events: Sequence[HandoffEvent]
    ) -> None:
        """The alert went out (each channel's result in `events`): the journey ends unconfirmed.

        The alert itself stays open on the operators' board until someone
        resolves it or the doctor's turn ends (`alerts`).
        """
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE handoff_checks SET state = ?, closed_at = ?, lease_owner = NULL, "
                "lease_until = NULL WHERE check_id = ? AND state = ? AND lease_owner = ?",
                (UNCONFIRMED, _ts(at), check.check_id, ALERTING, owner),
            )
            if cur.rowcount != 1:
                return
            for event in events:
                append(self._conn, check.check_id, at, event)
            ended = Ended(Outcome.HANDOFF_NOT_CONFIRMED, None, f"{check.doctor} did not press 1")
            append(self._conn, check.check_id, at, ended)

    def cancel(self, check: HandoffCheck, *, owner: str, at: datetime, reason: str) -> None:
        """The check is no longer wanted (the configuration changed): no more calls."""
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE handoff_checks SET state = ?, closed_at = ?, in_flight = 0, "
                "lease_owner = NULL, lease_until = NULL WHERE check_id = ? AND state = ? "
                "AND lease_owner = ?",
                (CANCELLED, _ts(at), check.check_id, PENDING, owner),
            )
            if cur.rowcount != 1:
                return
            append(self._conn, check.check_id, at, HandoffCheckCancelled(reason))
            append(self._conn, check.check_id, at, Ended(Outcome.HANDOFF_CANCELLED, None, reason))

    def resolve(self, check_id: str, *, by: str, at: datetime, note: str = "") -> HandoffCheck:
        """Someone dealt with the alert (reached the doctor another way): it leaves the board."""
        with _transaction(self._conn):
            current = self.get(check_id)
            if current is None or current.state not in (ALERTING, UNCONFIRMED):
                raise LookupError(f"there is no unconfirmed handoff check {check_id}")
            if current.resolved_at is None:
                self._conn.execute(
                    "UPDATE handoff_checks SET resolved_at = ?, resolved_by = ? WHERE check_id = ?",
                    (_ts(at), by, check_id),
                )
                append(self._conn, check_id, at, HandoffAlertResolved(by, note))
        found = self.get(check_id)
        assert found is not None
        return found

    def recover(self, *, owner: str) -> list[str]:
        """On start: release this owner's leases at once (a call cut off by the crash is then
        claimed again, found in flight, and taken on by the service as `interrupted`)."""
        with _transaction(self._conn):
            rows = self._conn.execute(
                "UPDATE handoff_checks SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner = ? RETURNING check_id",
                (owner,),
            ).fetchall()
        return [r[0] for r in rows]

    def alerts(self, now: datetime, practices: Collection[str] | None = None) -> list[HandoffCheck]:
        """Unconfirmed handoffs whose alert stands (see `HandoffCheck.alert_open`), oldest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM handoff_checks WHERE state IN (?, ?) "  # noqa: S608
            "AND resolved_at IS NULL ORDER BY alerted_at",
            (ALERTING, UNCONFIRMED),
        ).fetchall()
        found = [_check(r) for r in rows]
        return [
            c for c in found if c.alert_open(now) and (practices is None or c.practice in practices)
        ]
