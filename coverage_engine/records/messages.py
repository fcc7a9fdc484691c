"""Messages in the record file: journey events first, the inbox projection beside them.

Every change is one SQLite transaction (`BEGIN IMMEDIATE`, so two writers
queue rather than interleave) that appends the journey events and updates the
`messages` row together: a crash leaves both or neither. A save names the
version it started from; a save from an older version is refused with
`MessageConflict` (carrying what is saved now), so two operators saving the
same call at once never overwrite each other silently.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coverage_engine.journey import (
    Disposition,
    EventKind,
    MessageAcknowledged,
    MessageCorrected,
    MessageEvent,
    MessageTaken,
    PageAcknowledged,
    Stamped,
    event_class,
    parse_event,
)
from coverage_engine.message import Message, MessageFields, Urgency
from coverage_engine.records.pages import close_acknowledged, request_page, write_event
from coverage_engine.records.sql import Connection
from coverage_engine.records.sqlite import _dt, _insert_event, _transaction, _ts

MESSAGE_EVENTS = frozenset(k for k in EventKind if issubclass(event_class(k), MessageEvent))


class MessageError(Exception):
    """A message change the store refused; the message says why, for the operator."""


class NoSuchCall(MessageError):
    """There is no call with that id in the records."""


class NoSuchMessage(MessageError):
    """That call has no message yet."""


class MessageConflict(MessageError):
    """Someone saved this call's message since the form was opened."""

    def __init__(self, current: Message) -> None:
        self.current = current
        super().__init__(
            f"{current.updated_by} saved a message for this call "
            f"(version {current.version}) after you opened it"
        )


class CorrectionClosed(MessageError):
    """The correction window of this message has ended."""


_COLUMNS = (
    "call_id, practice, version, taken_at, taken_by, updated_at, updated_by, content, "
    "read_at, read_by, acknowledged_at, acknowledged_by"
)


def _message(row: Sequence[Any]) -> Message:
    (
        call_id,
        practice,
        version,
        taken_at,
        taken_by,
        updated_at,
        updated_by,
        content,
        read_at,
        read_by,
        ack_at,
        ack_by,
    ) = row
    return Message(
        call_id=call_id,
        practice=practice,
        version=version,
        taken_at=_dt(taken_at),
        taken_by=taken_by,
        updated_at=_dt(updated_at),
        updated_by=updated_by,
        fields=MessageFields.from_json(json.loads(content)),
        read_at=_dt(read_at) if read_at else None,
        read_by=read_by,
        acknowledged_at=_dt(ack_at) if ack_at else None,
        acknowledged_by=ack_by,
    )


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the message form needs to know about its call."""

    call_id: str
    practice: str
    caller_number: str
    caller_name: str
    started_at: datetime
    in_progress: bool


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which messages an inbox lists; None matches everything."""

    practices: Collection[str] | None = None  # None: every practice
    urgency: Urgency | None = None
    state: str | None = None  # unread / read / acknowledged
    since: datetime | None = None
    until: datetime | None = None
    taken_by: str | None = None
    limit: int = 200


class MessageStore:
    """Message reads and writes on one connection to the record file (not thread-safe)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def call(self, call_id: str) -> CallInfo | None:
        """The call a message would belong to, or None."""
        row = self._conn.execute(
            "SELECT call_id, practice, caller_number, caller_name, started_at, outcome "
            "FROM journeys WHERE call_id = ?",
            (call_id,),
        ).fetchone()
        if row is None:
            return None
        return CallInfo(row[0], row[1], row[2], row[3], _dt(row[4]), row[5] is None)

    def get(self, call_id: str) -> Message | None:
        """The message of `call_id`, or None."""
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE call_id = ?",  # noqa: S608 (constant)
            (call_id,),
        ).fetchone()
        return None if row is None else _message(row)

    def save(
        self,
        call_id: str,
        fields: MessageFields,
        *,
        by: str,
        at: datetime,
        expected_version: int,
        may_correct_others: bool = False,
    ) -> Message:
        """Take (expected_version 0) or correct the message of a call; return it as saved.

        Raises `NoSuchCall`, `MessageConflict` (someone saved since
        `expected_version`), `CorrectionClosed` (past the window, or another
        operator's message without `may_correct_others`).
        """
        with _transaction(self._conn):
            info = self.call(call_id)
            if info is None:
                raise NoSuchCall(f"there is no call {call_id} in the records")
            current = self.get(call_id)
            if current is not None and current.version != expected_version:
                raise MessageConflict(current)
            if current is None and expected_version != 0:
                raise MessageError("this message no longer exists; take it again")
            if current is None:
                return self._take(info, fields, by, at)
            return self._correct(current, fields, by, at, may_correct_others)

    def _take(self, info: CallInfo, fields: MessageFields, by: str, at: datetime) -> Message:
        content = fields.to_json()
        self._event(info.call_id, at, MessageTaken(by, content, version=1))
        self._disposition(info.call_id, at, fields, by, 1)
        self._conn.execute(
            "INSERT INTO messages (call_id, practice, version, taken_at, taken_by, updated_at, "
            "updated_by, urgency, disposition, content) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
            (
                info.call_id,
                info.practice,
                _ts(at),
                by,
                _ts(at),
                by,
                fields.urgency.value,
                fields.disposition.value,
                json.dumps(content),
            ),
        )
        # In the same transaction: an urgent message is never saved without its page.
        request_page(
            self._conn, info.call_id, info.practice, fields.urgency, by=by, at=at, why="taken"
        )
        saved = self.get(info.call_id)
        assert saved is not None  # written just above, in this transaction
        return saved

    def _correct(
        self,
        current: Message,
        fields: MessageFields,
        by: str,
        at: datetime,
        may_correct_others: bool,
    ) -> Message:
        if current.taken_by != by and not may_correct_others:
            raise CorrectionClosed(
                f"this message was taken by {current.taken_by}; only they can correct it"
            )
        if not current.correctable(at) and not may_correct_others:
            raise CorrectionClosed(
                "a message can be corrected for 15 minutes after it was taken; "
                "this one was taken at " + current.taken_at.isoformat(timespec="minutes")
            )
        changes = fields.changes_from(current.fields)
        if not changes:
            return current
        version = current.version + 1
        corrected = MessageCorrected(by, version, changes, fields.to_json())
        self._event(current.call_id, at, corrected)
        if "disposition" in changes or "disposition_note" in changes:
            self._disposition(current.call_id, at, fields, by, version)
        self._conn.execute(
            "UPDATE messages SET version = ?, updated_at = ?, updated_by = ?, urgency = ?, "
            "disposition = ?, content = ? WHERE call_id = ?",
            (
                version,
                _ts(at),
                by,
                fields.urgency.value,
                fields.disposition.value,
                json.dumps(fields.to_json()),
                current.call_id,
            ),
        )
        if "urgency" in changes and current.acknowledged_at is None:
            why = f"urgency corrected to {fields.urgency.value}"
            request_page(
                self._conn, current.call_id, current.practice, fields.urgency, by=by, at=at, why=why
            )
        saved = self.get(current.call_id)
        assert saved is not None
        return saved

    def _disposition(
        self, call_id: str, at: datetime, fields: MessageFields, by: str, version: int
    ) -> None:
        disposition = Disposition(fields.disposition.value, by, version, fields.disposition_note)
        self._event(call_id, at, disposition)

    def _event(self, call_id: str, at: datetime, event: MessageEvent) -> None:
        _insert_event(self._conn, call_id, Stamped(at, event))

    def mark_read(self, call_id: str, *, by: str, at: datetime) -> None:
        """The first time someone at the practice opens it: unread becomes read."""
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE messages SET read_at = ?, read_by = ? "
                "WHERE call_id = ? AND read_at IS NULL",
                (_ts(at), by, call_id),
            )

    def acknowledge(
        self,
        call_id: str,
        *,
        by: str,
        at: datetime,
        via: str = "console",
        page_attempt: int | None = None,
    ) -> Message:
        """Record that `by` acknowledged the message (once; later calls change nothing).

        `page_attempt`: the acknowledgement is a doctor's press of 1 on that
        voice page (a `page_acknowledged` event goes with it).
        """
        with _transaction(self._conn):
            current = self.get(call_id)
            if current is None:
                raise NoSuchMessage(f"call {call_id} has no message")
            if current.acknowledged_at is not None:
                return current
            if page_attempt is not None:
                write_event(self._conn, call_id, at, PageAcknowledged(page_attempt, by, "voice"))
            self._event(call_id, at, MessageAcknowledged(by, via))
            self._conn.execute(
                "UPDATE messages SET acknowledged_at = ?, acknowledged_by = ?, "
                "read_at = COALESCE(read_at, ?), read_by = COALESCE(read_by, ?) "
                "WHERE call_id = ?",
                (_ts(at), by, _ts(at), by, call_id),
            )
            # The one acknowledgement: whoever gave it, paging stops.
            close_acknowledged(self._conn, call_id, at)
        saved = self.get(call_id)
        assert saved is not None
        return saved

    def history(self, call_id: str) -> list[Stamped]:
        """The message events of a call, oldest first: every version, kept."""
        kinds = sorted(k.value for k in MESSAGE_EVENTS)
        marks = ", ".join("?" for _ in kinds)
        rows = self._conn.execute(
            f"SELECT at, kind, details FROM events WHERE call_id = ? AND kind IN ({marks}) "  # noqa: S608
            "ORDER BY id",
            (call_id, *kinds),
        )
        return [Stamped(_dt(at), parse_event(kind, json.loads(d))) for at, kind, d in rows]

    def list(self, where: MessageFilter) -> list[Message]:
        """Messages matching `where`, newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if where.practices is not None:
            practices = sorted(where.practices)
            if not practices:
                return []
            clauses.append(f"practice IN ({', '.join('?' for _ in practices)})")
            params += practices
        if where.urgency is not None:
            clauses.append("urgency = ?")
            params.append(where.urgency.value)
        if where.state == "acknowledged":
            clauses.append("acknowledged_at IS NOT NULL")
        elif where.state == "read":
            clauses.append("acknowledged_at IS NULL AND read_at IS NOT NULL")
        elif where.state == "unread":
            clauses.append("read_at IS NULL")
        if where.since is not None:
            clauses.append("taken_at >= ?")
            params.append(_ts(where.since))
        if where.until is not None:
            clauses.append("taken_at < ?")
            params.append(_ts(where.until))
        if where.taken_by is not None:
            clauses.append("taken_by = ?")
            params.append(where.taken_by)
        sql = f"SELECT {_COLUMNS} FROM messages"  # noqa: S608 (constant columns)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY taken_at DESC, call_id LIMIT ?"
        params.append(where.limit)
        return [_message(r) for r in self._conn.execute(sql, params)]
